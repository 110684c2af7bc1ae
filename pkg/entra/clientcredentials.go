package entra

import (
	"net/http"
	"strings"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/aadsts"
)

// oidcScopes are the scopes MSAL adds to app-only requests; Entra ignores them.
var oidcScopes = map[string]bool{"openid": true, "offline_access": true, "profile": true, "email": true}

// clientCredentials is the client credentials grant: a client alone, with
// its secret, certificate or federated assertion, for the app roles it holds
// on one resource.
func (s *Server) clientCredentials(r *http.Request, req tokenRequest) (grant, error) {
	ctx := r.Context()
	clientID, secret, hasBasic := r.BasicAuth()
	if !hasBasic {
		clientID, secret = req.form.Get("client_id"), req.form.Get("client_secret")
	}
	if clientID == "" {
		return grant{}, missing("client_id")
	}
	resourceName, err := resourceFromRequest(req)
	if err != nil {
		return grant{}, err
	}
	cl, err := resolveClient(ctx, req, strings.ToLower(clientID))
	if err != nil {
		return grant{}, err
	}
	auth, err := s.authenticate(r, req, cl, secret)
	if err != nil {
		return grant{}, err
	}
	resourceName = resourceAlias(r, resourceName)
	res, err := resolveResource(ctx, req, resourceName)
	if err != nil {
		return grant{}, err
	}
	roles, err := grantedRoles(ctx, req, cl.PrincipalID, res)
	if err != nil {
		return grant{}, err
	}
	return grant{auth: auth, roles: roles, resource: res, requested: resourceName}, nil
}

// resourceFromRequest takes the resource from scope (v2) or resource (v1).
func resourceFromRequest(req tokenRequest) (string, error) {
	if req.version == 1 && req.form.Get("scope") == "" {
		res := req.form.Get("resource")
		if res == "" {
			return "", missing("resource")
		}
		return res, nil
	}
	raw := req.form.Get("scope")
	if raw == "" {
		return "", aadsts.New(aadsts.MissingCredentialField, "The required field 'scope' is missing from the credential. Ensure that you have all the necessary parameters for the login request.")
	}
	var resources []string
	for _, sc := range strings.Fields(raw) {
		if oidcScopes[sc] {
			continue
		}
		res, ok := strings.CutSuffix(sc, "/.default")
		if !ok || res == "" {
			return "", notDefault(sc)
		}
		resources = append(resources, res)
	}
	switch len(resources) {
	case 0:
		return "", notDefault(raw)
	case 1:
		return resources[0], nil
	}
	return "", aadsts.New(aadsts.MultipleResources, "The provided value for scope %s is not valid. Client credential flows must have a scope value for a single resource.", raw)
}

func notDefault(scope string) error {
	return aadsts.New(aadsts.ScopeNotDefault, "The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", scope)
}
