// Package graph serves the part of Microsoft Graph that sets up workload
// identity federation: applications with their secrets and federated
// identity credentials, service principals and app role assignments, in
// Graph's shapes and with Graph's errors, so that scripts written for
// Graph run against the gateway unchanged.
package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/mgmt/apiauth"
)

// maxBody bounds request bodies.
const maxBody = 256 << 10

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
func New(s store.Store, auth *apiauth.Verifier, parse directory.ExpressionParser, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Server{store: s, auth: auth, parse: parse, now: time.Now, logger: logger}
}

// apiError is Graph's error: its status, code and message, and for a
// failure of the store its cause, which is logged, not sent.
type apiError struct {
	status  int
	code    string
	message string
	cause   error
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func denied() *apiError {
	return newError(http.StatusForbidden, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
}

func badRequest(code, format string, args ...any) *apiError {
	return newError(http.StatusBadRequest, code, fmt.Sprintf(format, args...))
}

func notFound(format string, args ...any) *apiError {
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
	caller, err := s.auth.Verify(r, directory.GraphResource, directory.GraphAppID)
	if err != nil {
		msg := "Access token validation failure."
		if errors.Is(err, apiauth.ErrMissing) {
			msg = "Access token is empty."
		} else if strings.Contains(err.Error(), "audience") {
			msg = "Access token validation failure. Invalid audience."
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="`+directory.GraphAppID+`"`)
		s.fail(q, newError(http.StatusUnauthorized, "InvalidAuthenticationToken", msg))
		return
	}
	q.caller = caller
	switch {
	case caller.HasRole(directory.GraphApplicationReadWriteAll):
	case caller.HasRole(directory.GraphApplicationReadWriteOwnedBy):
		q.ownedOnly = true
	default:
		s.fail(q, denied())
		return
	}
	segs := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/v1.0"), "/"), "/")
	var aerr *apiError
	switch {
	case segs[0] == "applications" || strings.HasPrefix(segs[0], "applications("):
		aerr = s.applications(q, segs)
	case segs[0] == "servicePrincipals" || strings.HasPrefix(segs[0], "servicePrincipals("):
		aerr = s.servicePrincipals(q, segs)
	default:
		aerr = newError(http.StatusBadRequest, "BadRequest", fmt.Sprintf("Resource not found for the segment '%s'.", segs[0]))
	}
	if aerr != nil {
		s.fail(q, aerr)
	}
}

// fail writes Graph's error body.
func (s *Server) fail(q *request, e *apiError) {
	if e.cause != nil {
		s.logger.Error("graph call failed", "method", q.r.Method, "path", q.r.URL.Path, "request_id", q.id, "error", e.cause)
	}
	if e.status == http.StatusServiceUnavailable {
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

// backend turns a store failure into Graph's answer.
func backend(err error) *apiError {
	if errors.Is(err, store.ErrNotFound) {
		return notFound("Resource does not exist or one of its queried reference-property objects are not present.")
	}
	e := newError(http.StatusServiceUnavailable, "serviceNotAvailable", "The service is temporarily unavailable. Please retry later.")
	e.cause = err
	return e
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// decode reads a JSON body of at most maxBody bytes into v, refusing
// unknown properties as Graph does.
func decode(r *http.Request, v any) *apiError {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return badRequest("BadRequest", "The request body could not be read.")
	}
	if len(body) > maxBody {
		return newError(http.StatusRequestEntityTooLarge, "Request_EntityTooLarge", fmt.Sprintf("The request body is larger than %d bytes.", maxBody))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var unknown string
		if _, after, ok := strings.Cut(err.Error(), "unknown field "); ok {
			unknown = strings.Trim(after, `"`)
			return badRequest("Request_BadRequest", "Property '%s' does not exist on type 'microsoft.graph'.", unknown)
		}
		return badRequest("BadRequest", "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.")
	}
	return nil
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

func newError(status int, code, message string) *apiError {
	return &apiError{status: status, code: code, message: message}
}
