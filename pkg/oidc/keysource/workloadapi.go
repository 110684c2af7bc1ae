package keysource

import (
	"context"
	"log/slog"

	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// WorkloadAPI follows the Workload API's JWT bundle stream for one trust
// domain. go-spiffe reconnects by itself when the agent goes away; the last
// keys stay published meanwhile.
type WorkloadAPI struct {
	*publisher
	td     spiffeid.TrustDomain
	logger *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}
}

// Option configures a WorkloadAPI source.
type Option func(*wopts)

type wopts struct {
	addr   string
	logger *slog.Logger
}

// WithAddr sets the Workload API address (default $SPIFFE_ENDPOINT_SOCKET).
func WithAddr(addr string) Option { return func(o *wopts) { o.addr = addr } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(o *wopts) { o.logger = l } }

// NewWorkloadAPI starts watching td's JWT bundle. It returns at once; the
// first set arrives through Updated.
func NewWorkloadAPI(ctx context.Context, td spiffeid.TrustDomain, opts ...Option) (*WorkloadAPI, error) {
	o := wopts{logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	var clientOpts []workloadapi.ClientOption
	if o.addr != "" {
		if err := workloadapi.ValidateAddress(o.addr); err != nil {
			return nil, err
		}
		clientOpts = append(clientOpts, workloadapi.WithAddr(o.addr))
	}
	ctx, cancel := context.WithCancel(ctx)
	client, err := workloadapi.New(ctx, clientOpts...)
	if err != nil {
		cancel()
		return nil, err
	}
	s := &WorkloadAPI{publisher: newPublisher(), td: td, logger: o.logger, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer client.Close()
		// The watch returns only with an error: ctx's end, or a failure.
		if err := client.WatchJWTBundles(ctx, s); ctx.Err() == nil {
			s.logger.Error("the Workload API JWT bundle watch ended", "error", err)
		}
	}()
	return s, nil
}

// OnJWTBundlesUpdate implements workloadapi.JWTBundleWatcher.
func (s *WorkloadAPI) OnJWTBundlesUpdate(set *jwtbundle.Set) {
	if s.recovered() {
		s.logger.Info("the Workload API is back")
	}
	b, ok := set.Get(s.td)
	if !ok {
		s.logger.Error("the Workload API sent no JWT bundle for the trust domain; keeping the last keys", "trust_domain", s.td.String())
		return
	}
	keys := publicJWKs(b.JWTAuthorities(), func(err error) { s.logger.Warn("skipping a key of the JWT bundle", "error", err) })
	if err := s.publish(keys); err != nil {
		s.logger.Error("cannot publish the JWT bundle", "error", err)
	}
}

// OnJWTBundlesWatchError implements workloadapi.JWTBundleWatcher. It logs
// once per outage, not on every retry.
func (s *WorkloadAPI) OnJWTBundlesWatchError(err error) {
	if status.Code(err) == codes.Canceled {
		return // Close
	}
	if s.fail(err) {
		s.logger.Warn("the Workload API is unavailable; serving the last keys while go-spiffe reconnects", "error", err)
	}
}

// Close stops watching.
func (s *WorkloadAPI) Close() error {
	s.cancel()
	<-s.done
	return nil
}
