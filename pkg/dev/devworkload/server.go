// Package devworkload is a development SPIFFE Workload API: a real gRPC
// server of the public protocol that issues RS256 JWT-SVIDs and streams the
// JWT bundle, standing in for a SPIRE agent in development and tests.
package devworkload

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

// Server is the development Workload API.
type Server struct {
	workload.UnimplementedSpiffeWorkloadAPIServer

	opts options
	grpc *grpc.Server

	mu      sync.Mutex
	keys    []*signingKey // published; the last one signs
	changed chan struct{} // closed and replaced when keys change
}

type options struct {
	keyDir      string
	trustDomain spiffeid.TrustDomain
	id          spiffeid.ID
	issuer      string
	ttl         time.Duration
	now         func() time.Time
	logger      *slog.Logger
}

// Option configures a Server.
type Option func(*options) error

// WithKeyDir keeps the signing key in dir, created on first start and
// reused after (required).
func WithKeyDir(dir string) Option { return func(o *options) error { o.keyDir = dir; return nil } }

// WithTrustDomain sets the trust domain of the bundle (default example.org).
func WithTrustDomain(td spiffeid.TrustDomain) Option {
	return func(o *options) error { o.trustDomain = td; return nil }
}

// WithSPIFFEID sets the SPIFFE ID every caller receives (default
// spiffe://example.org/dev/workload).
func WithSPIFFEID(id string) Option {
	return func(o *options) error {
		parsed, err := spiffeid.FromString(id)
		if err != nil {
			return fmt.Errorf("devworkload: SPIFFE ID %q: %w", id, err)
		}
		o.id = parsed
		return nil
	}
}

// WithIssuer sets the iss claim, byte for byte (default none, as SPIRE
// without jwt_issuer).
func WithIssuer(issuer string) Option {
	return func(o *options) error { o.issuer = issuer; return nil }
}

// WithSVIDTTL sets the JWT-SVID lifetime (default one hour).
func WithSVIDTTL(ttl time.Duration) Option { return func(o *options) error { o.ttl = ttl; return nil } }

// WithClock sets the time source.
func WithClock(now func() time.Time) Option {
	return func(o *options) error { o.now = now; return nil }
}

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(o *options) error { o.logger = l; return nil } }

// New returns a server with the key in the key directory, creating it if
// missing.
func New(opts ...Option) (*Server, error) {
	o := options{
		trustDomain: spiffeid.RequireTrustDomainFromString("example.org"),
		id:          spiffeid.RequireFromString("spiffe://example.org/dev/workload"),
		ttl:         time.Hour,
		now:         time.Now,
		logger:      slog.New(slog.DiscardHandler),
	}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if o.keyDir == "" {
		return nil, errors.New("devworkload: a key directory is required")
	}
	key, err := loadOrCreateKey(o.keyDir)
	if err != nil {
		return nil, err
	}
	s := &Server{opts: o, keys: []*signingKey{key}, changed: make(chan struct{})}
	s.grpc = grpc.NewServer(grpc.UnaryInterceptor(requireHeaderUnary), grpc.StreamInterceptor(requireHeaderStream))
	workload.RegisterSpiffeWorkloadAPIServer(s.grpc, s)
	return s, nil
}

// ListenUnix listens on a unix socket at path, replacing a stale socket
// file. Clients use the address "unix://" + path.
func ListenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("devworkload: socket directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		_ = os.Remove(path)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("devworkload: listen on %s: %w", path, err)
	}
	return l, nil
}

// Serve serves the Workload API on l until Stop.
func (s *Server) Serve(l net.Listener) error { return s.grpc.Serve(l) }

// Stop ends open streams and stops the server.
func (s *Server) Stop() { s.grpc.Stop() }

// Rotate prepares a new signing key: it is published in the bundle at once
// and signs SVIDs from the next Activate, as SPIRE's `localauthority jwt
// prepare` and `activate` do. The new key is not persisted.
func (s *Server) Rotate() error {
	k, err := newKey()
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.keys = append([]*signingKey{k}, s.keys...) // prepared keys sign last
	s.notifyLocked()
	s.mu.Unlock()
	return nil
}

// Activate makes the newest prepared key sign and, with dropOld, removes
// every other key from the bundle.
func (s *Server) Activate(dropOld bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.keys) < 2 {
		return
	}
	newest := s.keys[0]
	if dropOld {
		s.keys = []*signingKey{newest}
	} else {
		s.keys = append(s.keys[1:], newest)
	}
	s.notifyLocked()
}

func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// state returns the current keys and the channel closed on their next change.
func (s *Server) state() ([]*signingKey, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*signingKey(nil), s.keys...), s.changed
}

// requireHeader enforces the metadata every Workload API client sends, as
// SPIRE's agent does, so that a browser or a proxied request cannot call it.
func requireHeader(ctx context.Context) error {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok || len(md.Get("workload.spiffe.io")) != 1 || md.Get("workload.spiffe.io")[0] != "true" {
		return status.Error(codes.InvalidArgument, "security header missing from request")
	}
	return nil
}

func requireHeaderUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := requireHeader(ctx); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func requireHeaderStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := requireHeader(ss.Context()); err != nil {
		return err
	}
	return h(srv, ss)
}

// FetchJWTSVID issues a JWT-SVID for the requested audiences.
func (s *Server) FetchJWTSVID(_ context.Context, req *workload.JWTSVIDRequest) (*workload.JWTSVIDResponse, error) {
	if len(req.Audience) == 0 {
		return nil, status.Error(codes.InvalidArgument, "audience must be specified")
	}
	if req.SpiffeId != "" && req.SpiffeId != s.opts.id.String() {
		return nil, status.Errorf(codes.PermissionDenied, "no identity issued for %s", req.SpiffeId)
	}
	keys, _ := s.state()
	signer := keys[len(keys)-1]
	now := s.opts.now()
	// aud is always an array, as SPIRE writes it; iss only when configured.
	claims := map[string]any{"sub": s.opts.id.String(), "aud": req.Audience, "iat": now.Unix(), "exp": now.Add(s.opts.ttl).Unix()}
	if s.opts.issuer != "" {
		claims["iss"] = s.opts.issuer
	}
	token, err := jwt.Signed(signer.signer).Claims(claims).Serialize()
	if err != nil {
		return nil, status.Errorf(codes.Internal, "sign JWT-SVID: %v", err)
	}
	return &workload.JWTSVIDResponse{Svids: []*workload.JWTSVID{{SpiffeId: s.opts.id.String(), Svid: token}}}, nil
}

// FetchJWTBundles streams the JWT bundle now and on every key change.
func (s *Server) FetchJWTBundles(_ *workload.JWTBundlesRequest, stream workload.SpiffeWorkloadAPI_FetchJWTBundlesServer) error {
	for {
		keys, changed := s.state()
		bundle, err := jwksJSON(keys)
		if err != nil {
			return status.Errorf(codes.Internal, "bundle: %v", err)
		}
		if err := stream.Send(&workload.JWTBundlesResponse{Bundles: map[string][]byte{s.opts.trustDomain.IDString(): bundle}}); err != nil {
			return err
		}
		select {
		case <-changed:
		case <-stream.Context().Done():
			return nil
		}
	}
}

// ValidateJWTSVID validates a JWT-SVID against the current keys.
func (s *Server) ValidateJWTSVID(_ context.Context, req *workload.ValidateJWTSVIDRequest) (*workload.ValidateJWTSVIDResponse, error) {
	if req.Audience == "" {
		return nil, status.Error(codes.InvalidArgument, "audience must be specified")
	}
	if req.Svid == "" {
		return nil, status.Error(codes.InvalidArgument, "svid must be specified")
	}
	tok, err := jwt.ParseSigned(req.Svid, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "malformed JWT-SVID: %v", err)
	}
	keys, _ := s.state()
	var pub *rsa.PublicKey
	for _, k := range keys {
		if len(tok.Headers) == 1 && k.kid == tok.Headers[0].KeyID {
			pub = &k.private.PublicKey
		}
	}
	if pub == nil {
		return nil, status.Error(codes.InvalidArgument, "JWT-SVID signed by an unknown key")
	}
	var claims jwt.Claims
	var all map[string]any
	if err := tok.Claims(pub, &claims, &all); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "JWT-SVID signature: %v", err)
	}
	if err := claims.ValidateWithLeeway(jwt.Expected{AnyAudience: jwt.Audience{req.Audience}, Time: s.opts.now()}, 0); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "JWT-SVID: %v", err)
	}
	fields, err := structpb.NewStruct(jsonSafe(all))
	if err != nil {
		return nil, status.Errorf(codes.Internal, "claims: %v", err)
	}
	return &workload.ValidateJWTSVIDResponse{SpiffeId: claims.Subject, Claims: fields}, nil
}

// jsonSafe round-trips claims through JSON so that structpb accepts them.
func jsonSafe(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}
