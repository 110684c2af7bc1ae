// Package entra serves the gateway's Entra ID surface: OpenID discovery,
// signing keys and the token endpoint, shaped like Entra's so that unmodified
// Azure SDKs and MSAL work against it.
package entra

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store/readcache"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/aadsts"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/federation"
)

// AssertionVerifier decides whether a federated assertion stands in for a
// client's secret; *federation.Verifier is the implementation.
type AssertionVerifier interface {
	// Verify returns the matching credential, or why the assertion is
	// refused as an *aadsts.Error.
	Verify(ctx context.Context, assertion string, creds []store.FederatedCredential) (*federation.Match, error)
}

// TokenSigner signs access tokens and publishes the keys that verify them;
// *signer.Signer is the implementation.
type TokenSigner interface {
	Sign(payload []byte, withX5T bool) (string, error)
	PublicKeysJSON() []byte
}

// Server is the Entra endpoint.
type Server struct {
	// directory answers the lookups of every request, through a view of
	// the store's generation read once per request.
	directory *readcache.Cache
	verifier  AssertionVerifier
	signer    TokenSigner
	opts      options

	// Guessing defences: failures per user (smart lockout), per client and
	// per client from one address, and the bound on password hashing.
	userFailures, clientFailures, sourceFailures *failureCounter
	passwords                                    *passwordChecker
}

type options struct {
	now           func() time.Time
	logger        *slog.Logger
	tokenLifetime time.Duration
	maxBody       int64
	metrics       Metrics
	defaultTenant string
	directory     *readcache.Cache
}

// Option configures a Server.
type Option func(*options)

// WithClock sets the time source.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// Metrics is told the outcome of every token request, by grant type
// ("client_credentials", "password", "unsupported" or "none").
type Metrics interface {
	TokenIssued(grant string)
	TokenRefused(grant string, code int)
}

// WithMetrics reports token outcomes to m.
func WithMetrics(m Metrics) Option { return func(o *options) { o.metrics = m } }

// WithDefaultTenant names the tenant that the ADFS-shaped authority
// (https://HOST/adfs) stands for. MSAL for Python, inside az, asks
// login.microsoftonline.com to validate any other custom authority and
// cannot be told not to; for an authority whose first path segment is
// "adfs" it reads only {authority}/.well-known/openid-configuration and
// posts to the token_endpoint found there, this tenant's v2.0 endpoint.
func WithDefaultTenant(id string) Option { return func(o *options) { o.defaultTenant = id } }

// WithReadCache looks the directory up through c, a cache of the store the
// Server is given; without it, the Server keeps a cache of its own.
func WithReadCache(c *readcache.Cache) Option { return func(o *options) { o.directory = c } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithTokenLifetime sets how long access tokens are valid (default one hour,
// as Entra's app-only tokens to registered APIs).
func WithTokenLifetime(d time.Duration) Option { return func(o *options) { o.tokenLifetime = d } }

// New returns the Entra endpoint over s.
func New(s store.Store, v AssertionVerifier, sg TokenSigner, opts ...Option) *Server {
	o := options{now: time.Now, logger: slog.New(slog.DiscardHandler), tokenLifetime: time.Hour, maxBody: 64 << 10, metrics: noMetrics{}}
	for _, opt := range opts {
		opt(&o)
	}
	if o.directory == nil {
		o.directory = readcache.New(s)
	}
	return &Server{directory: o.directory, verifier: v, signer: sg, opts: o,
		userFailures:   newFailureCounter(userFailures, failureWindow),
		clientFailures: newFailureCounter(clientFailures, failureWindow),
		sourceFailures: newFailureCounter(sourceFailures, failureWindow),
		passwords:      newPasswordChecker(),
	}
}

// Handler returns the HTTP routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", s.discovery(2))
	mux.HandleFunc("GET /{tenant}/.well-known/openid-configuration", s.discovery(1))
	mux.HandleFunc("GET /{tenant}/discovery/v2.0/keys", s.keys(2))
	mux.HandleFunc("GET /{tenant}/discovery/keys", s.keys(1))
	mux.HandleFunc("GET /common/discovery/instance", s.instanceDiscovery)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", s.token(2))
	mux.HandleFunc("POST /{tenant}/oauth2/token", s.token(1))
	// Everything else is answered in JSON, as clients of this listener
	// parse it, not with the router's plain text.
	for _, p := range []string{"/{tenant}/oauth2/v2.0/token", "/{tenant}/oauth2/token"} {
		mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			s.writeError(w, r, aadsts.New(aadsts.MethodNotAccepted, "The endpoint only accepts POST, OPTIONS requests. Received a %s request.", r.Method))
		})
	}
	mux.HandleFunc("/", notFound)
	return mux
}

// notFound answers a path that is no endpoint, or a method a GET-only
// endpoint does not take, in the OAuth error shape.
func notFound(w http.ResponseWriter, r *http.Request) {
	status, msg := http.StatusNotFound, "No endpoint of this service is at "+r.URL.Path+"; the token endpoint is POST /{tenant}/oauth2/v2.0/token."
	if strings.HasSuffix(r.URL.Path, "/openid-configuration") || strings.Contains(r.URL.Path, "/discovery/") {
		status, msg = http.StatusMethodNotAllowed, "The endpoint only accepts GET requests. Received a "+r.Method+" request."
		w.Header().Set("Allow", "GET, HEAD")
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_request", "error_description": msg})
}

// grantLabel bounds the metrics label to the grants the endpoint knows.
func grantLabel(grantType string) string {
	switch grantType {
	case "client_credentials", "password":
		return grantType
	case "":
		return "none"
	}
	return "unsupported"
}

type noMetrics struct{}

func (noMetrics) TokenIssued(string)       {}
func (noMetrics) TokenRefused(string, int) {}

// Route names what r asks for, for metrics: "token", "discovery", "keys",
// "instance_discovery" or "other".
func Route(r *http.Request) string {
	p := r.URL.Path
	switch {
	case strings.HasSuffix(p, "/oauth2/v2.0/token"), strings.HasSuffix(p, "/oauth2/token"):
		return "token"
	case strings.HasSuffix(p, "/.well-known/openid-configuration"):
		return "discovery"
	case p == "/common/discovery/instance":
		return "instance_discovery"
	case strings.HasSuffix(p, "/discovery/v2.0/keys"), strings.HasSuffix(p, "/discovery/keys"):
		return "keys"
	}
	return "other"
}
