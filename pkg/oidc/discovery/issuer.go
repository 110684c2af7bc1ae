// Package discovery serves the public OIDC discovery document and JWKS
// through which relying parties such as Entra validate JWT-SVIDs. Each
// trust domain is published under its own issuer; the documents are
// rendered once per key-set change and served from memory.
package discovery

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/oidc/keysource"
)

// Issuer publishes one key source under one issuer URL.
type Issuer struct {
	src  keysource.Source
	opts options
	now  func() time.Time

	discoveryPath, keysPath string
	docs                    atomic.Pointer[documents]
	renderMu                sync.Mutex
}

type options struct {
	issuer       string
	jwksURI      string
	prefix       string
	prefixSet    bool
	maxAge       time.Duration
	omitUse      bool
	staleness    time.Duration
	allowedHosts map[string]bool
	logger       *slog.Logger
}

// Option configures an Issuer.
type Option func(*options) error

// WithJWKSURI sets jwks_uri (default: the issuer with "/keys" appended).
func WithJWKSURI(uri string) Option { return func(o *options) error { o.jwksURI = uri; return nil } }

// WithPathPrefix sets the path under which requests for this issuer
// arrive (default: the issuer's path). A proxy that strips the issuer's
// path calls for "/".
func WithPathPrefix(prefix string) Option {
	return func(o *options) error {
		if prefix != "" && !strings.HasPrefix(prefix, "/") {
			return fmt.Errorf("path prefix %q must start with /", prefix)
		}
		o.prefix, o.prefixSet = strings.TrimSuffix(prefix, "/"), true
		return nil
	}
}

// WithMaxAge sets Cache-Control max-age (default five minutes).
func WithMaxAge(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return fmt.Errorf("max age %v is negative", d)
		}
		o.maxAge = d
		return nil
	}
}

// WithoutKeyUse omits "use" from keys; it is on by default because Entra
// expects use "sig".
func WithoutKeyUse() Option { return func(o *options) error { o.omitUse = true; return nil } }

// WithAllowedHosts sets the host names (without port) requests for this
// issuer may name (default: the issuer's host).
func WithAllowedHosts(hosts ...string) Option {
	return func(o *options) error {
		for _, h := range hosts {
			if _, ipErr := netip.ParseAddr(h); h == "" || strings.ContainsAny(h, "/ []") || (strings.Contains(h, ":") && ipErr != nil) {
				return fmt.Errorf("allowed host %q must be a bare host name", h)
			}
			o.allowedHosts[strings.ToLower(h)] = true
		}
		return nil
	}
}

// WithStaleness sets how long the key source may be unavailable before the
// issuer reports itself not ready (default ten minutes). Its last keys are
// served all the same.
func WithStaleness(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("staleness bound %v must be positive", d)
		}
		o.staleness = d
		return nil
	}
}

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(o *options) error { o.logger = l; return nil } }

// NewIssuer publishes the keys of src under issuer, which is used byte for
// byte: it must be exactly what federated credentials name.
func NewIssuer(src keysource.Source, issuer string, opts ...Option) (*Issuer, error) {
	o := options{issuer: issuer, maxAge: 5 * time.Minute, staleness: 10 * time.Minute, allowedHosts: map[string]bool{}, logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("discovery: issuer %s: %w", issuer, err)
		}
	}
	iss, err := url.Parse(issuer)
	if err != nil || iss.Host == "" || (iss.Scheme != "https" && iss.Scheme != "http") || iss.RawQuery != "" || iss.Fragment != "" || iss.User != nil {
		return nil, fmt.Errorf("discovery: issuer %q must be an absolute http(s) URL without user, query or fragment", issuer)
	}
	if !o.prefixSet {
		o.prefix = strings.TrimSuffix(iss.Path, "/")
	}
	keysPath := o.prefix + "/keys"
	if o.jwksURI == "" {
		o.jwksURI = strings.TrimSuffix(issuer, "/") + "/keys"
	} else {
		jwks, err := url.Parse(o.jwksURI)
		if err != nil || jwks.Host == "" || jwks.Path == "" || jwks.Path == "/" || (jwks.Scheme != "https" && jwks.Scheme != "http") {
			return nil, fmt.Errorf("discovery: jwks_uri %q must be an absolute http(s) URL with a path", o.jwksURI)
		}
		keysPath = o.prefix + strings.TrimPrefix(jwks.Path, strings.TrimSuffix(iss.Path, "/"))
	}
	if len(o.allowedHosts) == 0 {
		o.allowedHosts[strings.ToLower(iss.Hostname())] = true
	}
	i := &Issuer{src: src, opts: o, now: time.Now, discoveryPath: o.prefix + "/.well-known/openid-configuration", keysPath: keysPath}
	if keysPath == i.discoveryPath {
		return nil, fmt.Errorf("discovery: jwks_uri %q is the discovery document's path", o.jwksURI)
	}
	i.render()
	return i, nil
}

// URL returns the issuer URL.
func (i *Issuer) URL() string { return i.opts.issuer }

// Run renders the documents again at every change of the key set, and
// logs when the keys turn stale and fresh again, until ctx ends.
func (i *Issuer) Run(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	stale := false
	for {
		updated := i.src.Updated()
		i.render()
		if st := i.Status(); st.Stale != stale {
			stale = st.Stale
			if stale {
				i.opts.logger.Error("the keys are stale: the key source has been unavailable longer than the bound; serving the last keys",
					"issuer", i.opts.issuer, "since", st.Source.UnavailableSince, "bound", i.opts.staleness, "error", st.Source.Err)
			} else {
				i.opts.logger.Info("the keys are fresh again", "issuer", i.opts.issuer)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-updated:
		case <-tick.C:
		}
	}
}

// render renders the documents if the key set changed since the last time,
// and logs what would make Entra refuse them once per change. It returns
// the current documents, nil before the first key set.
func (i *Issuer) render() *documents {
	i.renderMu.Lock()
	defer i.renderMu.Unlock()
	set, ok := i.src.KeySet()
	if !ok {
		return i.docs.Load()
	}
	if cur := i.docs.Load(); cur != nil && cur.changed.Equal(set.Changed) {
		return cur
	}
	d, err := render(i.opts, set)
	if err != nil {
		i.opts.logger.Error("cannot render the discovery documents; serving the previous ones", "issuer", i.opts.issuer, "error", err)
		return i.docs.Load()
	}
	i.docs.Store(d)
	i.opts.logger.Info("publishing a new key set", "issuer", i.opts.issuer, "keys", len(set.Keys))
	for _, w := range d.warnings {
		i.opts.logger.Warn(w, "issuer", i.opts.issuer)
	}
	return d
}

// Status is an issuer's readiness and what stands behind it.
type Status struct {
	Issuer string `json:"issuer"`
	Ready  bool   `json:"ready"`
	// Reason says why the issuer is not ready.
	Reason string `json:"reason,omitempty"`
	Keys   int    `json:"keys"`
	// Stale is true once the source has been unavailable longer than the
	// staleness bound.
	Stale  bool             `json:"stale"`
	Source keysource.Status `json:"source"`
	// Warnings are what would make Entra refuse this issuer's tokens.
	Warnings []string `json:"entra_warnings,omitempty"`
}

// Status reports whether the issuer serves keys that are not stale.
func (i *Issuer) Status() Status {
	st := Status{Issuer: i.opts.issuer, Source: i.src.Status()}
	d := i.docs.Load()
	if d != nil {
		st.Keys, st.Warnings = d.keyCount, d.warnings
	}
	if down := st.Source.UnavailableSince; !down.IsZero() && i.now().Sub(down) > i.opts.staleness {
		st.Stale = true
	}
	switch {
	case d == nil:
		st.Reason = "no keys received from the key source yet"
	case st.Stale:
		st.Reason = fmt.Sprintf("the key source has been unavailable since %s, longer than %v: %s",
			st.Source.UnavailableSince.UTC().Format(time.RFC3339), i.opts.staleness, st.Source.Err)
	default:
		st.Ready = true
	}
	return st
}
