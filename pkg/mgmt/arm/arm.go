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
// asks for https://management.core.windows.net/) and its application id.
var Audiences = append([]string{"https://management.azure.com", directory.ARMAppID}, directory.ARMResources...)

// APIVersions are the api-version values served.
var APIVersions = []string{"2023-01-31", "2024-11-30"}

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
func New(s store.Store, auth *apiauth.Verifier, parse directory.ExpressionParser, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Server{store: s, auth: auth, parse: parse, logger: logger, writing: map[string]bool{}}
}

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

// ServeHTTP routes identity and credential calls after checking the token
// and api-version.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("x-ms-request-id", uuid.NewString())
	if err := s.serve(w, r); err != nil {
		s.writeError(w, r, err)
	}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) error {
	caller, err := s.auth.Verify(r, Audiences...)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer authorization_uri="https://login.windows.net/", error="invalid_token", error_description="The authentication failed because of missing 'Authorization' header."`)
		if errors.Is(err, apiauth.ErrMissing) {
			return newError(http.StatusUnauthorized, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
		}
		return newError(http.StatusUnauthorized, "InvalidAuthenticationToken", "The access token is invalid.")
	}
	v := r.URL.Query().Get("api-version")
	switch {
	case v == "":
		return badRequest("MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests.")
	case !slices.Contains(APIVersions, v):
		return badRequest("InvalidApiVersionParameter", "The api-version '%s' is invalid. The supported versions are '%s'.", v, strings.Join(APIVersions, ","))
	}
	m := path.FindStringSubmatch(r.URL.Path)
	if m == nil {
		return newError(http.StatusNotFound, "InvalidResourceType", "The resource type could not be found in the namespace 'Microsoft.ManagedIdentity' for api version '"+v+"'.")
	}
	sub, rg, name, fics, fic := m[1], m[2], m[3], m[4] != "", m[5]
	switch {
	case name == "" && r.Method == http.MethodGet:
		return s.listIdentities(w, r, caller, sub, rg)
	case name == "":
		return newError(http.StatusMethodNotAllowed, "MethodNotAllowed", "The HTTP method is not allowed on this resource.")
	case !fics:
		return s.identity(w, r, caller, sub, rg, name)
	}
	return s.federated(w, r, caller, sub, rg, name, fic)
}

func toIdentityJSON(mi store.ManagedIdentity) identityJSON {
	out := identityJSON{ID: mi.ID, Name: mi.Name, Type: identityType, Location: mi.Location, Tags: map[string]string{}}
	out.Properties.TenantID, out.Properties.PrincipalID, out.Properties.ClientID = mi.TenantID, mi.PrincipalID, mi.ClientID
	return out
}

// lookup finds the identity in the caller's tenant.
func (s *Server) lookup(r *http.Request, caller apiauth.Caller, sub, rg, name string) (store.ManagedIdentity, error) {
	mi, err := s.store.GetManagedIdentity(r.Context(), directory.ManagedIdentityID(sub, rg, name))
	if err == nil && mi.TenantID != caller.TenantID {
		err = store.ErrNotFound
	}
	if errors.Is(err, store.ErrNotFound) {
		return mi, newError(http.StatusNotFound, "ResourceNotFound", fmt.Sprintf("The Resource '%s/%s' under resource group '%s' was not found.", identityType, name, rg))
	}
	if err != nil {
		return mi, err
	}
	return mi, nil
}

func (s *Server) listIdentities(w http.ResponseWriter, r *http.Request, caller apiauth.Caller, sub, rg string) error {
	mis, err := s.store.ListManagedIdentities(r.Context(), caller.TenantID)
	if err != nil {
		return err
	}
	out := []identityJSON{}
	for _, mi := range mis {
		if strings.EqualFold(mi.SubscriptionID, sub) && strings.EqualFold(mi.ResourceGroup, rg) {
			out = append(out, toIdentityJSON(mi))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"value": out})
	return nil
}

func (s *Server) identity(w http.ResponseWriter, r *http.Request, caller apiauth.Caller, sub, rg, name string) error {
	switch r.Method {
	case http.MethodGet:
		mi, aerr := s.lookup(r, caller, sub, rg, name)
		if aerr != nil {
			return aerr
		}
		writeJSON(w, http.StatusOK, toIdentityJSON(mi))
	case http.MethodPut:
		var in struct {
			Location string            `json:"location"`
			Tags     map[string]string `json:"tags"`
		}
		if aerr := decode(r, &in); aerr != nil {
			return aerr
		}
		if in.Location == "" {
			return badRequest("LocationRequired", "The location property is required for this definition.")
		}
		if mi, aerr := s.lookup(r, caller, sub, rg, name); aerr == nil {
			writeJSON(w, http.StatusOK, toIdentityJSON(mi)) // ARM's PUT is idempotent
			return nil
		} else if !isNotFound(aerr) {
			return aerr
		}
		mi := store.ManagedIdentity{ID: directory.ManagedIdentityID(sub, rg, name), TenantID: caller.TenantID, SubscriptionID: sub,
			ResourceGroup: rg, Name: name, Location: in.Location, ClientID: uuid.NewString(), PrincipalID: uuid.NewString()}
		if err := s.store.CreateManagedIdentity(r.Context(), mi); err != nil {
			return err
		}
		writeJSON(w, http.StatusCreated, toIdentityJSON(mi))
	case http.MethodDelete:
		mi, aerr := s.lookup(r, caller, sub, rg, name)
		if aerr != nil {
			w.WriteHeader(http.StatusNoContent) // deleting what is not there succeeds, as in ARM
			return nil
		}
		if err := s.store.DeleteManagedIdentity(r.Context(), mi.ID); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
	default:
		return newError(http.StatusMethodNotAllowed, "MethodNotAllowed", "The HTTP method is not allowed on this resource.")
	}
	return nil
}

func decode(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		return badRequest("InvalidRequestContent", "The request content was invalid and could not be deserialized.")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return badRequest("InvalidRequestContent", "The request content was invalid and could not be deserialized: '%v'.", err)
	}
	return nil
}

func newError(status int, code, message string) error {
	return &apiError{status: status, code: code, message: message}
}
