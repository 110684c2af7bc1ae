package entra

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/aadsts"
)

// password is the resource owner password credentials grant (ROPC) for
// directory users: a public client (isFallbackPublicClient) without
// credentials, or a confidential one with its secret or assertion. The token carries the requested delegated scopes in scp.
func (s *Server) password(r *http.Request, req tokenRequest) (grant, error) {
	ctx := r.Context()
	scopeParam := "scope"
	if req.version == 1 && req.form.Get("scope") == "" {
		scopeParam = "resource" // v1: every scope of the resource
	}
	for _, name := range []string{"client_id", "username", "password", scopeParam} {
		if req.form.Get(name) == "" {
			return grant{}, missing(name)
		}
	}
	cl, err := resolveClient(ctx, req, strings.ToLower(req.form.Get("client_id")))
	if err != nil {
		return grant{}, err
	}
	if !cl.Application {
		return grant{}, notFoundApp(cl.AppID, req.tenant) // managed identities have no users
	}
	auth := authResult{client: cl, acr: "0"}
	presented := req.form.Get("client_secret") != "" || req.form.Get("client_assertion") != ""
	switch {
	case cl.Public && presented:
		return grant{}, aadsts.New(aadsts.PublicClientWithCredential, "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.")
	case !cl.Public && !presented:
		// Only an application marked as a public client may use the
		// password grant without authenticating, as in Entra.
		return grant{}, aadsts.New(aadsts.ConfidentialClientNoSecret, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
	case presented:
		if auth, err = s.authenticate(r, req, cl, req.form.Get("client_secret")); err != nil {
			return grant{}, err
		}
	}
	resourceName, wanted := req.form.Get("resource"), []string{".default"}
	if scopeParam == "scope" {
		if resourceName, wanted, err = delegatedScopes(req.form.Get("scope")); err != nil {
			return grant{}, err
		}
	}
	resourceName = resourceAlias(r, resourceName)
	// Everything cheap is checked before the password: the resource and
	// the scopes, then the lockouts.
	res, err := resolveResource(ctx, req, resourceName)
	if err != nil {
		return grant{}, err
	}
	scopes, err := grantScopes(res, resourceName, wanted)
	if err != nil {
		return grant{}, err
	}
	upn := strings.ToLower(req.form.Get("username"))
	userKey, clientKey := req.tenant.ID+"|"+upn, "password|"+req.tenant.ID+"|"+cl.AppID
	now := s.opts.now()
	if s.userFailures.blocked(userKey, now) > 0 {
		return grant{}, locked()
	}
	if wait := s.clientFailures.blocked(clientKey, now); wait > 0 {
		return grant{}, throttled(wait)
	}
	user, err := req.dir.GetUserByUPN(ctx, req.tenant.ID, upn)
	known := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return grant{}, fmt.Errorf("get user: %w", err)
	}
	// An unknown user costs the same hash as a wrong password.
	ok, err := s.passwords.verify(ctx, user.PasswordHash, req.form.Get("password"))
	if err != nil {
		return grant{}, err
	}
	if !ok {
		s.userFailures.failed(userKey, now)
		s.clientFailures.failed(clientKey, now)
		if !known {
			return grant{}, aadsts.New(aadsts.UserNotFound, "The user account {EUII Hidden} does not exist in the %s directory. To sign into this application, the account must be added to the directory.", req.tenant.ID)
		}
		return grant{}, aadsts.New(aadsts.InvalidUsernameOrPassword, "Error validating credentials due to invalid username or password.")
	}
	return grant{auth: auth, user: &user, scopes: scopes, resource: res, requested: resourceName}, nil
}

func invalidScope(scope string) error {
	return aadsts.New(aadsts.InvalidScope, "The provided value for the input parameter 'scope' isn't valid. The scope %s isn't valid.", scope)
}

// delegatedScopes splits "api://x/Read api://x/Write openid" into the
// resource and the scope values (".default" for all), ignoring OpenID
// scopes. Scopes of several resources are refused, as Entra does.
func delegatedScopes(raw string) (string, []string, error) {
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
func grantScopes(res resource, name string, wanted []string) ([]string, error) {
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
