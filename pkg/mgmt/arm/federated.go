package arm

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/google/uuid"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
)

func toFICJSON(mi store.ManagedIdentity, c store.FederatedCredential) ficJSON {
	aud := c.Audiences
	if aud == nil {
		aud = []string{}
	}
	return ficJSON{ID: mi.ID + "/federatedIdentityCredentials/" + c.Name, Name: c.Name, Type: ficType,
		Properties: ficProperties{Issuer: c.Issuer, Subject: c.Subject, Audiences: aud}}
}

// federated serves .../federatedIdentityCredentials[/{name}].
func (s *Server) federated(q *call, sub, rg, name, fic string) error {
	w, r := q.w, q.r
	action, ok := actions[r.Method]
	if !ok {
		return newError(http.StatusMethodNotAllowed, "MethodNotAllowed", "The HTTP method is not allowed on this resource.")
	}
	scope := identityScope(sub, rg, name) + "/federatedIdentityCredentials"
	if fic != "" {
		scope += "/" + fic
	}
	if err := s.authorize(q, ficType+"/"+action, scope); err != nil {
		return err
	}
	mi, aerr := s.lookup(q, sub, rg, name)
	if aerr != nil {
		if isNotFound(aerr) {
			aerr = newError(http.StatusNotFound, "ParentResourceNotFound", fmt.Sprintf("Failed to perform '%s' on resource(s) of type '%s', because the parent resource '%s' could not be found. The parent user-assigned identity doesn't exist.", r.Method, ficType, directory.ManagedIdentityID(sub, rg, name)))
		}
		return aerr
	}
	if fic == "" {
		if r.Method != http.MethodGet {
			return newError(http.StatusMethodNotAllowed, "MethodNotAllowed", "The HTTP method is not allowed on this resource.")
		}
		creds, err := s.store.ListFederatedCredentials(r.Context(), mi.PrincipalID)
		if err != nil {
			return err
		}
		out := []ficJSON{}
		for _, c := range creds {
			out = append(out, toFICJSON(mi, c))
		}
		writeJSON(w, http.StatusOK, map[string]any{"value": out})
		return nil
	}
	existing, err := s.store.GetFederatedCredential(r.Context(), mi.PrincipalID, fic)
	missing := errors.Is(err, store.ErrNotFound)
	if err != nil && !missing {
		return err
	}
	switch r.Method {
	case http.MethodGet:
		if missing {
			return newError(http.StatusNotFound, "ResourceNotFound", fmt.Sprintf("The Resource '%s/%s/%s' under resource group '%s' was not found.", ficType, name, fic, rg))
		}
		writeJSON(w, http.StatusOK, toFICJSON(mi, existing))
	case http.MethodPut:
		if !s.begin(mi.ID) {
			return concurrentWrites(mi)
		}
		defer s.end(mi.ID)
		return s.put(w, r, mi, fic, existing, missing)
	case http.MethodDelete:
		if missing {
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
		if err := s.store.DeleteFederatedCredential(r.Context(), mi.PrincipalID, existing.ID); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
	default:
		return newError(http.StatusMethodNotAllowed, "MethodNotAllowed", "The HTTP method is not allowed on this resource.")
	}
	return nil
}

// begin claims the identity for one credential write; ARM refuses a second
// concurrent write under the same identity with 409.
func (s *Server) begin(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.writing[id] {
		return false
	}
	s.writing[id] = true
	return true
}

func (s *Server) end(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.writing, id)
}

func (s *Server) put(w http.ResponseWriter, r *http.Request, mi store.ManagedIdentity, name string, existing store.FederatedCredential, missing bool) error {
	var in struct {
		Properties *ficProperties `json:"properties"`
	}
	if aerr := decode(r, &in); aerr != nil {
		return aerr
	}
	switch {
	case in.Properties == nil:
		return badRequest("BadRequest", "Federated Identity Credential from HTTP body has empty properties.")
	case !ficName.MatchString(name):
		return badRequest("BadRequest", "Federated Identity Credential name '%s' is invalid. The name of a federated identity credentials must be within 3 and 120 characters, only contains letters (A-Z, a-z), numbers, hyphens and dashes and must start with a number or letter.", name)
	case len(in.Properties.Audiences) != 1:
		return badRequest("InvalidFederatedIdentityCredentialsAudienceLength", "Federated identity credentials must have exactly 1 audience.")
	case in.Properties.Issuer == "" || in.Properties.Subject == "" || in.Properties.Audiences[0] == "":
		return badRequest("BadRequest", "The request format was unexpected. Federated Identity Credential must specify 'issuer', 'subject' and 'audience'.")
	}
	c := existing
	if missing {
		c = store.FederatedCredential{ID: uuid.NewString(), OwnerID: mi.PrincipalID, Name: name}
	}
	c.Issuer, c.Subject, c.Audiences = in.Properties.Issuer, in.Properties.Subject, in.Properties.Audiences
	if err := directory.ValidateFederatedCredential(c, s.parse); err != nil {
		var fe *directory.FieldError
		if errors.As(err, &fe) {
			return badRequest("BadRequest", "%s", fe.Message)
		}
		return err
	}
	creds, err := s.store.ListFederatedCredentials(r.Context(), mi.PrincipalID)
	if err != nil {
		return err
	}
	for _, o := range creds {
		if o.ID != c.ID && o.Issuer == c.Issuer && o.Subject == c.Subject {
			return badRequest("BadRequest", "Issuer and subject combination already exists for this Managed Identity.")
		}
	}
	// This process's claim (begin) covers the whole request; the store's
	// covers the write against other replicas.
	ctx := store.FailIfBusy(r.Context())
	status := http.StatusOK
	if missing {
		err, status = s.store.CreateFederatedCredential(ctx, c), http.StatusCreated
	} else {
		err = s.store.UpdateFederatedCredential(ctx, c.OwnerID, c.ID, func(old store.FederatedCredential) (store.FederatedCredential, error) {
			old.Issuer, old.Subject, old.Audiences = c.Issuer, c.Subject, c.Audiences
			return old, nil
		})
	}
	switch {
	case errors.Is(err, store.ErrConflict):
		return concurrentWrites(mi)
	case errors.Is(err, store.ErrLimitExceeded):
		return badRequest("BadRequest", "Too many Federated Identity Credentials: a managed identity holds at most %d.", store.MaxFederatedCredentials)
	case errors.Is(err, store.ErrAlreadyExists):
		return badRequest("BadRequest", "Issuer and subject combination already exists for this Managed Identity.")
	case err != nil:
		return err
	}
	writeJSON(w, status, toFICJSON(mi, c))
	return nil
}

// concurrentWrites is ARM's 409 for a credential write while another is in
// flight under the same identity.
func concurrentWrites(mi store.ManagedIdentity) error {
	return newError(http.StatusConflict, "ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity",
		"Too many Federated Identity Credentials are written concurrently for the managed identity "+mi.ID+".")
}
