package graph

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
)

type expressionJSON struct {
	Value           string `json:"value"`
	LanguageVersion int    `json:"languageVersion"`
}

type ficJSON struct {
	Context                  string          `json:"@odata.context,omitempty"`
	ID                       string          `json:"id"`
	Name                     string          `json:"name"`
	Issuer                   string          `json:"issuer"`
	Subject                  *string         `json:"subject"`
	Description              *string         `json:"description"`
	Audiences                []string        `json:"audiences"`
	ClaimsMatchingExpression *expressionJSON `json:"claimsMatchingExpression,omitempty"`
}

// ficInput is a create or PATCH body: absent properties stay as they are.
type ficInput struct {
	Name                     *string         `json:"name"`
	Issuer                   *string         `json:"issuer"`
	Subject                  *string         `json:"subject"`
	Description              *string         `json:"description"`
	Audiences                *[]string       `json:"audiences"`
	ClaimsMatchingExpression *expressionJSON `json:"claimsMatchingExpression"`
}

func toFICJSON(c store.FederatedCredential) ficJSON {
	out := ficJSON{ID: c.ID, Name: c.Name, Issuer: c.Issuer, Audiences: c.Audiences}
	if c.Subject != "" {
		out.Subject = &c.Subject
	}
	if c.Description != "" {
		out.Description = &c.Description
	}
	if c.ClaimsMatchingExpression != "" {
		out.ClaimsMatchingExpression = &expressionJSON{Value: c.ClaimsMatchingExpression, LanguageVersion: 1}
	}
	if out.Audiences == nil {
		out.Audiences = []string{}
	}
	return out
}

func (in ficInput) apply(c *store.FederatedCredential) {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&c.Name, in.Name)
	set(&c.Issuer, in.Issuer)
	set(&c.Subject, in.Subject)
	set(&c.Description, in.Description)
	if in.Audiences != nil {
		c.Audiences = *in.Audiences
	}
	if in.ClaimsMatchingExpression != nil {
		c.ClaimsMatchingExpression = in.ClaimsMatchingExpression.Value
	}
}

// invalidValue is Graph's answer to a broken rule, in the words Graph uses.
func invalidValue(message, field, value string) error {
	param := strings.ToUpper(field[:1]) + field[1:]
	return badRequest("InvalidFederatedIdentityCredentialValue", "%s paramName: FederatedIdentityCredential.%s, paramValue: %s, objectType: Microsoft.Online.DirectoryServices.Application", message, param, value)
}

// federatedCredentials routes .../federatedIdentityCredentials,
// .../federatedIdentityCredentials/{id or name} and
// .../federatedIdentityCredentials(name='...').
func (s *Server) federatedCredentials(q *request, app store.Application, rest []string) error {
	ctxURL := fmt.Sprintf("%sapplications('%s')/federatedIdentityCredentials", base(q.r), app.ObjectID)
	var ref string
	switch {
	case rest[0] == "federatedIdentityCredentials" && len(rest) == 1:
		switch q.r.Method {
		case http.MethodGet:
			creds, err := s.store.ListFederatedCredentials(q.ctx(), app.ObjectID)
			if err != nil {
				return err
			}
			out := []ficJSON{}
			for _, c := range creds {
				out = append(out, toFICJSON(c))
			}
			writeJSON(q.w, http.StatusOK, map[string]any{"@odata.context": ctxURL, "value": out})
			return nil
		case http.MethodPost:
			var in ficInput
			if aerr := decode(q.r, &in); aerr != nil {
				return aerr
			}
			return s.createFIC(q, app, in, ctxURL)
		}
		return methodNotAllowed()
	case rest[0] == "federatedIdentityCredentials" && len(rest) == 2:
		ref = rest[1]
	case len(rest) == 1:
		var ok bool
		if ref, ok = keyRef(rest[0], "federatedIdentityCredentials", "name"); !ok {
			return badRequest("BadRequest", "Invalid segment '%s'.", rest[0])
		}
	default:
		return badRequest("BadRequest", "Resource not found for the segment '%s'.", rest[len(rest)-1])
	}

	c, err := s.store.GetFederatedCredential(q.ctx(), app.ObjectID, ref)
	missing := errors.Is(err, store.ErrNotFound)
	if err != nil && !missing {
		return err
	}
	// Upsert: PATCH ...(name='x') with Prefer: create-if-missing.
	if missing && q.r.Method == http.MethodPatch && strings.Contains(q.r.Header.Get("Prefer"), "create-if-missing") {
		var in ficInput
		if aerr := decode(q.r, &in); aerr != nil {
			return aerr
		}
		if in.Name == nil {
			in.Name = &ref
		}
		return s.createFIC(q, app, in, ctxURL)
	}
	if missing {
		return notFound("Resource '%s' does not exist or one of its queried reference-property objects are not present.", ref)
	}
	switch q.r.Method {
	case http.MethodGet:
		out := toFICJSON(c)
		out.Context = ctxURL + "/$entity"
		writeJSON(q.w, http.StatusOK, out)
		return nil
	case http.MethodPatch:
		var in ficInput
		if aerr := decode(q.r, &in); aerr != nil {
			return aerr
		}
		updated := c
		in.apply(&updated)
		if err := directory.ValidateFederatedCredentialUpdate(c, updated, s.parse); err != nil {
			return ruleError(err)
		}
		if aerr := s.checkUnique(q, app, updated); aerr != nil {
			return aerr
		}
		// The input applies again to the credential as stored when the
		// write begins, so that a concurrent PATCH of other properties is
		// kept.
		err := s.store.UpdateFederatedCredential(q.ctx(), c.OwnerID, c.ID, func(old store.FederatedCredential) (store.FederatedCredential, error) {
			updated = old
			in.apply(&updated)
			if err := directory.ValidateFederatedCredentialUpdate(old, updated, s.parse); err != nil {
				return old, ruleError(err)
			}
			return updated, nil
		})
		var aerr *apiError
		if errors.As(err, &aerr) {
			return aerr
		}
		if err != nil {
			return storeWriteError(err, updated)
		}
		q.w.WriteHeader(http.StatusNoContent)
		return nil
	case http.MethodDelete:
		if err := s.store.DeleteFederatedCredential(q.ctx(), app.ObjectID, c.ID); err != nil {
			return err
		}
		q.w.WriteHeader(http.StatusNoContent)
		return nil
	}
	return methodNotAllowed()
}

// createFIC stores the credential in and answers 201 with it.
func (s *Server) createFIC(q *request, app store.Application, in ficInput, ctxURL string) error {
	c := store.FederatedCredential{ID: uuid.NewString(), OwnerID: app.ObjectID, CreatedAt: s.now().UTC()}
	in.apply(&c)
	if err := directory.ValidateFederatedCredential(c, s.parse); err != nil {
		return ruleError(err)
	}
	if aerr := s.checkUnique(q, app, c); aerr != nil {
		return aerr
	}
	if err := s.store.CreateFederatedCredential(q.ctx(), c); err != nil {
		return storeWriteError(err, c)
	}
	if why := directory.EntraWouldRefuse(c); why != "" {
		s.logger.Warn("stored a federated credential Entra would refuse", "application", app.AppID, "name", c.Name, "reason", why)
	}
	out := toFICJSON(c)
	out.Context = ctxURL + "/$entity"
	writeJSON(q.w, http.StatusCreated, out)
	return nil
}

// checkUnique gives the precise message for a taken name or issuer and
// subject; the store enforces both again inside its transaction.
func (s *Server) checkUnique(q *request, app store.Application, c store.FederatedCredential) error {
	creds, err := s.store.ListFederatedCredentials(q.ctx(), app.ObjectID)
	if err != nil {
		return err
	}
	for _, o := range creds {
		if o.ID == c.ID {
			continue
		}
		if o.Name == c.Name {
			return invalidValue(fmt.Sprintf("A federated identity credential named %s already exists on the application.", c.Name), "name", c.Name)
		}
		if c.Subject != "" && o.Issuer == c.Issuer && o.Subject == c.Subject {
			return invalidValue(fmt.Sprintf("The combination of issuer and subject must be unique for the application. Issuer %s and Subject: %s already exist.", c.Issuer, c.Subject), "subject", c.Subject)
		}
	}
	return nil
}

func ruleError(err error) error {
	var fe *directory.FieldError
	if errors.As(err, &fe) {
		return invalidValue(fe.Message, fe.Field, fe.Value)
	}
	return badRequest("Request_BadRequest", "%v", err)
}

func storeWriteError(err error, c store.FederatedCredential) error {
	switch {
	case errors.Is(err, store.ErrLimitExceeded):
		return badRequest("Request_BadRequest", "Maximum of %d objects can be added to an application: the application already has %d federated identity credentials.", store.MaxFederatedCredentials, store.MaxFederatedCredentials)
	case errors.Is(err, store.ErrAlreadyExists):
		return invalidValue(fmt.Sprintf("The combination of issuer and subject must be unique for the application. Issuer %s and Subject: %s already exist.", c.Issuer, c.Subject), "subject", c.Subject)
	}
	return err
}
