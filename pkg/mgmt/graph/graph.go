// Package graph serves the part of Microsoft Graph that sets up workload
// identity federation: applications with their secrets and federated
// identity credentials, service principals and app role assignments, in
// Graph's shapes and with Graph's errors, so that scripts written for
// Graph run against the gateway unchanged.
package graph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/mgmt/apiauth"
)

// Server serves /v1.0/.
type Server struct {
	store  store.Store
	auth   *apiauth.Verifier
	parse  directory.ExpressionParser
	now    func() time.Time
	logger *slog.Logger
}

// New returns the Graph endpoint over s; tokens are checked by auth and
// flexible credentials' expressions by parse.
func New(s store.Store, auth *apiauth.Verifier, parse directory.ExpressionParser, opts ...Option) *Server {
	srv := &Server{store: s, auth: auth, parse: parse, now: time.Now, logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(srv)
	}
	return srv
}

// Option configures a Server.
type Option func(*Server)

// WithLogger sets the logger, which records the causes of 503s.
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.logger = l } }

// apiError is Graph's error: its status, code and message. Handlers return
// it, or any other error, which writeError answers.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func denied() error {
	return newError(http.StatusForbidden, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
}

func badRequest(code, format string, args ...any) error {
	return newError(http.StatusBadRequest, code, fmt.Sprintf(format, args...))
}

func notFound(format string, args ...any) error {
	return newError(http.StatusNotFound, "Request_ResourceNotFound", fmt.Sprintf(format, args...))
}

// request is one call: who made it, in which tenant, with which ids.
type request struct {
	w      http.ResponseWriter
	r      *http.Request
	caller apiauth.Caller
	id     string // request-id
	// ownedOnly limits the caller to the applications it owns
	// (Application.ReadWrite.OwnedBy).
	ownedOnly bool
}

// ServeHTTP routes /v1.0/... after checking the caller's token.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := &request{w: w, r: r, id: uuid.NewString()}
	w.Header().Set("request-id", q.id)
	if c := r.Header.Get("client-request-id"); c != "" {
		w.Header().Set("client-request-id", c)
	}
	// Entra keeps the resource as asked: az and others ask with a slash.
	caller, err := s.auth.Verify(r, directory.GraphAppID, directory.GraphResource, directory.GraphResource+"/", directory.GraphAppID)
	if err != nil && !errors.Is(err, apiauth.ErrMissing) && !errors.Is(err, apiauth.ErrInvalid) {
		s.writeError(q, err) // the directory could not be asked
		return
	}
	if err != nil {
		msg := "Access token validation failure."
		if errors.Is(err, apiauth.ErrMissing) {
			msg = "Access token is empty."
		} else if errors.Is(err, apiauth.ErrAudience) {
			msg = "Access token validation failure. Invalid audience."
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="`+directory.GraphAppID+`"`)
		s.writeError(q, newError(http.StatusUnauthorized, "InvalidAuthenticationToken", msg))
		return
	}
	q.caller = caller
	switch {
	case caller.HasRole(directory.GraphApplicationReadWriteAll):
	case caller.HasRole(directory.GraphApplicationReadWriteOwnedBy):
		q.ownedOnly = true
	default:
		s.writeError(q, denied())
		return
	}
	segs := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/v1.0"), "/"), "/")
	switch {
	case segs[0] == "applications" || strings.HasPrefix(segs[0], "applications("):
		err = s.applications(q, segs)
	case segs[0] == "servicePrincipals" || strings.HasPrefix(segs[0], "servicePrincipals("):
		err = s.servicePrincipals(q, segs)
	default:
		err = badRequest("BadRequest", "Resource not found for the segment '%s'.", segs[0])
	}
	if err != nil {
		s.writeError(q, err)
	}
}

// writeError is Graph's one error writer: an *apiError is sent as it is,
// store.ErrNotFound is Graph's 404, and anything else is a failure of the
// store, logged with its cause and answered with Graph's retryable 503.
func (s *Server) writeError(q *request, err error) {
	var e *apiError
	switch {
	case errors.As(err, &e):
	case errors.Is(err, store.ErrNotFound):
		e = &apiError{http.StatusNotFound, "Request_ResourceNotFound", "Resource does not exist or one of its queried reference-property objects are not present."}
	default:
		s.logger.Error("graph call failed", "method", q.r.Method, "path", q.r.URL.Path, "request_id", q.id, "error", err)
		e = &apiError{http.StatusServiceUnavailable, "serviceNotAvailable", "The service is temporarily unavailable. Please retry later."}
		q.w.Header().Set("Retry-After", "5")
	}
	body := map[string]any{"error": map[string]any{
		"code": e.code, "message": e.message,
		"innerError": map[string]string{
			"date": s.now().UTC().Format("2006-01-02T15:04:05"), "request-id": q.id,
			"client-request-id": q.r.Header.Get("client-request-id"),
		},
	}}
	writeJSON(q.w, e.status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// origin is the scheme and host the client called.
func origin(r *http.Request) string {
	if r.TLS == nil {
		return "http://" + r.Host
	}
	return "https://" + r.Host
}

// base prefixes @odata.context values.
func base(r *http.Request) string { return origin(r) + "/v1.0/$metadata#" }

// keyRef parses `name(key='value')` segments such as applications(appId='x').
func keyRef(seg, name, key string) (string, bool) {
	v, ok := strings.CutPrefix(seg, name+"("+key+"='")
	if !ok || !strings.HasSuffix(v, "')") {
		return "", false
	}
	return strings.ReplaceAll(strings.TrimSuffix(v, "')"), "''", "'"), true
}

func (q *request) ctx() context.Context { return q.r.Context() }

func newError(status int, code, message string) error {
	return &apiError{status: status, code: code, message: message}
}
