package entra

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/aadsts"
)

// password is the resource owner password credentials grant (ROPC) for
// directory users: a public client, or a confidential one with its secret or
// assertion. The token carries the requested delegated scopes in scp.
func (s *Server) password(w http.ResponseWriter, r *http.Request, req tokenRequest) {
	ctx := r.Context()
	scopeParam := "scope"
	if req.version == 1 && req.form.Get("scope") == "" {
		scopeParam = "resource" // v1: every scope of the resource
	}
	for _, name := range []string{"client_id", "username", "password", scopeParam} {
		if req.form.Get(name) == "" {
			s.fail(w, r, missing(name))
			return
		}
	}
	cl, aerr, err := s.resolveClient(ctx, req.tenant, strings.ToLower(req.form.Get("client_id")))
	if err == nil && aerr == nil && !cl.Application {
		aerr = notFoundApp(cl.AppID, req.tenant) // managed identities have no users
	}
	if s.failed(w, r, aerr, err) {
		return
	}
	auth := authResult{client: cl, acr: "0"}
	if req.form.Get("client_secret") != "" || req.form.Get("client_assertion") != "" {
		auth, aerr, err = s.authenticate(r, req, cl, req.form.Get("client_secret"))
		if s.failed(w, r, aerr, err) {
			return
		}
	}
	resourceName, wanted, aerr := req.form.Get("resource"), []string{".default"}, (*aadsts.Error)(nil)
	if scopeParam == "scope" {
		resourceName, wanted, aerr = delegatedScopes(req.form.Get("scope"))
	}
	if aerr != nil {
		s.fail(w, r, aerr)
		return
	}
	user, err := s.store.GetUserByUPN(ctx, req.tenant.ID, strings.ToLower(req.form.Get("username")))
	if errors.Is(err, store.ErrNotFound) {
		s.fail(w, r, aadsts.New(aadsts.UserNotFound, "The user account {EUII Hidden} does not exist in the %s directory. To sign into this application, the account must be added to the directory.", req.tenant.ID))
		return
	}
	if s.failed(w, r, nil, err) {
		return
	}
	if !directory.CheckPassword(user.PasswordHash, req.form.Get("password")) {
		s.fail(w, r, aadsts.New(aadsts.InvalidUsernameOrPassword, "Error validating credentials due to invalid username or password."))
		return
	}
	res, aerr, err := s.resolveResource(ctx, req.tenant, resourceName)
	if s.failed(w, r, aerr, err) {
		return
	}
	scopes, aerr := grantScopes(res, resourceName, wanted)
	if aerr != nil {
		s.fail(w, r, aerr)
		return
	}
	s.issue(w, r, req, grant{auth: auth, user: &user, scopes: scopes}, res, resourceName)
}

// failed answers an Entra error or a backend failure, and reports whether
// it did.
func (s *Server) failed(w http.ResponseWriter, r *http.Request, aerr *aadsts.Error, err error) bool {
	switch {
	case err != nil:
		s.unavailable(w, r, err)
	case aerr != nil:
		s.fail(w, r, aerr)
	default:
		return false
	}
	return true
}

func invalidScope(scope string) *aadsts.Error {
	return aadsts.New(aadsts.InvalidScope, "The provided value for the input parameter 'scope' isn't valid. The scope %s isn't valid.", scope)
}

// delegatedScopes splits "api://x/Read api://x/Write openid" into the
// resource and the scope values (".default" for all), ignoring OpenID
// scopes. Scopes of several resources are refused, as Entra does.
func delegatedScopes(raw string) (string, []string, *aadsts.Error) {
	var resource string
	var values []string
	for _, sc := range strings.Fields(raw) {
		if oidcScopes[sc] {
			continue
		}
		i := strings.LastIndex(sc, "/")
		if i <= 0 || i == len(sc)-1 {
			return "", nil, invalidScope(sc)
		}
		if resource != "" && sc[:i] != resource {
			return "", nil, aadsts.New(aadsts.MultipleResources, "The provided value for scope %s is not valid. Scopes of several resources cannot be requested together.", raw)
		}
		resource = sc[:i]
		values = append(values, sc[i+1:])
	}
	if resource == "" {
		return "", nil, invalidScope(raw)
	}
	return resource, values, nil
}

// grantScopes returns the values of res's enabled delegated scopes that were
// asked for; ".default" asks for all of them. Users are treated as having
// consented to every scope a resource publishes.
func grantScopes(res resource, name string, wanted []string) ([]string, *aadsts.Error) {
	enabled := map[string]bool{}
	var all []string
	for _, sc := range res.App.PermissionScopes {
		if sc.IsEnabled {
			enabled[sc.Value] = true
			all = append(all, sc.Value)
		}
	}
	var out []string
	for _, v := range wanted {
		switch {
		case v == ".default" && len(all) > 0:
			out = append(out, all...)
		case enabled[v]:
			out = append(out, v)
		default:
			return nil, invalidScope(name + "/" + v)
		}
	}
	return dedupe(out), nil
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	out := in[:0]
	for _, v := range in {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// pairwiseSubject is a user's sub for one client: stable, and different for
// every client, as Entra's pairwise subjects are.
func pairwiseSubject(userOID, clientAppID string) string {
	sum := sha256.Sum256([]byte(userOID + "|" + clientAppID))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
