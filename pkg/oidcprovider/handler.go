// Package oidcprovider serves the public OIDC discovery document and JWKS
// through which relying parties such as Entra validate JWT-SVIDs.
package oidcprovider

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/keysource"
)

// Handler serves {prefix}/.well-known/openid-configuration and the JWKS.
type Handler struct {
	src  keysource.Source
	opts options

	discoveryPath, keysPath string

	mu       sync.Mutex
	rendered *documents
}

type options struct {
	issuer         string
	jwksURI        string
	prefix         string
	maxAge         time.Duration
	omitUse        bool
	allowedHosts   map[string]bool
	trustedProxies []netip.Prefix
	logger         *slog.Logger
}

// Option configures a Handler.
type Option func(*options) error

// WithIssuer sets the issuer URL, used byte for byte (required).
func WithIssuer(issuer string) Option {
	return func(o *options) error { o.issuer = issuer; return nil }
}

// WithJWKSURI sets jwks_uri (default: the issuer with "/keys" appended to
// its path).
func WithJWKSURI(uri string) Option { return func(o *options) error { o.jwksURI = uri; return nil } }

// WithPathPrefix serves the discovery document under prefix.
func WithPathPrefix(prefix string) Option {
	return func(o *options) error { o.prefix = strings.TrimSuffix(prefix, "/"); return nil }
}

// WithMaxAge sets Cache-Control max-age (default five minutes).
func WithMaxAge(d time.Duration) Option { return func(o *options) error { o.maxAge = d; return nil } }

// WithoutKeyUse omits "use" from keys; it is on by default because Entra
// expects use "sig".
func WithoutKeyUse() Option { return func(o *options) error { o.omitUse = true; return nil } }

// WithAllowedHosts sets the host names (without port) requests may name
// on any endpoint (default: the issuer's host).
func WithAllowedHosts(hosts ...string) Option {
	return func(o *options) error {
		for _, h := range hosts {
			o.allowedHosts[strings.ToLower(h)] = true
		}
		return nil
	}
}

// WithTrustedProxies honours X-Forwarded-Host only from peers in these
// CIDRs; from anyone else it is ignored.
func WithTrustedProxies(cidrs ...string) Option {
	return func(o *options) error {
		for _, c := range cidrs {
			p, err := netip.ParsePrefix(c)
			if err != nil {
				return fmt.Errorf("oidcprovider: trusted proxy %q: %w", c, err)
			}
			o.trustedProxies = append(o.trustedProxies, p)
		}
		return nil
	}
}

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(o *options) error { o.logger = l; return nil } }

// New returns the handler for keys from src.
func New(src keysource.Source, opts ...Option) (*Handler, error) {
	o := options{maxAge: 5 * time.Minute, allowedHosts: map[string]bool{}, logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	iss, err := url.Parse(o.issuer)
	if err != nil || o.issuer == "" || iss.Host == "" || (iss.Scheme != "https" && iss.Scheme != "http") || iss.RawQuery != "" || iss.Fragment != "" {
		return nil, fmt.Errorf("oidcprovider: issuer %q must be an absolute http(s) URL without query or fragment", o.issuer)
	}
	if o.jwksURI == "" {
		o.jwksURI = strings.TrimSuffix(o.issuer, "/") + "/keys"
	}
	jwks, err := url.Parse(o.jwksURI)
	if err != nil || jwks.Host == "" || jwks.Path == "" {
		return nil, fmt.Errorf("oidcprovider: jwks_uri %q must be an absolute URL with a path", o.jwksURI)
	}
	if len(o.allowedHosts) == 0 {
		o.allowedHosts[strings.ToLower(iss.Hostname())] = true
	}
	return &Handler{src: src, opts: o, discoveryPath: o.prefix + "/.well-known/openid-configuration", keysPath: jwks.Path}, nil
}

// ServeHTTP serves the two documents.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var pick func(*documents) *document
	switch r.URL.Path {
	case h.discoveryPath:
		pick = func(d *documents) *document { return &d.discovery }
	case h.keysPath:
		pick = func(d *documents) *document { return &d.keys }
	default:
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if host := h.requestHost(r); !h.opts.allowedHosts[host] {
		http.Error(w, fmt.Sprintf("host %q is not allowed", host), http.StatusBadRequest)
		return
	}
	docs, err := h.documents()
	if err != nil {
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":"keys_unavailable","error_description":"no JWT keys have been received from the key source yet"}` + "\n"))
		return
	}
	pick(docs).serve(w, r, h.opts.maxAge)
}

// requestHost is the host name the client asked for: X-Forwarded-Host from
// a trusted proxy, the Host header otherwise.
func (h *Handler) requestHost(r *http.Request) string {
	host := r.Host
	if fwd := r.Header.Get("X-Forwarded-Host"); fwd != "" && h.fromTrustedProxy(r) {
		host, _, _ = strings.Cut(fwd, ",")
		host = strings.TrimSpace(host)
	}
	if hn, _, err := net.SplitHostPort(host); err == nil {
		host = hn
	}
	return strings.ToLower(strings.Trim(host, "[]"))
}

func (h *Handler) fromTrustedProxy(r *http.Request) bool {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	for _, p := range h.opts.trustedProxies {
		if p.Contains(ap.Addr().Unmap()) {
			return true
		}
	}
	return false
}

var errNoKeys = errors.New("no key set yet")

// documents returns the rendered documents, rendering them again only when
// the key set changed.
func (h *Handler) documents() (*documents, error) {
	set, ok := h.src.KeySet()
	if !ok {
		return nil, errNoKeys
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.rendered != nil && h.rendered.changed.Equal(set.Changed) {
		return h.rendered, nil
	}
	d, err := render(h.opts, set)
	if err != nil {
		return nil, err
	}
	for _, warning := range entraChecks(h.opts.issuer, set) {
		h.opts.logger.Warn(warning)
	}
	h.rendered = d
	return d, nil
}

func httpDate(t time.Time) string { return t.UTC().Format(http.TimeFormat) }

func maxAgeHeader(d time.Duration) string {
	return "public, max-age=" + strconv.Itoa(int(d/time.Second))
}
