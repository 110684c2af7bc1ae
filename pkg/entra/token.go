package entra

import (
	"errors"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store/readcache"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/aadsts"
)

// The token endpoint, along a request's path: this file parses the form
// and dispatches on the grant; clientauth.go and certificate.go
// authenticate the client; clientcredentials.go and password.go are the
// grants; issue.go builds and signs the token. Every step returns a plain
// error and writeError (errors.go) is the one place that answers it.

// tokenRequest is what a grant needs from the request.
type tokenRequest struct {
	version int // 1 or 2: the endpoint, which shapes the response only
	form    url.Values
	tenant  store.Tenant
	base    string
	// dir is the directory at the generation read when the request
	// began: every lookup of the request goes through it.
	dir readcache.View
}

func (s *Server) token(version int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// The label is known once the form is read; errors before that
		// count as "none".
		label := "none"
		resp, err := s.handleToken(w, r, version, &label)
		if err != nil {
			s.opts.metrics.TokenRefused(label, s.writeError(w, r, err))
			return
		}
		w.Header().Set("Pragma", "no-cache")
		writeJSON(w, resp, "no-store, no-cache")
		s.opts.metrics.TokenIssued(label)
	}
}

// handleToken reads the request, runs its grant and returns the response
// body; label is set to the grant's metrics label once it is known.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request, version int, label *string) ([]byte, error) {
	form, err := s.readForm(w, r)
	if err != nil {
		return nil, err
	}
	*label = grantLabel(form.Get("grant_type"))
	dir, err := s.view(r.Context())
	if err != nil {
		return nil, err
	}
	tenant, err := resolveTenant(r.Context(), dir, r.PathValue("tenant"))
	if err != nil {
		return nil, err
	}
	req := tokenRequest{version: version, form: form, tenant: tenant, base: baseURL(r), dir: dir}
	var g grant
	switch gt := form.Get("grant_type"); gt {
	case "":
		return nil, missing("grant_type")
	case "client_credentials":
		g, err = s.clientCredentials(r, req)
	case "password":
		g, err = s.password(r, req)
	default:
		return nil, aadsts.New(aadsts.UnsupportedGrantType, "The app requested an unsupported grant type '%s'.", gt)
	}
	if err != nil {
		return nil, err
	}
	return s.issue(r.Context(), req, g)
}

// readForm reads a bounded form body. The query string is ignored, as
// Entra ignores the client-request-id msal-node puts there.
func (s *Server) readForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, missing("grant_type")
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.maxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, aadsts.New(aadsts.MalformedRequestBody, "The request body is larger than %d bytes.", s.opts.maxBody)
		}
		return nil, aadsts.New(aadsts.MalformedRequestBody, "The request body could not be read.")
	}
	form, err := url.ParseQuery(string(data))
	if err != nil {
		return nil, aadsts.New(aadsts.MalformedRequestBody, "The request body is not a valid form: %s.", err)
	}
	for _, values := range form {
		if len(values) > 1 {
			// The first duplicated name in order, so that the answer
			// does not depend on the map's order.
			for _, name := range slices.Sorted(maps.Keys(form)) {
				if len(form[name]) > 1 {
					return nil, aadsts.New(aadsts.DuplicateParameter, "The request is not properly formatted. The parameter '%s' is duplicated.", name)
				}
			}
		}
	}
	return form, nil
}
