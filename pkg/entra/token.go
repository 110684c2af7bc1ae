package entra

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/aadsts"
)

// jwtBearer is the only client_assertion_type Entra accepts.
const jwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// backdate is how far Entra moves iat and nbf into the past.
const backdate = 5 * time.Minute

// oidcScopes are the scopes MSAL adds to app-only requests; Entra ignores them.
var oidcScopes = map[string]bool{"openid": true, "offline_access": true, "profile": true, "email": true}

// tokenRequest is what a grant needs from the request.
type tokenRequest struct {
	version int // 1 or 2: the endpoint, which shapes the response only
	form    url.Values
	tenant  store.Tenant
	base    string
}

// authResult is an authenticated client and how it authenticated.
type authResult struct {
	client client
	acr    string // "1" secret, "2" certificate or federated assertion
}

func (s *Server) token(version int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// The label is known once the form is read; errors before that
		// count as "none".
		label := "none"
		r = r.WithContext(context.WithValue(r.Context(), grantKey{}, &label))
		form, aerr := s.readForm(w, r)
		if aerr != nil {
			s.fail(w, r, aerr)
			return
		}
		label = grantLabel(form.Get("grant_type"))
		tenant, aerr, err := s.resolveTenant(r.Context(), r.PathValue("tenant"))
		if err != nil {
			s.unavailable(w, r, err)
			return
		}
		if aerr != nil {
			s.fail(w, r, aerr)
			return
		}
		req := tokenRequest{version: version, form: form, tenant: tenant, base: baseURL(r)}
		switch grant := form.Get("grant_type"); grant {
		case "":
			s.fail(w, r, missing("grant_type"))
		case "client_credentials":
			s.clientCredentials(w, r, req)
		case "password":
			s.password(w, r, req)
		default:
			s.fail(w, r, aadsts.New(aadsts.UnsupportedGrantType, "The app requested an unsupported grant type '%s'.", grant))
		}
	}
}

func missing(name string) *aadsts.Error {
	return aadsts.New(aadsts.MissingParameter, "The request body must contain the following parameter: '%s'.", name)
}

// readForm reads a bounded form body. The query string is ignored, as
// Entra ignores the client-request-id msal-node puts there.
func (s *Server) readForm(w http.ResponseWriter, r *http.Request) (url.Values, *aadsts.Error) {
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
	names := slices.Sorted(maps.Keys(form))
	for _, name := range names {
		if len(form[name]) > 1 {
			return nil, aadsts.New(aadsts.DuplicateParameter, "The request is not properly formatted. The parameter '%s' is duplicated.", name)
		}
	}
	return form, nil
}

func (s *Server) clientCredentials(w http.ResponseWriter, r *http.Request, req tokenRequest) {
	ctx := r.Context()
	clientID, secret, hasBasic := r.BasicAuth()
	if !hasBasic {
		clientID, secret = req.form.Get("client_id"), req.form.Get("client_secret")
	}
	if clientID == "" {
		s.fail(w, r, missing("client_id"))
		return
	}
	resourceName, aerr := resourceFromRequest(req)
	if aerr != nil {
		s.fail(w, r, aerr)
		return
	}
	cl, aerr, err := s.resolveClient(ctx, req.tenant, strings.ToLower(clientID))
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	if aerr != nil {
		s.fail(w, r, aerr)
		return
	}
	auth, aerr, err := s.authenticate(r, req, cl, secret)
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	if aerr != nil {
		s.fail(w, r, aerr)
		return
	}
	res, aerr, err := s.resolveResource(ctx, req.tenant, resourceName)
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	if aerr != nil {
		s.fail(w, r, aerr)
		return
	}
	roles, err := s.roles(ctx, cl.PrincipalID, res)
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	s.issue(w, r, req, grant{auth: auth, roles: roles}, res, resourceName)
}

// resourceFromRequest takes the resource from scope (v2) or resource (v1).
func resourceFromRequest(req tokenRequest) (string, *aadsts.Error) {
	if req.version == 1 && req.form.Get("scope") == "" {
		res := req.form.Get("resource")
		if res == "" {
			return "", missing("resource")
		}
		return res, nil
	}
	raw := req.form.Get("scope")
	if raw == "" {
		return "", missing("scope")
	}
	var resources []string
	for _, sc := range strings.Fields(raw) {
		if oidcScopes[sc] {
			continue
		}
		res, ok := strings.CutSuffix(sc, "/.default")
		if !ok || res == "" {
			return "", aadsts.New(aadsts.ScopeNotDefault, "The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", sc)
		}
		resources = append(resources, res)
	}
	switch len(resources) {
	case 0:
		return "", aadsts.New(aadsts.ScopeNotDefault, "The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", raw)
	case 1:
		return resources[0], nil
	}
	return "", aadsts.New(aadsts.MultipleResources, "The provided value for scope %s is not valid. Client credential flows must have a scope value for a single resource.", raw)
}

// authenticate checks the client's secret or federated assertion.
func (s *Server) authenticate(r *http.Request, req tokenRequest, cl client, secret string) (authResult, *aadsts.Error, error) {
	ctx := r.Context()
	assertion := req.form.Get("client_assertion")
	switch {
	case assertion != "":
		if t := req.form.Get("client_assertion_type"); t != jwtBearer {
			if t == "" {
				return authResult{}, missing("client_assertion_type"), nil
			}
			return authResult{}, aadsts.New(aadsts.InvalidClientAssertionType, "The client_assertion_type '%s' is not supported. Use '%s'.", t, jwtBearer), nil
		}
		if tok := certificateAssertion(assertion, cl.AppID); tok != nil {
			aerr, err := s.verifyCertificateAssertion(r, req, cl, tok)
			if aerr != nil || err != nil {
				return authResult{}, aerr, err
			}
			return authResult{client: cl, acr: "2"}, nil, nil
		}
		creds, err := s.store.ListFederatedCredentials(ctx, cl.OwnerID)
		if err != nil {
			return authResult{}, nil, err
		}
		if _, aerr := s.verifier.Verify(ctx, assertion, creds); aerr != nil {
			return authResult{}, aerr, nil
		}
		return authResult{client: cl, acr: "2"}, nil, nil
	case secret != "":
		if !cl.Application {
			return authResult{}, invalidSecret(cl), nil
		}
		creds, err := s.store.ListPasswordCredentials(ctx, cl.OwnerID)
		if err != nil {
			return authResult{}, nil, err
		}
		switch directory.CheckSecret(creds, secret, s.opts.now()) {
		case directory.SecretValid:
			return authResult{client: cl, acr: "1"}, nil, nil
		case directory.SecretExpired:
			return authResult{}, aadsts.New(aadsts.ExpiredClientSecret, "The provided client secret keys for app '%s' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.", cl.AppID), nil
		}
		return authResult{}, invalidSecret(cl), nil
	}
	return authResult{}, aadsts.New(aadsts.NoClientCredential, "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type."), nil
}

func invalidSecret(cl client) *aadsts.Error {
	return aadsts.New(aadsts.InvalidClientSecret, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", cl.AppID)
}

// accessToken holds the claims of an app-only access token, v1 or v2, in
// the order Entra writes them.
type accessToken struct {
	Aud               string   `json:"aud"`
	Iss               string   `json:"iss"`
	Iat               int64    `json:"iat"`
	Nbf               int64    `json:"nbf"`
	Exp               int64    `json:"exp"`
	Aio               string   `json:"aio"`
	Amr               []string `json:"amr,omitempty"`
	AppID             string   `json:"appid,omitempty"`
	AppIDACR          string   `json:"appidacr,omitempty"`
	Azp               string   `json:"azp,omitempty"`
	AzpACR            string   `json:"azpacr,omitempty"`
	IdP               string   `json:"idp,omitempty"`
	IdTyp             string   `json:"idtyp,omitempty"`
	Name              string   `json:"name,omitempty"`
	OID               string   `json:"oid"`
	PreferredUsername string   `json:"preferred_username,omitempty"`
	RH                string   `json:"rh"`
	Roles             []string `json:"roles,omitempty"`
	Scp               string   `json:"scp,omitempty"`
	Sub               string   `json:"sub"`
	TID               string   `json:"tid"`
	UniqueName        string   `json:"unique_name,omitempty"`
	UPN               string   `json:"upn,omitempty"`
	UTI               string   `json:"uti"`
	Ver               string   `json:"ver"`
}

// grant is what a token is issued for: a client alone (roles), or a user
// through a client (delegated scopes).
type grant struct {
	auth   authResult
	roles  []string
	user   *store.User
	scopes []string
}

// issue signs the access token and writes the response. The token's version
// follows the resource's accessTokenAcceptedVersion, not the endpoint.
func (s *Server) issue(w http.ResponseWriter, r *http.Request, req tokenRequest, g grant, res resource, requested string) {
	auth := g.auth
	now := s.opts.now().UTC().Truncate(time.Second)
	iat := now.Add(-backdate)
	exp := now.Add(s.opts.tokenLifetime)
	at := accessToken{
		Iat: iat.Unix(), Nbf: iat.Unix(), Exp: exp.Unix(), Aio: opaque(48),
		OID: auth.client.PrincipalID, RH: "0." + opaque(48) + ".", Roles: g.roles,
		Sub: auth.client.PrincipalID, TID: req.tenant.ID, UTI: opaque(16),
	}
	v1 := res.App.AccessTokenAcceptedVersion != 2
	if v1 {
		at.Aud, at.Iss, at.Ver = requested, v1Issuer(req.tenant.ID), "1.0"
		at.AppID, at.AppIDACR, at.IdP, at.IdTyp = auth.client.AppID, auth.acr, v1Issuer(req.tenant.ID), "app"
	} else {
		at.Aud, at.Iss, at.Ver = res.App.AppID, req.base+"/"+req.tenant.ID+"/v2.0", "2.0"
		at.Azp, at.AzpACR = auth.client.AppID, auth.acr
	}
	var granted []string
	if u := g.user; u != nil {
		at.OID, at.Sub, at.Name, at.Scp, at.IdP, at.IdTyp = u.ObjectID, pairwiseSubject(u.ObjectID, auth.client.AppID), u.DisplayName, strings.Join(g.scopes, " "), "", ""
		if v1 {
			at.Amr, at.UniqueName, at.UPN = []string{"pwd"}, u.UserPrincipalName, u.UserPrincipalName
		} else {
			at.PreferredUsername = u.UserPrincipalName
		}
		for _, sc := range g.scopes {
			granted = append(granted, requested+"/"+sc)
		}
	}
	payload, err := json.Marshal(at)
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	token, err := s.signer.Sign(payload, v1)
	if err != nil {
		s.unavailable(w, r, err)
		return
	}
	expiresIn := int64(exp.Sub(now)/time.Second) - 1
	var body []byte
	if req.version == 1 {
		body, _ = json.Marshal(struct {
			TokenType    string `json:"token_type"`
			ExpiresIn    string `json:"expires_in"`
			ExtExpiresIn string `json:"ext_expires_in"`
			ExpiresOn    string `json:"expires_on"`
			NotBefore    string `json:"not_before"`
			Resource     string `json:"resource"`
			AccessToken  string `json:"access_token"`
		}{"Bearer", itoa(expiresIn), itoa(expiresIn), itoa(exp.Unix()), itoa(iat.Unix()), requested, token})
	} else {
		body, _ = json.Marshal(struct {
			TokenType    string `json:"token_type"`
			Scope        string `json:"scope,omitempty"`
			ExpiresIn    int64  `json:"expires_in"`
			ExtExpiresIn int64  `json:"ext_expires_in"`
			AccessToken  string `json:"access_token"`
		}{"Bearer", strings.Join(granted, " "), expiresIn, expiresIn, token})
	}
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, body, "no-store, no-cache")
	if g, ok := r.Context().Value(grantKey{}).(*string); ok {
		s.opts.metrics.TokenIssued(*g)
	}
	s.opts.logger.Debug("issued access token", "client_id", auth.client.AppID, "resource", res.App.AppID, "ver", at.Ver)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// opaque returns n random bytes base64url-encoded, for Entra's opaque
// claims (uti is 16 bytes: 22 characters, as Entra's).
func opaque(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
