// Package arm serves Azure Resource Manager's user-assigned managed
// identities and their federated identity credentials, in ARM's shapes and
// with ARM's errors, for `az identity` and Terraform.
package arm

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/google/uuid"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/mgmt/apiauth"
)

// Audiences are the token audiences ARM accepts: its identifier URIs (az
// asks for https://management.core.windows.net/) and its application id,
// nothing another application could hold.
var Audiences = append([]string{directory.ARMAppID}, directory.ARMResources...)

// APIVersions are the api-version values served for managed identities
// (az 2.45 uses the preview).
var APIVersions = []string{"2022-01-31-preview", "2023-01-31", "2024-11-30"}

// AuthorizationAPIVersions are the api-version values served for role
// assignments and role definitions (az uses the first).
var AuthorizationAPIVersions = []string{"2022-04-01", "2022-05-01-preview"}

const maxBody = 64 << 10

const (
	identityType = "Microsoft.ManagedIdentity/userAssignedIdentities"
	ficType      = "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials"
)

var path = regexp.MustCompile(`(?i)^/subscriptions/([^/]+)/resourcegroups/([^/]+)/providers/Microsoft\.ManagedIdentity/userAssignedIdentities(?:/([^/]+))?(?:/(federatedIdentityCredentials)(?:/([^/]+))?)?/?$`)

// ficName is ARM's name rule for federated identity credentials.
var ficName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9-_]{2,119}$`)

// Server serves /subscriptions/.
type Server struct {
	store  store.Store
	auth   *apiauth.Verifier
	parse  directory.ExpressionParser
	logger *slog.Logger

	mu      sync.Mutex
	writing map[string]bool // identities with a credential write in flight
}

// New returns the ARM endpoint over s.
func New(s store.Store, auth *apiauth.Verifier, parse directory.ExpressionParser, opts ...Option) *Server {
	srv := &Server{store: s, auth: auth, parse: parse, logger: slog.New(slog.DiscardHandler), writing: map[string]bool{}}
	for _, opt := range opts {
		opt(srv)
	}
	return srv
}

// Option configures a Server.
type Option func(*Server)

// WithLogger sets the logger, which records the causes of 503s.
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.logger = l } }

// apiError is ARM's CloudError. Handlers return it, or any other error,
// which writeError answers.
type apiError struct {
	status        int
	code, message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

// writeError is ARM's one error writer: an *apiError is sent as it is, and
// anything else is a failure of the store, logged with its cause and
// answered with ARM's 503.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var e *apiError
	if !errors.As(err, &e) {
		s.logger.Error("ARM call failed", "method", r.Method, "path", r.URL.Path, "error", err)
		e = &apiError{http.StatusServiceUnavailable, "ServiceUnavailable", "The service is temporarily unavailable. Please retry later."}
	}
	writeJSON(w, e.status, map[string]any{"error": map[string]string{"code": e.code, "message": e.message}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func badRequest(code, format string, args ...any) error {
	return newError(http.StatusBadRequest, code, fmt.Sprintf(format, args...))
}

// isNotFound reports ARM's 404 for the identity, from lookup.
func isNotFound(err error) bool {
	var e *apiError
	return errors.As(err, &e) && e.status == http.StatusNotFound
}

type identityJSON struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Type       string            `json:"type"`
	Location   string            `json:"location"`
	Tags       map[string]string `json:"tags"`
	Properties struct {
		TenantID    string `json:"tenantId"`
		PrincipalID string `json:"principalId"`
		ClientID    string `json:"clientId"`
	} `json:"properties"`
}

type ficProperties struct {
	Issuer    string   `json:"issuer"`
	Subject   string   `json:"subject"`
	Audiences []string `json:"audiences"`
}

type ficJSON struct {
	ID         string        `json:"id"`
	Name       string        `json:"name"`
	Type       string        `json:"type"`
	Properties ficProperties `json:"properties"`
}

// ServeHTTP routes identity, credential and role assignment calls after
// checking the token, the api-version and the subscription's tenant.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("x-ms-request-id", uuid.NewString())
	if err := s.serve(w, r); err != nil {
		s.writeError(w, r, err)
	}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) error {
	caller, err := s.auth.Verify(r, directory.ARMAppID, Audiences...)
	if err != nil && !errors.Is(err, apiauth.ErrMissing) && !errors.Is(err, apiauth.ErrInvalid) {
		return err // the directory could not be asked
	}
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer authorization_uri="https://login.windows.net/", error="invalid_token", error_description="The authentication failed because of missing 'Authorization' header."`)
		if errors.Is(err, apiauth.ErrMissing) {
			return newError(http.StatusUnauthorized, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
		}
		return newError(http.StatusUnauthorized, "InvalidAuthenticationToken", "The access token is invalid.")
	}
	q := &call{w: w, r: r, caller: caller}
	if ok, err := s.subscriptions(q); ok {
		return err
	}
	if m := rbacPath.FindStringSubmatch(r.URL.Path); m != nil {
		if err := checkVersion(r, AuthorizationAPIVersions); err != nil {
			return err
		}
		if err := s.checkSubscription(q, m[2]); err != nil {
			return err
		}
		if m[3] == "roleDefinitions" {
			return s.roleDefinitions(q, m[2], m[4])
		}
		return s.roleAssignments(q, m[1], m[4])
	}
	m := path.FindStringSubmatch(r.URL.Path)
	if m == nil {
		return newError(http.StatusNotFound, "InvalidResourceType", "The resource type could not be found in the namespace 'Microsoft.ManagedIdentity' for api version '"+r.URL.Query().Get("api-version")+"'.")
	}
	if err := checkVersion(r, APIVersions); err != nil {
		return err
	}
	if err := s.checkSubscription(q, m[1]); err != nil {
		return err
	}
	sub, rg, name, fics, fic := m[1], m[2], m[3], m[4] != "", m[5]
	switch {
	case name == "" && r.Method == http.MethodGet:
		return s.listIdentities(q, sub, rg)
	case name == "":
		return newError(http.StatusMethodNotAllowed, "MethodNotAllowed", "The HTTP method is not allowed on this resource.")
	case !fics:
		return s.identity(q, sub, rg, name)
	}
	return s.federated(q, sub, rg, name, fic)
}

// call is one request with its verified caller.
type call struct {
	w      http.ResponseWriter
	r      *http.Request
	caller apiauth.Caller
}

// checkVersion is ARM's error unless the api-version is one of versions.
func checkVersion(r *http.Request, versions []string) error {
	v := r.URL.Query().Get("api-version")
	switch {
	case v == "":
		return badRequest("MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests.")
	case !slices.Contains(versions, v):
		return badRequest("InvalidApiVersionParameter", "The api-version '%s' is invalid. The supported versions are '%s'.", v, strings.Join(versions, ","))
	}
	return nil
}

// checkSubscription is ARM's error unless the subscription exists in the
// caller's tenant: a subscription belongs to one tenant, and a token of
// another tenant is refused as ARM refuses it.
func (s *Server) checkSubscription(q *call, id string) error {
	sub, err := s.store.GetSubscription(q.r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return newError(http.StatusNotFound, "SubscriptionNotFound", fmt.Sprintf("The subscription '%s' could not be found.", id))
	case err != nil:
		return err
	case sub.TenantID != q.caller.TenantID:
		return newError(http.StatusUnauthorized, "InvalidAuthenticationTokenTenant", fmt.Sprintf(
			"The access token is from the wrong issuer 'https://sts.windows.net/%s/'. It must match the tenant 'https://sts.windows.net/%s/' associated with this subscription. Please use the authority (URL) 'https://login.windows.net/%s' to get the token.",
			q.caller.TenantID, sub.TenantID, sub.TenantID))
	}
	return nil
}

func toIdentityJSON(mi store.ManagedIdentity) identityJSON {
	out := identityJSON{ID: mi.ID, Name: mi.Name, Type: identityType, Location: mi.Location, Tags: map[string]string{}}
	out.Properties.TenantID, out.Properties.PrincipalID, out.Properties.ClientID = mi.TenantID, mi.PrincipalID, mi.ClientID
	return out
}

// lookup finds the identity; checkSubscription has made sure the
// subscription is the caller's tenant's.
func (s *Server) lookup(q *call, sub, rg, name string) (store.ManagedIdentity, error) {
	mi, err := s.store.GetManagedIdentity(q.r.Context(), directory.ManagedIdentityID(sub, rg, name))
	if err == nil && mi.TenantID != q.caller.TenantID {
		err = store.ErrNotFound
	}
	if errors.Is(err, store.ErrNotFound) {
		return mi, newError(http.StatusNotFound, "ResourceNotFound", fmt.Sprintf("The Resource '%s/%s' under resource group '%s' was not found.", identityType, name, rg))
	}
	return mi, err
}

// identityScope is the identity's ARM id as the caller spelled it, the
// scope ARM names in its authorization errors.
func identityScope(sub, rg, name string) string {
	return "/subscriptions/" + sub + "/resourceGroups/" + rg + "/providers/" + identityType + "/" + name
}

func (s *Server) listIdentities(q *call, sub, rg string) error {
	if err := s.authorize(q, identityType+"/read", "/subscriptions/"+sub+"/resourceGroups/"+rg); err != nil {
		return err
	}
	mis, err := s.store.ListManagedIdentities(q.r.Context(), q.caller.TenantID)
	if err != nil {
		return err
	}
	out := []identityJSON{}
	for _, mi := range mis {
		if strings.EqualFold(mi.SubscriptionID, sub) && strings.EqualFold(mi.ResourceGroup, rg) {
			out = append(out, toIdentityJSON(mi))
		}
	}
	writeJSON(q.w, http.StatusOK, map[string]any{"value": out})
	return nil
}

// actions are the ARM action verbs of the methods served.
var actions = map[string]string{http.MethodGet: "read", http.MethodPut: "write", http.MethodDelete: "delete"}

func (s *Server) identity(q *call, sub, rg, name string) error {
	w, r := q.w, q.r
	action, ok := actions[r.Method]
	if !ok {
		return newError(http.StatusMethodNotAllowed, "MethodNotAllowed", "The HTTP method is not allowed on this resource.")
	}
	if err := s.authorize(q, identityType+"/"+action, identityScope(sub, rg, name)); err != nil {
		return err
	}
	switch r.Method {
	case http.MethodGet:
		mi, err := s.lookup(q, sub, rg, name)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, toIdentityJSON(mi))
	case http.MethodPut:
		var in struct {
			Location string            `json:"location"`
			Tags     map[string]string `json:"tags"`
		}
		if err := decode(r, &in); err != nil {
			return err
		}
		if in.Location == "" {
			return badRequest("LocationRequired", "The location property is required for this definition.")
		}
		if mi, err := s.lookup(q, sub, rg, name); err == nil {
			writeJSON(w, http.StatusOK, toIdentityJSON(mi)) // ARM's PUT is idempotent
			return nil
		} else if !isNotFound(err) {
			return err
		}
		mi := store.ManagedIdentity{ID: directory.ManagedIdentityID(sub, rg, name), TenantID: q.caller.TenantID, SubscriptionID: sub,
			ResourceGroup: rg, Name: name, Location: in.Location, ClientID: uuid.NewString(), PrincipalID: uuid.NewString()}
		err := s.store.CreateManagedIdentity(r.Context(), mi)
		if errors.Is(err, store.ErrAlreadyExists) {
			// Another PUT of the same identity won the race.
			return newError(http.StatusConflict, "Conflict", fmt.Sprintf("The resource '%s' was created by a concurrent request. Retry the request.", mi.ID))
		}
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusCreated, toIdentityJSON(mi))
	case http.MethodDelete:
		mi, err := s.lookup(q, sub, rg, name)
		if err != nil {
			w.WriteHeader(http.StatusNoContent) // deleting what is not there succeeds, as in ARM
			return nil
		}
		if err := s.store.DeleteManagedIdentity(r.Context(), mi.ID); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
	}
	return nil
}

func decode(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		return badRequest("InvalidRequestContent", "The request content was invalid and could not be deserialized.")
	}
	if !directory.StorableJSON(body) {
		return badRequest("InvalidRequestContent", "The request content was invalid and could not be deserialized: it must be UTF-8 text without NUL characters.")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return badRequest("InvalidRequestContent", "The request content was invalid and could not be deserialized: '%v'.", err)
	}
	return nil
}

func newError(status int, code, message string) error {
	return &apiError{status: status, code: code, message: message}
}
