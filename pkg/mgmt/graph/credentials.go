package graph

import (
	"encoding/base64"
	"encoding/pem"
	"errors"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
)

// secretLifetime is how long a secret from addPassword lasts unless the
// request says otherwise: two years, as Graph's default.
const secretLifetime = 2 * 365 * 24 * time.Hour

type passwordJSON struct {
	KeyID         string  `json:"keyId"`
	DisplayName   string  `json:"displayName"`
	Hint          string  `json:"hint"`
	StartDateTime string  `json:"startDateTime"`
	EndDateTime   string  `json:"endDateTime"`
	SecretText    *string `json:"secretText"`
}

type keyJSON struct {
	KeyID               string `json:"keyId,omitempty"`
	DisplayName         string `json:"displayName,omitempty"`
	Type                string `json:"type"`
	Usage               string `json:"usage"`
	Key                 string `json:"key,omitempty"`
	CustomKeyIdentifier string `json:"customKeyIdentifier,omitempty"`
	StartDateTime       string `json:"startDateTime,omitempty"`
	EndDateTime         string `json:"endDateTime,omitempty"`
}

// parseKeys reads a keyCredentials input: new certificates carry "key"
// (base64 DER), existing ones to keep are named by keyId.
func parseKeys(objectID string, keys []keyJSON) (keep map[string]bool, add []store.KeyCredential, err error) {
	keep = map[string]bool{}
	for _, k := range keys {
		if k.Key == "" {
			keep[k.KeyID] = true
			continue
		}
		der, err := base64.StdEncoding.DecodeString(k.Key)
		if err != nil {
			return nil, nil, badRequest("Request_BadRequest", "Property 'key' of a key credential must be a base64 certificate.")
		}
		kc, err := directory.KeyCredential(objectID, uuid.NewString(), k.DisplayName, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
		if err != nil {
			return nil, nil, badRequest("Request_BadRequest", "Key credential %q: %v.", k.DisplayName, err)
		}
		add = append(add, kc)
	}
	return keep, add, nil
}

// replaceKeys makes the app's certificates those kept and added.
func (s *Server) replaceKeys(q *request, objectID string, keep map[string]bool, add []store.KeyCredential) error {
	existing, err := s.store.ListKeyCredentials(q.ctx(), objectID)
	if err != nil {
		return err
	}
	for _, k := range existing {
		if !keep[k.KeyID] {
			if err := s.store.DeleteKeyCredential(q.ctx(), objectID, k.KeyID); err != nil {
				return err
			}
		}
	}
	for _, k := range add {
		if err := s.store.AddKeyCredential(q.ctx(), k); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) addPassword(q *request, app store.Application) error {
	var in struct {
		PasswordCredential struct {
			DisplayName string `json:"displayName"`
			EndDateTime string `json:"endDateTime"`
		} `json:"passwordCredential"`
	}
	if aerr := decode(q.r, &in); aerr != nil {
		return aerr
	}
	lifetime := secretLifetime
	if e := in.PasswordCredential.EndDateTime; e != "" {
		end, err := time.Parse(time.RFC3339, e)
		if err != nil || !end.After(s.now()) {
			return badRequest("Request_BadRequest", "Property 'endDateTime' must be a future date and time in ISO 8601 format; '%s' is not.", e)
		}
		lifetime = end.Sub(s.now())
	}
	existing, err := s.store.ListPasswordCredentials(q.ctx(), app.ObjectID)
	if err != nil {
		return err
	}
	if len(existing) >= maxPasswordCredentials {
		return badRequest("Request_BadRequest", "The application has %d password credentials; at most %d are allowed.", len(existing), maxPasswordCredentials)
	}
	cred, secret, err := directory.NewPasswordCredential(app.ObjectID, in.PasswordCredential.DisplayName, s.now().UTC(), lifetime)
	if err != nil {
		return err
	}
	if err := s.store.AddPasswordCredential(q.ctx(), cred); err != nil {
		return err
	}
	writeJSON(q.w, http.StatusOK, struct {
		Context string `json:"@odata.context"`
		passwordJSON
	}{base(q.r) + "microsoft.graph.passwordCredential", passwordJSON{
		KeyID: cred.KeyID, DisplayName: cred.DisplayName, Hint: cred.Hint,
		StartDateTime: graphTime(cred.StartDateTime), EndDateTime: graphTime(cred.EndDateTime), SecretText: &secret,
	}})
	return nil
}

func (s *Server) removePassword(q *request, app store.Application) error {
	var in struct {
		KeyID string `json:"keyId"`
	}
	if aerr := decode(q.r, &in); aerr != nil {
		return aerr
	}
	if err := s.store.DeletePasswordCredential(q.ctx(), app.ObjectID, in.KeyID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return badRequest("Request_BadRequest", "No password credential found with keyId '%s'.", in.KeyID)
		}
		return err
	}
	q.w.WriteHeader(http.StatusNoContent)
	return nil
}
