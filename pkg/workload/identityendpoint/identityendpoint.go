// Package identityendpoint serves the managed-identity protocols Azure SDKs
// and the Azure CLI already speak, backed by the JWT-SVID exchange: a client
// that knows only "managed identity" gets its tokens from the sidecar with no
// code change and no authority or instance-discovery setting.
//
// Three request shapes are answered on one listener:
//
//   - IMDS: GET /metadata/identity/oauth2/token?api-version=…&resource=…
//     with "Metadata: true" (what every SDK does when nothing else is set, at
//     169.254.169.254 or AZURE_POD_IDENTITY_AUTHORITY_HOST);
//   - App Service: GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=…
//     with X-IDENTITY-HEADER set to IDENTITY_HEADER, and its older form
//     (MSI_ENDPOINT, MSI_SECRET, api-version 2017-09-01, a "secret" header);
//   - Cloud Shell: POST {MSI_ENDPOINT} with the form resource=… and
//     "Metadata: true", what az login --identity sends when MSI_ENDPOINT is set.
//
// Tokens are cached per client id and resource and exchanged again before
// they run short; concurrent requests for the same pair share one exchange.
// Like IMDS, the endpoint has no authentication beyond its headers: it must
// listen where only the workload reaches it (CheckListenAddr).
package identityendpoint

import (
	"cmp"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/workload/tokenexchange"
)

// Paths the endpoint answers on.
const (
	// IMDSPath is the instance metadata service's token path.
	IMDSPath = "/metadata/identity/oauth2/token"
	// MSIPath is where IDENTITY_ENDPOINT and MSI_ENDPOINT point.
	MSIPath = "/msi/token"
)

// Env is the environment that points every kind of client at an endpoint
// listening at base (http://host:port) with header: App Service's
// IDENTITY_* and its older MSI_* (also what az uses), and the IMDS host for
// the SDKs that read AZURE_POD_IDENTITY_AUTHORITY_HOST. The sidecar writes
// it to its --env-file; the admission webhook sets it in a pod.
func Env(base, header string) [][2]string {
	return [][2]string{
		{"IDENTITY_ENDPOINT", base + MSIPath},
		{"IDENTITY_HEADER", header},
		{"MSI_ENDPOINT", base + MSIPath},
		{"MSI_SECRET", header},
		{"AZURE_POD_IDENTITY_AUTHORITY_HOST", base},
	}
}

// DefaultRefreshAhead is how long a cached token must still be valid to be
// handed out. Azure SDKs ask again five minutes before a token expires; a
// token with less left would bring them straight back.
const DefaultRefreshAhead = 10 * time.Minute

// Config is what the endpoint exchanges with.
type Config struct {
	// AuthorityHost is the token endpoint's host, such as
	// https://login.microsoftonline.com.
	AuthorityHost string
	// TenantID is the tenant every exchange names.
	TenantID string
	// ClientID is the identity used when a request names none.
	ClientID string
	// Header is the secret of the App Service protocol (IDENTITY_HEADER,
	// MSI_SECRET). Requests on MSIPath with a GET must carry it.
	Header string
	// Assertion returns a JWT-SVID to present.
	Assertion func(context.Context) (string, error)
	// HTTPClient reaches the token endpoint (default: a client with a 30 s
	// timeout).
	HTTPClient *http.Client
	// RefreshAhead: see DefaultRefreshAhead.
	RefreshAhead time.Duration
	// Logger (default: discard).
	Logger *slog.Logger
	// Now replaces time.Now, for tests.
	Now func() time.Time
}

// Server is the managed-identity endpoint, an http.Handler.
type Server struct {
	cfg   Config
	group singleflight.Group

	mu    sync.Mutex
	cache map[cacheKey]cached
}

type cacheKey struct{ clientID, resource string }

type cached struct {
	accessToken string
	expires     time.Time
	notBefore   time.Time
}

// New checks cfg and returns the endpoint.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.AuthorityHost == "":
		return nil, errors.New("identity endpoint: no authority host")
	case cfg.TenantID == "":
		return nil, errors.New("identity endpoint: no tenant id")
	case cfg.ClientID == "":
		return nil, errors.New("identity endpoint: no client id")
	case len(cfg.Header) < 16:
		return nil, errors.New("identity endpoint: the identity header secret must have at least 16 characters")
	case cfg.Assertion == nil:
		return nil, errors.New("identity endpoint: no assertion source")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.RefreshAhead <= 0 {
		cfg.RefreshAhead = DefaultRefreshAhead
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Server{cfg: cfg, cache: map[cacheKey]cached{}}, nil
}

// CheckListenAddr refuses addresses reachable from outside the workload: the
// endpoint hands out tokens to whoever asks with the right headers, as IMDS
// does, so it listens on loopback or a link-local address (169.254.169.254
// added to the pod's loopback) only.
func CheckListenAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("identity endpoint address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !(ip.IsLoopback() || ip.IsLinkLocalUnicast()) {
		return fmt.Errorf("identity endpoint address %q: listen on a loopback address (127.0.0.1:PORT) or a link-local one "+
			"(169.254.169.254:80): anyone who reaches the endpoint gets the workload's tokens", addr)
	}
	return nil
}

// ServeHTTP answers the three request shapes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// IMDS refuses proxied requests, the mark of a server-side request
	// forgery relayed by some web tier.
	if r.Header.Get("X-Forwarded-For") != "" {
		writeError(w, http.StatusBadRequest, "invalid_request", "Request with X-Forwarded-For header is not allowed")
		return
	}
	// msal-node asks for the IMDS path with a trailing slash.
	path := strings.TrimSuffix(r.URL.Path, "/")
	switch {
	case path == IMDSPath && r.Method == http.MethodGet:
		s.imds(w, r)
	case path == MSIPath && r.Method == http.MethodGet:
		s.appService(w, r)
	case path == MSIPath && r.Method == http.MethodPost:
		s.cloudShell(w, r)
	case path == IMDSPath || path == MSIPath:
		w.Header().Set("Allow", map[bool]string{true: "GET", false: "GET, POST"}[path == IMDSPath])
		writeError(w, http.StatusMethodNotAllowed, "invalid_request", "The method "+r.Method+" is not allowed")
	default:
		writeError(w, http.StatusNotFound, "not_found", "No managed-identity endpoint at "+r.URL.Path)
	}
}

func (s *Server) imds(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Metadata") != "true" {
		writeError(w, http.StatusBadRequest, "invalid_request", "Required metadata header not specified")
		return
	}
	q := r.URL.Query()
	if q.Get("api-version") == "" {
		writeError(w, http.StatusBadRequest, "invalid_request", "Required query variable 'api-version' is missing")
		return
	}
	s.answer(w, r, q.Get("resource"), q.Get("client_id"), q)
}

func (s *Server) appService(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	switch v := q.Get("api-version"); v {
	case "2019-08-01":
		if !s.headerOK(r.Header.Get("X-IDENTITY-HEADER")) {
			writeError(w, http.StatusUnauthorized, "invalid_request", "The X-IDENTITY-HEADER header is missing or wrong")
			return
		}
		s.answer(w, r, q.Get("resource"), q.Get("client_id"), q)
	case "2017-09-01":
		if !s.headerOK(r.Header.Get("Secret")) {
			writeError(w, http.StatusUnauthorized, "invalid_request", "The secret header is missing or wrong")
			return
		}
		s.answer(w, r, q.Get("resource"), cmp.Or(q.Get("clientid"), q.Get("client_id")), q)
	case "":
		writeError(w, http.StatusBadRequest, "invalid_request", "Required query variable 'api-version' is missing")
	default:
		writeError(w, http.StatusBadRequest, "invalid_request", "api-version "+v+" is not supported: use 2019-08-01 or 2017-09-01")
	}
}

func (s *Server) cloudShell(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Metadata") != "true" {
		writeError(w, http.StatusBadRequest, "invalid_request", "Required metadata header not specified")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", "The request body is not a form: "+err.Error())
		return
	}
	s.answer(w, r, r.PostForm.Get("resource"), cmp.Or(r.PostForm.Get("client_id"), r.URL.Query().Get("client_id")), r.PostForm)
}

// answer exchanges (or reuses) a token for resource and clientID and writes
// it in the shape every one of the protocols' clients reads: the numbers as
// strings, as IMDS sends them.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, resource, clientID string, params map[string][]string) {
	if resource == "" {
		writeError(w, http.StatusBadRequest, "invalid_request", "Required audience parameter not specified")
		return
	}
	for _, p := range []string{"mi_res_id", "msi_res_id", "object_id", "principal_id"} {
		if _, ok := params[p]; ok {
			writeError(w, http.StatusBadRequest, "invalid_request",
				"Identity not found: this endpoint selects identities by client_id only, not by "+p)
			return
		}
	}
	if clientID == "" {
		clientID = s.cfg.ClientID
	}
	tok, err := s.token(r.Context(), clientID, resource)
	if err != nil {
		var refused *RefusedError
		if errors.As(err, &refused) {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.WriteHeader(refused.Status)
			w.Write(refused.Body)
			return
		}
		s.cfg.Logger.Warn("managed-identity token not obtained", "client_id", clientID, "resource", resource, "error", err)
		writeError(w, http.StatusInternalServerError, "unknown_error", err.Error())
		return
	}
	now := s.cfg.Now()
	expiresIn := max(int64(tok.expires.Sub(now)/time.Second), 0)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(map[string]string{
		"access_token":   tok.accessToken,
		"refresh_token":  "",
		"expires_in":     strconv.FormatInt(expiresIn, 10),
		"expires_on":     strconv.FormatInt(tok.expires.Unix(), 10),
		"ext_expires_in": strconv.FormatInt(expiresIn, 10),
		"not_before":     strconv.FormatInt(tok.notBefore.Unix(), 10),
		"resource":       resource,
		"token_type":     "Bearer",
		"client_id":      clientID,
	})
}

// RefusedError is the token endpoint's refusal (an AADSTS error), passed on
// to the client as sent.
type RefusedError struct {
	Status int
	Body   []byte
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("the token endpoint refused the exchange (HTTP %d): %s", e.Status, e.Body)
}

// token returns an access token for resource as clientID, from the cache
// while it has more than RefreshAhead left, otherwise from one exchange
// shared by every concurrent caller. A cached token that is still valid is
// handed out when the exchange fails: the token endpoint may be down for
// a moment.
func (s *Server) token(ctx context.Context, clientID, resource string) (cached, error) {
	key := cacheKey{clientID, resource}
	s.mu.Lock()
	tok, ok := s.cache[key]
	s.mu.Unlock()
	now := s.cfg.Now()
	// A token endpoint issuing short tokens makes the margin half a lifetime.
	if ok && tok.expires.Sub(now) > min(s.cfg.RefreshAhead, tok.expires.Sub(tok.notBefore)/2) {
		return tok, nil
	}
	ch := s.group.DoChan(clientID+"\x00"+resource, func() (any, error) {
		// Detached from the first caller: others may be waiting on it.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		return s.exchange(ctx, key)
	})
	select {
	case res := <-ch:
		if res.Err == nil {
			return res.Val.(cached), nil
		}
		if ok && tok.expires.After(now.Add(time.Minute)) {
			s.cfg.Logger.Warn("token exchange failed; handing out the cached token", "client_id", clientID, "resource", resource,
				"expires", tok.expires.UTC().Format(time.RFC3339), "error", res.Err)
			return tok, nil
		}
		return cached{}, res.Err
	case <-ctx.Done():
		return cached{}, ctx.Err()
	}
}

func (s *Server) exchange(ctx context.Context, key cacheKey) (cached, error) {
	assertion, err := s.cfg.Assertion(ctx)
	if err != nil {
		return cached{}, fmt.Errorf("fetch JWT-SVID: %w", err)
	}
	start := s.cfg.Now()
	resp, err := tokenexchange.Exchange(ctx, s.cfg.HTTPClient, tokenexchange.Request{
		AuthorityHost: s.cfg.AuthorityHost, TenantID: s.cfg.TenantID, ClientID: key.clientID,
		Scope: scopeFor(key.resource), Assertion: assertion,
	})
	if err != nil {
		return cached{}, err
	}
	if !resp.OK() {
		status := resp.Status
		if status < 400 || status >= 500 {
			status = http.StatusBadGateway
		}
		s.cfg.Logger.Warn("the token endpoint refused the exchange", "client_id", key.clientID, "resource", key.resource,
			"status", resp.Status, "body", string(resp.Body))
		return cached{}, &RefusedError{Status: status, Body: resp.Body}
	}
	var body struct {
		AccessToken string          `json:"access_token"`
		ExpiresIn   json.RawMessage `json:"expires_in"`
	}
	if err := json.Unmarshal(resp.Body, &body); err != nil || body.AccessToken == "" {
		return cached{}, fmt.Errorf("the token endpoint answered 200 without an access token")
	}
	secs, err := strconv.ParseInt(strings.Trim(string(body.ExpiresIn), `"`), 10, 64)
	if err != nil || secs <= 0 {
		return cached{}, fmt.Errorf("the token endpoint answered an expires_in of %s", body.ExpiresIn)
	}
	tok := cached{accessToken: body.AccessToken, notBefore: start, expires: start.Add(time.Duration(secs) * time.Second)}
	s.mu.Lock()
	s.cache[key] = tok
	s.mu.Unlock()
	s.cfg.Logger.Info("managed-identity token exchanged", "client_id", key.clientID, "resource", key.resource,
		"expires", tok.expires.UTC().Format(time.RFC3339))
	return tok, nil
}

// scopeFor turns a v1 resource into the v2 scope, as MSAL does: resource +
// "/.default", so "https://management.core.windows.net/" keeps its slash.
func scopeFor(resource string) string {
	if strings.HasSuffix(resource, "/.default") {
		return resource
	}
	return resource + "/.default"
}

func (s *Server) headerOK(got string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.Header)) == 1
}

// writeError writes the OAuth-style error body IMDS and App Service send.
func writeError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": description})
}
