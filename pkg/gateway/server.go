package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/seed"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/oidc/discovery"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/oidc/keysource"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/config"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/health"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/httpserve"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/metrics"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/servingtls"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/statelock"
)

// Server is a gateway assembled from a configuration file: the OIDC
// discovery provider, optionally the Entra endpoint, and the health
// endpoints.
type Server struct {
	cfg    config.Config
	logger *slog.Logger

	sources []keysource.Source
	issuers []*discovery.Issuer
	files   *servingtls.Files
	svid    *servingtls.SVID
	store   store.Store
	// storeLock is held on a SQLite store's file while the store is open.
	storeLock *statelock.Lock
	ent       *Entra
	seeder    *seed.Applier
	seedFile  seed.File // parsed once at start
	seedData  []byte    // its content, the watch's baseline
	seeded    atomic.Bool
	// startErr is why New's first seed or signing-key load failed; Run
	// retries them.
	startErr error
	metrics  *metrics.Metrics
	oidc     httpserve.Listener
	entra    httpserve.Listener
	health   httpserve.Listener
	metricsL httpserve.Listener
	opts     options
}

type options struct {
	listeners map[string]net.Listener
	seed      seed.File
}

// Option adjusts what New assembles beyond the configuration.
type Option func(*options)

// WithListener serves the listener of configuration key (such as
// "oidc.listen_addr") on l, bound by the caller, who needed its port before
// the configuration was complete (a development gateway's issuer names it).
func WithListener(key string, l net.Listener) Option {
	return func(o *options) { o.listeners[key] = l }
}

// WithSeed applies doc with the seed file, merged into it, or alone when
// there is none: the development tenant.
func WithSeed(doc seed.File) Option { return func(o *options) { o.seed = doc } }

// New prepares a gateway from cfg: it opens the key sources, the store and
// the TLS material and binds the listeners. Nothing is served until Run.
func New(ctx context.Context, cfg config.Config, logger *slog.Logger, opts ...Option) (_ *Server, err error) {
	s := &Server{cfg: cfg, logger: logger, metrics: metrics.New(), opts: options{listeners: map[string]net.Listener{}}}
	for _, opt := range opts {
		opt(&s.opts)
	}
	defer func() {
		if err != nil {
			s.close()
			for _, l := range s.opts.listeners {
				_ = l.Close()
			}
		}
	}()
	var tlsConfig *tls.Config
	switch cfg.TLS.Mode {
	case "files":
		s.files, err = servingtls.NewFiles(cfg.TLS.CertFile, cfg.TLS.KeyFile,
			servingtls.WithInterval(cfg.TLS.ReloadInterval.Duration), servingtls.WithLogger(logger.With("component", "tls")))
		if err != nil {
			return nil, err
		}
		tlsConfig = s.files.Config()
		cert, _ := tlsConfig.GetCertificate(nil) // the pair NewFiles loaded
		if err := checkEntraHostNames(cert.Leaf, cfg, logger); err != nil {
			return nil, err
		}
	case "spiffe":
		// Without a registration entry the agent never answers: say what
		// the start is waiting for.
		logger.Info("waiting for the gateway's X.509-SVID from the Workload API", "addr", cfg.WorkloadAPI.SocketPath)
		s.svid, err = servingtls.NewSVID(ctx, cfg.WorkloadAPI.SocketPath)
		if err != nil {
			return nil, err
		}
		tlsConfig = s.svid.Config()
	case "none":
		logger.Warn("serving plain HTTP (tls.mode none): only behind a proxy that terminates TLS")
	}

	if err := s.newProvider(ctx); err != nil {
		return nil, err
	}
	if s.oidc.Net, err = s.listen("oidc.listen_addr", cfg.OIDC.ListenAddr); err != nil {
		return nil, err
	}
	s.oidc.Name, s.oidc.TLS, s.oidc.Public = "oidc", tlsConfig, true
	checks := []health.Check{}
	for _, iss := range s.issuers {
		s.metrics.KeySetAge(iss.URL(), func() time.Time { return iss.Status().Source.Changed })
		checks = append(checks, health.Check{Name: "oidc " + iss.URL(), Ready: func() (bool, any) {
			st := iss.Status()
			return st.Ready, st
		}})
	}
	if cfg.Entra.ListenAddr != "" {
		if err := s.newEntra(ctx); err != nil {
			return nil, err
		}
		// As with the seed: keys now when the store answers, else in Run.
		if err := s.ent.Signer.Refresh(ctx); err != nil {
			s.startErr = errors.Join(s.startErr, err)
			logger.Warn("no signing keys from the store yet; retrying", "error", err)
		}
		if s.entra.Net, err = s.listen("entra.listen_addr", cfg.Entra.ListenAddr); err != nil {
			return nil, err
		}
		s.entra.Name, s.entra.TLS = "entra", tlsConfig
		s.entra.Handler = s.metrics.Instrument("entra", s.ent.Route, s.ent.Handler)
		checks = append(checks, health.Check{Name: "entra signing keys", Ready: func() (bool, any) {
			if s.ent.Signer.Ready() {
				return true, nil
			}
			return false, "no signing key loaded from the store yet"
		}})
		if s.seeder != nil {
			checks = append(checks, health.Check{Name: "entra seed file", Ready: func() (bool, any) {
				if s.seeded.Load() {
					return true, nil
				}
				return false, "the seed file has not been applied yet"
			}})
		}
	}
	if s.health.Net, err = s.listen("health.listen_addr", cfg.Health.ListenAddr); err != nil {
		return nil, err
	}
	s.health.Name, s.health.Handler = "health", health.Handler(checks...)
	if cfg.Health.Profiling {
		s.health.Handler = withProfiling(s.health.Handler)
		logger.Warn("profiling is on: /debug/pprof/ is served on the health listener", "addr", s.health.Net.Addr().String())
	}
	if addr := cfg.Metrics.ListenAddr; addr != "" {
		if s.metricsL.Net, err = s.listen("metrics.listen_addr", addr); err != nil {
			return nil, err
		}
		s.metricsL.Name = "metrics"
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", s.metrics.Handler())
		s.metricsL.Handler = mux
	}
	return s, nil
}

// listen binds the listener of configuration key, or takes the one the
// caller bound (WithListener).
func (s *Server) listen(key, addr string) (net.Listener, error) {
	if l, ok := s.opts.listeners[key]; ok {
		delete(s.opts.listeners, key) // closed with the server from now on
		return l, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", key, addr, err)
	}
	return l, nil
}

// newProvider opens a key source per trust domain and the handler over
// their issuers.
func (s *Server) newProvider(ctx context.Context) error {
	o := s.cfg.OIDC
	for _, d := range append([]config.Domain{o.Domain}, o.AdditionalDomains...) {
		td, err := spiffeid.TrustDomainFromString(d.TrustDomain)
		if err != nil {
			return err
		}
		log := s.logger.With("component", "keysource", "trust_domain", td.Name())
		var src keysource.Source
		if d.BundleFile != "" {
			src, err = keysource.NewFile(ctx, td, d.BundleFile,
				keysource.WithInterval(o.BundlePollInterval.Duration), keysource.WithFileLogger(log))
		} else {
			src, err = keysource.NewWorkloadAPI(ctx, td, keysource.WithAddr(s.cfg.WorkloadAPI.SocketPath), keysource.WithLogger(log))
		}
		if err != nil {
			return fmt.Errorf("keys of trust domain %s: %w", td.Name(), err)
		}
		s.sources = append(s.sources, src)
		opts := []discovery.Option{
			discovery.WithMaxAge(o.MaxAge.Duration),
			discovery.WithStaleness(o.Staleness.Duration),
			discovery.WithLogger(s.logger.With("component", "oidc")),
		}
		if d.JWKSURI != "" {
			opts = append(opts, discovery.WithJWKSURI(d.JWKSURI))
		}
		if d.PathPrefix != "" {
			opts = append(opts, discovery.WithPathPrefix(d.PathPrefix))
		}
		if len(d.AllowedHosts) > 0 {
			opts = append(opts, discovery.WithAllowedHosts(d.AllowedHosts...))
		}
		if o.SetKeyUse != nil && !*o.SetKeyUse {
			opts = append(opts, discovery.WithoutKeyUse())
		}
		iss, err := discovery.NewIssuer(src, d.Issuer, opts...)
		if err != nil {
			return err
		}
		s.issuers = append(s.issuers, iss)
	}
	var proxies []netip.Prefix
	for _, p := range o.TrustedProxies {
		proxies = append(proxies, netip.MustParsePrefix(p)) // validated by config
	}
	h, err := discovery.New(s.issuers, discovery.WithTrustedProxies(proxies...))
	if err != nil {
		return err
	}
	s.oidc.Handler = s.metrics.Instrument("oidc", h.Route, h)
	return nil
}

// waitForKeys waits until every key source has its first key set.
func (s *Server) waitForKeys(ctx context.Context, timeout time.Duration) error {
	deadline := time.After(timeout)
	for _, src := range s.sources {
		for {
			updated := src.Updated()
			if _, ok := src.KeySet(); ok {
				break
			}
			select {
			case <-updated:
			case <-deadline:
				return fmt.Errorf("no JWT keys from the Workload API within %v: %s", timeout, src.Status().Err)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}

// Run serves until ctx ends, then releases everything.
func (s *Server) Run(ctx context.Context) error {
	defer s.close()
	for _, iss := range s.issuers {
		go iss.Run(ctx)
	}
	if s.files != nil {
		go s.files.Run(ctx)
	}
	listeners := []httpserve.Listener{s.oidc, s.health}
	if s.metricsL.Net != nil {
		listeners = append(listeners, s.metricsL)
	}
	if s.ent != nil {
		go s.ent.Run(ctx)
		if s.seeder != nil {
			go s.applySeed(ctx)
		}
		listeners = append(listeners, s.entra)
	}
	for _, l := range listeners {
		scheme := "https"
		if l.TLS == nil {
			scheme = "http"
		}
		s.logger.Info("listening", "listener", l.Name, "addr", l.Net.Addr().String(), "scheme", scheme)
	}
	return httpserve.Serve(ctx, s.logger, listeners...)
}

func (s *Server) close() {
	var errs []error
	for _, src := range s.sources {
		errs = append(errs, src.Close())
	}
	if s.svid != nil {
		errs = append(errs, s.svid.Close())
	}
	for _, l := range []net.Listener{s.oidc.Net, s.entra.Net, s.health.Net, s.metricsL.Net} {
		if l != nil {
			_ = l.Close()
		}
	}
	if s.store != nil {
		errs = append(errs, s.store.Close())
	}
	errs = append(errs, s.storeLock.Release())
	if err := errors.Join(errs...); err != nil {
		s.logger.Warn("closing the gateway", "error", err)
	}
}
