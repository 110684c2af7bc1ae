// Package issuermeta fetches and caches external OIDC issuers' discovery
// documents and signing keys, for checking federated assertions.
//
// The cache does not decide which issuers it fetches: the federation
// verifier only asks for an issuer after it matched one of the client's
// stored federated credentials, so an unauthenticated caller can never make
// the gateway fetch a URL of its choosing.
package issuermeta

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"
)

// Errors of Key, tested with errors.Is.
var (
	// ErrUnavailable means the issuer's metadata could not be fetched and
	// no usable copy is cached.
	ErrUnavailable = errors.New("issuer metadata unavailable")
	// ErrKeyNotFound means the issuer's JWKS has no usable key with the kid.
	ErrKeyNotFound = errors.New("signing key not found in the issuer's JWKS")
)

// ErrForbiddenAddress means an issuer's host resolved to an address the
// gateway does not fetch from (loopback, link-local, private, metadata)
// and no allowed network covers it.
var ErrForbiddenAddress = errors.New("the address is not one issuers are fetched from")

// Loopback are the loopback networks, for WithAllowedNetworks in
// development and tests.
var Loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// maxKeys is how many keys of a JWKS Entra reads.
const maxKeys = 100

// Cache holds issuer metadata.
type Cache struct {
	opts   options
	client *http.Client
	group  singleflight.Group

	mu       sync.Mutex
	entries  map[string]*entry
	failures map[string]failure // recent failed fetches, by issuer
	warned   map[string]bool    // issuer+kid reported for a missing use
}

// failure is a failed fetch, answered again without fetching for a while:
// a stream of unauthenticated token requests naming an unreachable issuer
// costs one outbound fetch, not one each.
type failure struct {
	at  time.Time
	err error
}

type entry struct {
	keys        map[string]jose.JSONWebKey
	fetched     time.Time
	lastRefresh time.Time // last refresh for an unknown kid
}

type options struct {
	ttl, grace, minRefresh, timeout time.Duration
	failureTTL                      time.Duration
	allowed                         []netip.Prefix
	maxBytes                        int64
	roots                           *x509.CertPool
	insecureSchemes                 bool
	requireUseSig                   bool
	now                             func() time.Time
	logger                          *slog.Logger
	observe                         func(ok bool)
}

// Option configures a Cache.
type Option func(*options)

// WithTTL sets how long metadata is used before it is fetched again
// (default ten minutes).
func WithTTL(d time.Duration) Option { return func(o *options) { o.ttl = d } }

// WithGrace sets how long past its TTL metadata is still used while the
// issuer cannot be reached (default one hour).
func WithGrace(d time.Duration) Option { return func(o *options) { o.grace = d } }

// WithMinRefresh sets the least time between two refreshes of one issuer's
// JWKS for unknown kids (default ten seconds).
func WithMinRefresh(d time.Duration) Option { return func(o *options) { o.minRefresh = d } }

// WithTimeout bounds each fetch (default five seconds).
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithMaxBytes bounds each response (default 1 MiB).
func WithMaxBytes(n int64) Option { return func(o *options) { o.maxBytes = n } }

// WithFailureTTL sets how long a failed fetch is answered from memory
// (default thirty seconds).
func WithFailureTTL(d time.Duration) Option { return func(o *options) { o.failureTTL = d } }

// WithAllowedNetworks lets issuers be fetched from addresses in networks
// that are otherwise refused: loopback, link-local (cloud metadata
// services), private and shared address space. By default an issuer is
// fetched only from public addresses, as Entra fetches it from the
// internet.
func WithAllowedNetworks(networks ...netip.Prefix) Option {
	return func(o *options) { o.allowed = append(o.allowed, networks...) }
}

// WithRootCAs trusts roots instead of the system's.
func WithRootCAs(roots *x509.CertPool) Option { return func(o *options) { o.roots = roots } }

// WithInsecureSchemes allows http issuers, for tests and development only.
func WithInsecureSchemes() Option { return func(o *options) { o.insecureSchemes = true } }

// WithRequireUseSig ignores keys without use "sig", as older Entra did.
func WithRequireUseSig() Option { return func(o *options) { o.requireUseSig = true } }

// WithClock sets the time source.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithFetchObserver is told the outcome of every fetch of an issuer's
// metadata, for metrics.
func WithFetchObserver(observe func(ok bool)) Option { return func(o *options) { o.observe = observe } }

// DefaultTimeout and DefaultMaxBytes bound each fetch of an issuer's
// document unless WithTimeout and WithMaxBytes say otherwise: the token
// endpoint's bounds (Entra publishes none of its own).
const (
	DefaultTimeout  = 5 * time.Second
	DefaultMaxBytes = 1 << 20
)

// New returns an empty cache.
func New(opts ...Option) *Cache {
	o := options{ttl: 10 * time.Minute, grace: time.Hour, minRefresh: 10 * time.Second, timeout: DefaultTimeout, failureTTL: 30 * time.Second,
		maxBytes: DefaultMaxBytes, now: time.Now, logger: slog.New(slog.DiscardHandler), observe: func(bool) {}}
	for _, opt := range opts {
		opt(&o)
	}
	c := &Cache{opts: o, entries: map[string]*entry{}, failures: map[string]failure{}, warned: map[string]bool{}}
	c.client = c.newClient()
	return c
}

func (c *Cache) newClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: c.opts.roots, MinVersion: tls.VersionTLS12}
	tr.Proxy = nil // the issuer is fetched directly, never through an environment proxy
	// The name is resolved once by the dialer, and each address is checked
	// right before it is connected to: what is checked is what is dialed.
	tr.DialContext = (&net.Dialer{Timeout: c.opts.timeout, KeepAlive: 30 * time.Second, Control: c.checkAddress}).DialContext
	return &http.Client{
		Transport: limited{tr, c.opts.maxBytes},
		Timeout:   c.opts.timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("too many redirects")
			}
			if req.URL.Host != via[0].URL.Host || (req.URL.Scheme != "https" && !c.opts.insecureSchemes) {
				return fmt.Errorf("redirect from %s to %s leaves the issuer's host", via[0].URL, req.URL)
			}
			return nil
		},
	}
}

// checkAddress refuses to connect to an address an issuer is not fetched
// from, unless an allowed network covers it.
func (c *Cache) checkAddress(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrForbiddenAddress, address)
	}
	a := ap.Addr().Unmap()
	for _, p := range c.opts.allowed {
		if p.Contains(a) {
			return nil
		}
	}
	if a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() || a.IsMulticast() ||
		a.IsPrivate() || a.IsUnspecified() || sharedAddressSpace.Contains(a) || thisNetwork.Contains(a) {
		return fmt.Errorf("%w: %s (allow its network in entra.issuer_fetch.allowed_networks if the issuer is meant to be there)", ErrForbiddenAddress, a)
	}
	return nil
}

var (
	sharedAddressSpace = netip.MustParsePrefix("100.64.0.0/10") // carrier-grade NAT, RFC 6598
	thisNetwork        = netip.MustParsePrefix("0.0.0.0/8")
)

// limited fails a response whose body exceeds max bytes.
type limited struct {
	rt  http.RoundTripper
	max int64
}

func (l limited) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.rt.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &capped{rc: resp.Body, left: l.max, url: r.URL.String()}
	return resp, nil
}

type capped struct {
	rc   io.ReadCloser
	left int64
	url  string
}

func (c *capped) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, fmt.Errorf("response from %s is larger than the limit", c.url)
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.rc.Read(p)
	c.left -= int64(n)
	return n, err
}

func (c *capped) Close() error { return c.rc.Close() }

// Key returns issuer's public key with kid.
func (c *Cache) Key(ctx context.Context, issuer, kid string) (*jose.JSONWebKey, error) {
	now := c.opts.now()
	e := c.entry(issuer)
	if e == nil || now.Sub(e.fetched) > c.opts.ttl {
		fresh, err := c.fetch(ctx, issuer)
		switch {
		case err == nil:
			e = fresh
		case e != nil && now.Sub(e.fetched) <= c.opts.ttl+c.opts.grace:
			c.opts.logger.Warn("issuer unreachable; using its last metadata", "issuer", issuer, "fetched", e.fetched, "error", err)
		default:
			return nil, err
		}
	}
	if k, ok := e.keys[kid]; ok {
		return &k, nil
	}
	if c.mayRefresh(issuer, now) {
		if fresh, err := c.fetch(ctx, issuer); err == nil {
			if k, ok := fresh.keys[kid]; ok {
				return &k, nil
			}
		} else {
			c.opts.logger.Warn("refreshing the issuer's keys for an unknown kid failed", "issuer", issuer, "kid", kid, "error", err)
		}
	}
	return nil, fmt.Errorf("issuer %s, kid %q: %w", issuer, kid, ErrKeyNotFound)
}

func (c *Cache) entry(issuer string) *entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entries[issuer]
}

// mayRefresh rate-limits refreshes for unknown kids per issuer.
func (c *Cache) mayRefresh(issuer string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[issuer]
	if e == nil || now.Sub(e.lastRefresh) < c.opts.minRefresh {
		return false
	}
	e.lastRefresh = now
	return true
}

// fetch loads issuer's metadata; concurrent callers share one fetch, and a
// failure is answered again from memory for the failure TTL.
func (c *Cache) fetch(ctx context.Context, issuer string) (*entry, error) {
	c.mu.Lock()
	f, failed := c.failures[issuer]
	c.mu.Unlock()
	if failed && c.opts.now().Sub(f.at) < c.opts.failureTTL {
		return nil, f.err
	}
	v, err, _ := c.group.Do(issuer, func() (any, error) {
		// Detached from the first caller's cancellation, so that one
		// client giving up does not fail the others.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.timeout)
		defer cancel()
		keys, err := c.load(fctx, issuer)
		c.opts.observe(err == nil)
		var netErr net.Error
		if err != nil && (fctx.Err() != nil || errors.As(err, &netErr) && netErr.Timeout()) {
			err = fmt.Errorf("no complete answer within %s: %w", c.opts.timeout, err)
		}
		if err != nil {
			err = fmt.Errorf("issuer %s: %w: %w", issuer, ErrUnavailable, err)
			c.mu.Lock()
			c.failures[issuer] = failure{at: c.opts.now(), err: err}
			c.mu.Unlock()
			return nil, err
		}
		e := &entry{keys: keys, fetched: c.opts.now()}
		c.mu.Lock()
		delete(c.failures, issuer)
		if old := c.entries[issuer]; old != nil {
			e.lastRefresh = old.lastRefresh
		}
		c.entries[issuer] = e
		c.mu.Unlock()
		return e, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*entry), nil
}

func (c *Cache) load(ctx context.Context, issuer string) (map[string]jose.JSONWebKey, error) {
	md, err := c.Inspect(ctx, issuer)
	if err != nil {
		return nil, err
	}
	if len(md.Keys) > maxKeys {
		c.opts.logger.Warn("the issuer publishes more than 100 keys; like Entra, only the first 100 are read", "issuer", issuer, "keys", len(md.Keys))
	}
	keys := map[string]jose.JSONWebKey{}
	for _, e := range md.Keys {
		if e.Skipped != "" {
			continue
		}
		if e.Key.Use == "" {
			c.warnUse(issuer, e.Key.KeyID)
		}
		keys[e.Key.KeyID] = e.Key
	}
	return keys, nil
}

func (c *Cache) warnUse(issuer, kid string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.warned[issuer+"\x00"+kid] {
		c.warned[issuer+"\x00"+kid] = true
		c.opts.logger.Warn(`a key of the issuer has no "use": "sig"; Entra expects it`, "issuer", issuer, "kid", kid)
	}
}

func (c *Cache) checkScheme(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", raw)
	}
	if u.Scheme != "https" && !(c.opts.insecureSchemes && u.Scheme == "http") {
		return fmt.Errorf("%q is not https", raw)
	}
	if strings.ContainsAny(u.Host, "@") {
		return fmt.Errorf("%q has user information", raw)
	}
	return nil
}
