package entra_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/seed"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store/sqlstore"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/aadsts"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/federation"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/signer"
)

const (
	tenantID = "6f0c2a4e-1b7d-4c55-9f3e-2d8a1b7c9e10"
	apiAppID = "3b6f1d2a-8c4e-4f7a-b1d9-5e2c7a9f0b34"
	v1AppID  = "4c7a2e3b-9d5f-4a8b-a2e0-6f3d8b0a1c45"
	clientID = "5d8b3f4c-ae60-4b9c-b3f1-7a4e9c1b2d56"
	miClient = "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"
	secret   = "a-test-client-secret-of-enough-length"
	password = "correct horse battery staple"
)

// testCert is the certificate registered on the worker app, and another
// one that is not.
var testCert, strangerCert = newCert(), newCert()

type certKey struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

func newCert() certKey {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "worker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return certKey{key, cert}
}

// assertion signs a client assertion as ClientCertificateCredential does;
// edit changes the claims before signing.
func (c certKey) assertion(t *testing.T, aud string, edit func(map[string]any), header ...string) string {
	t.Helper()
	now := time.Now()
	claims := map[string]any{"aud": aud, "iss": clientID, "sub": clientID, "jti": "j1", "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()}
	if edit != nil {
		edit(claims)
	}
	s256 := sha256.Sum256(c.cert.Raw)
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if len(header) == 0 {
		opts = opts.WithHeader("x5t#S256", base64.RawURLEncoding.EncodeToString(s256[:]))
	} else {
		opts = opts.WithHeader(jose.HeaderKey(header[0]), header[1])
	}
	sg, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: c.key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(sg).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

const seedYAML = `
tenants:
  - id: ` + tenantID + `
    displayName: Contoso
    domains: [contoso.example]
    applications:
      - name: payments-api
        appId: ` + apiAppID + `
        identifierUris: [api://payments]
        accessTokenAcceptedVersion: 2
        appRoles: [{value: Payments.Read}, {value: Payments.Write}]
        oauth2PermissionScopes: [{value: Payments.Submit}, {value: Payments.View}]
      - name: legacy-api
        appId: ` + v1AppID + `
        identifierUris: [https://legacy.contoso.example]
        appRoles: [{value: Legacy.Read}]
        oauth2PermissionScopes: [{value: Legacy.Use}]
      - name: worker
        appId: ` + clientID + `
        clientSecretFiles: [SECRETFILE]
        certificateFiles: [CERTFILE]
        federatedCredentials:
          - {name: spiffe-worker, issuer: "https://oidc.example.org", subject: "spiffe://example.org/worker"}
        roleAssignments:
          - {resource: api://payments, role: Payments.Read}
          - {resource: legacy-api, role: Legacy.Read}
    users:
      - {userPrincipalName: Ada@contoso.example, displayName: Ada Lovelace, passwordFile: PASSWORDFILE}
    managedIdentities:
      - name: batch
        subscriptionId: 0d5c3e1f-7a2b-4c9d-8e6f-1a2b3c4d5e6f
        resourceGroup: rg
        clientId: ` + miClient + `
        federatedCredentials:
          - {name: k8s, issuer: "https://kubernetes.default.svc", subject: "system:serviceaccount:batch:runner"}
`

// fakeVerifier stands in for the federation verifier, whose rules have
// their own suite: it accepts exactly the assertion "good".
type fakeVerifier struct{ creds []store.FederatedCredential }

func (f *fakeVerifier) Verify(_ context.Context, assertion string, creds []store.FederatedCredential) (*federation.Match, *aadsts.Error) {
	f.creds = creds
	if assertion == "good" && len(creds) > 0 {
		return &federation.Match{Credential: creds[0]}, nil
	}
	return nil, aadsts.New(aadsts.NoMatchingSubject, "No matching federated identity record found for presented assertion subject '%s'.", "x")
}

type fixture struct {
	srv      *httptest.Server
	verifier *fakeVerifier
	store    store.Store
	signer   *signer.Signer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	s, err := sqlstore.OpenSQLite(filepath.Join(dir, "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	certFile, passwordFile := filepath.Join(dir, "worker.pem"), filepath.Join(dir, "password")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: testCert.cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(passwordFile, []byte(password), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := seed.Parse([]byte(strings.NewReplacer("SECRETFILE", secretFile, "CERTFILE", certFile, "PASSWORDFILE", passwordFile).Replace(seedYAML)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := (&seed.Applier{Store: s, ParseExpression: func(string) error { return nil }}).Apply(ctx, f); err != nil {
		t.Fatal(err)
	}
	sg := signer.New(s, signer.Options{})
	if err := sg.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	v := &fakeVerifier{}
	srv := httptest.NewTLSServer(entra.New(s, v, sg).Handler())
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, verifier: v, store: s, signer: sg}
}

func (f *fixture) post(t *testing.T, path string, form url.Values, edit func(*http.Request)) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", f.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	if edit != nil {
		edit(req)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("body is not JSON: %v", err)
	}
	return resp, body
}

func ccForm(kv ...string) url.Values {
	v := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "scope": {"api://payments/.default"}, "client_secret": {secret}}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			v.Del(kv[i])
		} else {
			v.Set(kv[i], kv[i+1])
		}
	}
	return v
}

func ropcForm(kv ...string) url.Values {
	v := url.Values{"grant_type": {"password"}, "client_id": {clientID}, "scope": {"api://payments/Payments.Submit openid profile offline_access"},
		"username": {"ada@contoso.example"}, "password": {password}}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			v.Del(kv[i])
		} else {
			v.Set(kv[i], kv[i+1])
		}
	}
	return v
}

const jwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

func TestTokenEndpointErrors(t *testing.T) {
	f := newFixture(t)
	v2 := "/" + tenantID + "/oauth2/v2.0/token"
	aud := f.srv.URL + v2
	certForm := func(assertion string) url.Values {
		return ccForm("client_secret", "", "client_assertion", assertion, "client_assertion_type", jwtBearer)
	}
	sha1Sum := sha1.Sum(strangerCert.cert.Raw)
	for _, tc := range []struct {
		name   string
		path   string
		form   url.Values
		edit   func(*http.Request)
		status int
		oauth  string
		code   int
		says   string
	}{
		{"unknown tenant", "/" + "00000000-0000-0000-0000-0000000000aa" + "/oauth2/v2.0/token", ccForm(), nil, 400, "invalid_request", 90002, "Tenant '00000000-0000-0000-0000-0000000000aa' not found"},
		{"unknown domain", "/nowhere.example/oauth2/v2.0/token", ccForm(), nil, 400, "invalid_request", 90002, "Tenant 'nowhere.example' not found"},
		{"no grant_type", v2, ccForm("grant_type", ""), nil, 400, "invalid_request", 900144, "parameter: 'grant_type'"},
		{"JSON body", v2, ccForm(), func(r *http.Request) { r.Header.Set("Content-Type", "application/json") }, 400, "invalid_request", 900144, "'grant_type'"},
		{"unsupported grant", v2, ccForm("grant_type", "magic"), nil, 400, "unsupported_grant_type", 70003, "unsupported grant type 'magic'"},
		{"no client_id", v2, ccForm("client_id", ""), nil, 400, "invalid_request", 900144, "parameter: 'client_id'"},
		{"no scope", v2, ccForm("scope", ""), nil, 400, "invalid_request", 900144, "parameter: 'scope'"},
		{"scope without .default", v2, ccForm("scope", "api://payments/Payments.Read"), nil, 400, "invalid_scope", 1002012, "scope api://payments/Payments.Read is not valid"},
		{"only OIDC scopes", v2, ccForm("scope", "openid profile"), nil, 400, "invalid_scope", 1002012, "/.default suffixed"},
		{"two resources", v2, ccForm("scope", "api://payments/.default https://legacy.contoso.example/.default"), nil, 400, "invalid_scope", 700022, "single resource"},
		{"unknown client", v2, ccForm("client_id", "00000000-0000-0000-0000-000000000001"), nil, 400, "unauthorized_client", 700016, "Application with identifier '00000000-0000-0000-0000-000000000001' was not found in the directory 'Contoso'"},
		{"no credential", v2, ccForm("client_secret", ""), nil, 401, "invalid_client", 7000216, "'client_assertion', 'client_secret' or 'request' is required"},
		{"wrong secret", v2, ccForm("client_secret", "nope"), nil, 401, "invalid_client", 7000215, "for a secret added to app '" + clientID + "'"},
		{"wrong secret in Basic", v2, ccForm("client_secret", "", "client_id", ""), func(r *http.Request) { r.SetBasicAuth(clientID, "nope") }, 401, "invalid_client", 7000215, "Invalid client secret"},
		{"secret for a managed identity", v2, ccForm("client_id", miClient), nil, 401, "invalid_client", 7000215, "Invalid client secret"},
		{"assertion without type", v2, ccForm("client_secret", "", "client_assertion", "good"), nil, 400, "invalid_request", 900144, "'client_assertion_type'"},
		{"assertion of another type", v2, ccForm("client_secret", "", "client_assertion", "good", "client_assertion_type", "urn:x"), nil, 401, "invalid_client", 70002, "'urn:x' is not supported"},
		{"assertion refused", v2, ccForm("client_secret", "", "client_assertion", "bad", "client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"), nil, 401, "invalid_client", 700213, "No matching federated identity record"},
		{"unknown resource", v2, ccForm("scope", "api://unknown/.default"), nil, 400, "invalid_resource", 500011, "The resource principal named api://unknown was not found in the tenant named Contoso"},
		{"v1 without resource", "/" + tenantID + "/oauth2/token", ccForm("scope", ""), nil, 400, "invalid_request", 900144, "parameter: 'resource'"},
		{"huge body", v2, ccForm("client_assertion", strings.Repeat("a", 70<<10)), nil, 400, "invalid_request", 900143, "larger than"},
		{"duplicate parameter", v2, func() url.Values { v := ccForm(); v.Add("scope", "api://payments/.default"); return v }(), nil, 400, "invalid_request", 9000411, "The parameter 'scope' is duplicated"},
		{"certificate not registered", v2, certForm(strangerCert.assertion(t, aud, nil)), nil, 401, "invalid_client", 700027, "is not registered on application. [Reason - The key was not found."},
		{"certificate named by x5t only, not registered", v2, certForm(strangerCert.assertion(t, aud, nil, "x5t", base64.RawURLEncoding.EncodeToString(sha1Sum[:]))), nil, 401, "invalid_client", 700027, strings.ToUpper(hex.EncodeToString(sha1Sum[:]))},
		{"certificate assertion without thumbprint", v2, certForm(testCert.assertion(t, aud, nil, "kid", "k")), nil, 401, "invalid_client", 700027, "no x5t or x5t#S256"},
		{"certificate assertion signed by another key", v2, certForm(func() string {
			a := testCert.assertion(t, aud, nil)
			b := strangerCert.assertion(t, aud, nil)
			return a[:strings.LastIndex(a, ".")] + b[strings.LastIndex(b, "."):]
		}()), nil, 401, "invalid_client", 700027, "failed signature validation"},
		{"certificate assertion for another client", v2, certForm(testCert.assertion(t, aud, func(c map[string]any) { c["sub"] = apiAppID })), nil, 401, "invalid_client", 700021, "doesn't match 'client_id'"},
		{"certificate assertion for another endpoint", v2, certForm(testCert.assertion(t, "https://login.microsoftonline.com/"+tenantID+"/oauth2/v2.0/token", nil)), nil, 401, "invalid_client", 700027, "is not the token endpoint"},
		{"expired certificate assertion", v2, certForm(testCert.assertion(t, aud, func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() })), nil, 401, "invalid_client", 700024, "not within its valid time range"},
		{"password: no username", v2, ropcForm("username", ""), nil, 400, "invalid_request", 900144, "parameter: 'username'"},
		{"password: no password", v2, ropcForm("password", ""), nil, 400, "invalid_request", 900144, "parameter: 'password'"},
		{"password: unknown user", v2, ropcForm("username", "grace@contoso.example"), nil, 400, "invalid_grant", 50034, "does not exist in the " + tenantID + " directory"},
		{"password: wrong password", v2, ropcForm("password", "Tr0ub4dor&3"), nil, 400, "invalid_grant", 50126, "invalid username or password"},
		{"password: unpublished scope", v2, ropcForm("scope", "api://payments/Payments.Delete"), nil, 400, "invalid_scope", 70011, "The scope api://payments/Payments.Delete isn't valid"},
		{"password: only OIDC scopes", v2, ropcForm("scope", "openid profile"), nil, 400, "invalid_scope", 70011, "isn't valid"},
		{"password: two resources", v2, ropcForm("scope", "api://payments/Payments.Submit https://legacy.contoso.example/Legacy.Read"), nil, 400, "invalid_scope", 700022, "several resources"},
		{"password: wrong client secret", v2, ropcForm("client_secret", "nope"), nil, 401, "invalid_client", 7000215, "Invalid client secret"},
		{"password: managed identity", v2, ropcForm("client_id", miClient), nil, 400, "unauthorized_client", 700016, "was not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := f.post(t, tc.path, tc.form, tc.edit)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			codes, _ := body["error_codes"].([]any)
			if body["error"] != tc.oauth || len(codes) != 1 || codes[0] != float64(tc.code) {
				t.Errorf("error %v codes %v, want %s [%d]", body["error"], body["error_codes"], tc.oauth, tc.code)
			}
			desc, _ := body["error_description"].(string)
			if !strings.HasPrefix(desc, "AADSTS") || !strings.Contains(desc, tc.says) || !strings.Contains(desc, "Trace ID: ") {
				t.Errorf("error_description %q does not say %q", desc, tc.says)
			}
			for _, k := range []string{"timestamp", "trace_id", "correlation_id"} {
				if s, _ := body[k].(string); s == "" {
					t.Errorf("%s missing", k)
				}
			}
		})
	}
}

// claimsOf verifies token with the signer's published keys and returns its
// header and claims.
func claimsOf(t *testing.T, f *fixture, token string) (jose.Header, map[string]any) {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(f.signer.PublicKeysJSON(), &set); err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	keys := set.Key(tok.Headers[0].KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q is not published", tok.Headers[0].KeyID)
	}
	var claims map[string]any
	if err := tok.Claims(keys[0].Key, &claims); err != nil {
		t.Fatalf("signature: %v", err)
	}
	return tok.Headers[0], claims
}

func TestTokenShapes(t *testing.T) {
	f := newFixture(t)
	sp, err := f.store.GetServicePrincipalByAppID(context.Background(), tenantID, clientID)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("v2 token from the v2 endpoint by domain, with MSAL's extra scopes", func(t *testing.T) {
		resp, body := f.post(t, "/contoso.example/oauth2/v2.0/token?client-request-id=x",
			ccForm("scope", "api://payments/.default openid offline_access profile", "client_info", "1", "x-client-SKU", "MSAL.Go"), nil)
		if resp.StatusCode != 200 || body["token_type"] != "Bearer" || body["expires_in"] != float64(3599) || body["ext_expires_in"] != float64(3599) {
			t.Fatalf("status %d body %v", resp.StatusCode, body)
		}
		if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
			t.Errorf("Cache-Control %q", cc)
		}
		h, c := claimsOf(t, f, body["access_token"].(string))
		if h.ExtraHeaders["typ"] != "JWT" || h.ExtraHeaders["x5t"] != nil {
			t.Errorf("header %v: want typ JWT and no x5t on v2", h.ExtraHeaders)
		}
		want := map[string]any{"aud": apiAppID, "iss": "https://" + resp.Request.URL.Host + "/" + tenantID + "/v2.0", "azp": clientID, "azpacr": "1",
			"oid": sp.ObjectID, "sub": sp.ObjectID, "tid": tenantID, "ver": "2.0"}
		for k, v := range want {
			if c[k] != v {
				t.Errorf("%s = %v, want %v", k, c[k], v)
			}
		}
		if roles, _ := c["roles"].([]any); len(roles) != 1 || roles[0] != "Payments.Read" {
			t.Errorf("roles %v, want [Payments.Read] only", c["roles"])
		}
		if c["iat"] != c["nbf"] || c["exp"].(float64)-c["iat"].(float64) != 3900 {
			t.Errorf("iat %v nbf %v exp %v: want iat = nbf, back-dated 5 minutes", c["iat"], c["nbf"], c["exp"])
		}
		if uti, _ := c["uti"].(string); len(uti) != 22 {
			t.Errorf("uti %q", uti)
		}
		for _, absent := range []string{"appid", "appidacr", "idtyp"} {
			if _, ok := c[absent]; ok {
				t.Errorf("v2 token carries %s", absent)
			}
		}
	})

	t.Run("v1 token for a resource without accessTokenAcceptedVersion, from the v1 endpoint", func(t *testing.T) {
		form := ccForm("scope", "", "resource", "https://legacy.contoso.example")
		resp, body := f.post(t, "/"+tenantID+"/oauth2/token", form, nil)
		if resp.StatusCode != 200 || body["expires_in"] != "3599" || body["resource"] != "https://legacy.contoso.example" {
			t.Fatalf("status %d body %v", resp.StatusCode, body)
		}
		for _, k := range []string{"ext_expires_in", "expires_on", "not_before"} {
			if _, ok := body[k].(string); !ok {
				t.Errorf("%s is not a string: %v", k, body[k])
			}
		}
		h, c := claimsOf(t, f, body["access_token"].(string))
		if h.ExtraHeaders["x5t"] != h.KeyID {
			t.Errorf("x5t %v, want the kid %s on v1", h.ExtraHeaders["x5t"], h.KeyID)
		}
		want := map[string]any{"aud": "https://legacy.contoso.example", "iss": "https://sts.windows.net/" + tenantID + "/", "appid": clientID,
			"appidacr": "1", "idp": "https://sts.windows.net/" + tenantID + "/", "idtyp": "app", "ver": "1.0"}
		for k, v := range want {
			if c[k] != v {
				t.Errorf("%s = %v, want %v", k, c[k], v)
			}
		}
	})

	t.Run("federated assertion for a managed identity: acr 2, no roles", func(t *testing.T) {
		form := ccForm("client_id", miClient, "client_secret", "", "client_assertion", "good",
			"client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", "scope", apiAppID+"/.default")
		resp, body := f.post(t, "/"+tenantID+"/oauth2/v2.0/token", form, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d body %v", resp.StatusCode, body)
		}
		if len(f.verifier.creds) != 1 || f.verifier.creds[0].Name != "k8s" {
			t.Errorf("the verifier saw %v, want the identity's credential", f.verifier.creds)
		}
		_, c := claimsOf(t, f, body["access_token"].(string))
		if c["azpacr"] != "2" || c["azp"] != miClient || c["roles"] != nil {
			t.Errorf("azp %v azpacr %v roles %v", c["azp"], c["azpacr"], c["roles"])
		}
	})
}

func TestDiscoveryAndKeys(t *testing.T) {
	f := newFixture(t)
	get := func(path string) (*http.Response, map[string]any) {
		resp, err := f.srv.Client().Get(f.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp, m
	}
	base := f.srv.URL + "/" + tenantID
	resp, doc := get("/contoso.example/v2.0/.well-known/openid-configuration")
	if resp.StatusCode != 200 || doc["issuer"] != base+"/v2.0" || doc["token_endpoint"] != base+"/oauth2/v2.0/token" ||
		doc["jwks_uri"] != base+"/discovery/v2.0/keys" || doc["authorization_endpoint"] != base+"/oauth2/v2.0/authorize" {
		t.Errorf("v2 discovery: %d %v", resp.StatusCode, doc)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "max-age=86400, private" {
		t.Errorf("Cache-Control %q", cc)
	}
	_, doc = get("/" + tenantID + "/.well-known/openid-configuration")
	if doc["issuer"] != "https://sts.windows.net/"+tenantID+"/" || doc["token_endpoint"] != base+"/oauth2/token" {
		t.Errorf("v1 discovery: %v", doc)
	}
	_, doc = get("/common/v2.0/.well-known/openid-configuration")
	if doc["issuer"] != f.srv.URL+"/{tenantid}/v2.0" {
		t.Errorf("common discovery issuer %v", doc["issuer"])
	}
	resp, doc = get("/nowhere.example/v2.0/.well-known/openid-configuration")
	if resp.StatusCode != 400 || doc["error_codes"].([]any)[0] != float64(90002) {
		t.Errorf("unknown tenant discovery: %d %v", resp.StatusCode, doc)
	}
	for _, path := range []string{"/" + tenantID + "/discovery/v2.0/keys", "/" + tenantID + "/discovery/keys", "/common/discovery/keys"} {
		resp, doc = get(path)
		keys, _ := doc["keys"].([]any)
		if resp.StatusCode != 200 || len(keys) < 2 {
			t.Fatalf("%s: %d %v: want the current and the next key", path, resp.StatusCode, doc)
		}
		for _, k := range keys {
			k := k.(map[string]any)
			x5c, _ := k["x5c"].([]any)
			if k["kty"] != "RSA" || k["use"] != "sig" || k["kid"] != k["x5t"] || k["n"] == nil || k["e"] != "AQAB" || len(x5c) != 1 || k["d"] != nil {
				t.Errorf("%s: key %v", path, k)
			}
			wantIssuer := map[string]any{
				"/" + tenantID + "/discovery/v2.0/keys": f.srv.URL + "/" + tenantID + "/v2.0",
				"/common/discovery/keys":                nil,
				"/" + tenantID + "/discovery/keys":      nil,
			}[path]
			if k["issuer"] != wantIssuer {
				t.Errorf("%s: issuer %v, want %v", path, k["issuer"], wantIssuer)
			}
			der, _ := base64.StdEncoding.DecodeString(x5c[0].(string))
			if len(der) == 0 {
				t.Errorf("x5c is not base64 DER")
			}
		}
	}
}

func TestInstanceDiscovery(t *testing.T) {
	f := newFixture(t)
	host := strings.TrimPrefix(f.srv.URL, "https://")
	q := url.Values{"api-version": {"1.1"}, "authorization_endpoint": {"https://" + host + "/" + tenantID + "/oauth2/v2.0/authorize"}}
	resp, err := f.srv.Client().Get(f.srv.URL + "/common/discovery/instance?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		TenantDiscoveryEndpoint string `json:"tenant_discovery_endpoint"`
		APIVersion              string `json:"api-version"`
		Metadata                []struct {
			PreferredNetwork string   `json:"preferred_network"`
			PreferredCache   string   `json:"preferred_cache"`
			Aliases          []string `json:"aliases"`
		} `json:"metadata"`
	}
	json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if doc.TenantDiscoveryEndpoint != "https://"+host+"/"+tenantID+"/v2.0/.well-known/openid-configuration" || doc.APIVersion != "1.1" ||
		len(doc.Metadata) != 1 || doc.Metadata[0].PreferredNetwork != host || len(doc.Metadata[0].Aliases) != 1 {
		t.Errorf("instance discovery: %+v", doc)
	}
	q.Set("authorization_endpoint", "https://login.evil.example/"+tenantID+"/oauth2/v2.0/authorize")
	resp, err = f.srv.Client().Get(f.srv.URL + "/common/discovery/instance?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	var e map[string]any
	json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != 400 || e["error"] != "invalid_instance" {
		t.Errorf("foreign host: %d %v", resp.StatusCode, e)
	}
}

func TestTokenLifetimeOption(t *testing.T) {
	f := newFixture(t)
	short := httptest.NewTLSServer(entra.New(f.store, f.verifier, f.signer, entra.WithTokenLifetime(10*time.Minute)).Handler())
	defer short.Close()
	f.srv = short
	resp, body := f.post(t, "/"+tenantID+"/oauth2/v2.0/token", ccForm(), nil)
	if resp.StatusCode != 200 || body["expires_in"] != float64(599) {
		t.Errorf("status %d expires_in %v, want 599", resp.StatusCode, body["expires_in"])
	}
}

func TestPasswordGrant(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	user, err := f.store.GetUserByUPN(ctx, tenantID, "ada@contoso.example")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("public client, named scope, v2", func(t *testing.T) {
		resp, body := f.post(t, "/"+tenantID+"/oauth2/v2.0/token", ropcForm("username", "ADA@Contoso.Example"), nil)
		if resp.StatusCode != 200 || body["scope"] != "api://payments/Payments.Submit" {
			t.Fatalf("status %d body %v", resp.StatusCode, body)
		}
		_, c := claimsOf(t, f, body["access_token"].(string))
		want := map[string]any{"aud": apiAppID, "azp": clientID, "azpacr": "0", "oid": user.ObjectID, "name": "Ada Lovelace",
			"preferred_username": "ada@contoso.example", "scp": "Payments.Submit", "tid": tenantID, "ver": "2.0"}
		for k, v := range want {
			if c[k] != v {
				t.Errorf("%s = %v, want %v", k, c[k], v)
			}
		}
		if sub, _ := c["sub"].(string); sub == "" || sub == user.ObjectID {
			t.Errorf("sub %q: want a pairwise subject, not the object id", sub)
		}
		if c["roles"] != nil || c["idtyp"] != nil {
			t.Errorf("roles %v idtyp %v on a user token", c["roles"], c["idtyp"])
		}
	})

	t.Run("confidential client, .default, v2", func(t *testing.T) {
		resp, body := f.post(t, "/"+tenantID+"/oauth2/v2.0/token", ropcForm("scope", "api://payments/.default", "client_secret", secret), nil)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d body %v", resp.StatusCode, body)
		}
		_, c := claimsOf(t, f, body["access_token"].(string))
		if c["azpacr"] != "1" || c["scp"] != "Payments.Submit Payments.View" {
			t.Errorf("azpacr %v scp %v, want 1 and every published scope", c["azpacr"], c["scp"])
		}
	})

	t.Run("v1 endpoint with resource", func(t *testing.T) {
		resp, body := f.post(t, "/"+tenantID+"/oauth2/token", ropcForm("scope", "", "resource", "api://payments"), nil)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d body %v", resp.StatusCode, body)
		}
		_, c := claimsOf(t, f, body["access_token"].(string))
		if c["scp"] != "Payments.Submit Payments.View" || c["ver"] != "2.0" {
			t.Errorf("scp %v ver %v: want every scope, in the resource's token version", c["scp"], c["ver"])
		}
	})

	t.Run("v1 token: upn, unique_name, amr", func(t *testing.T) {
		resp, body := f.post(t, "/"+tenantID+"/oauth2/v2.0/token", ropcForm("scope", "https://legacy.contoso.example/.default"), nil)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d body %v", resp.StatusCode, body)
		}
		_, c := claimsOf(t, f, body["access_token"].(string))
		want := map[string]any{"aud": "https://legacy.contoso.example", "appid": clientID, "appidacr": "0", "upn": "ada@contoso.example",
			"unique_name": "ada@contoso.example", "scp": "Legacy.Use", "oid": user.ObjectID, "ver": "1.0"}
		for k, v := range want {
			if c[k] != v {
				t.Errorf("%s = %v, want %v", k, c[k], v)
			}
		}
		if amr, _ := c["amr"].([]any); len(amr) != 1 || amr[0] != "pwd" {
			t.Errorf("amr %v, want [pwd]", c["amr"])
		}
		if c["idtyp"] != nil || c["idp"] != nil {
			t.Errorf("idtyp %v idp %v on a home-tenant user token", c["idtyp"], c["idp"])
		}
	})
}

func TestCertificateAssertion(t *testing.T) {
	f := newFixture(t)
	path := "/" + tenantID + "/oauth2/v2.0/token"
	for name, assertion := range map[string]string{
		"x5t#S256": testCert.assertion(t, f.srv.URL+path, nil),
		"x5t": testCert.assertion(t, f.srv.URL+path, nil, "x5t", func() string {
			s := sha1.Sum(testCert.cert.Raw)
			return base64.RawURLEncoding.EncodeToString(s[:])
		}()),
	} {
		t.Run(name, func(t *testing.T) {
			resp, body := f.post(t, path, ccForm("client_secret", "", "client_assertion", assertion, "client_assertion_type", jwtBearer), nil)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d body %v", resp.StatusCode, body)
			}
			_, c := claimsOf(t, f, body["access_token"].(string))
			if c["azp"] != clientID || c["azpacr"] != "2" {
				t.Errorf("azp %v azpacr %v, want the worker with acr 2", c["azp"], c["azpacr"])
			}
			if f.verifier.creds != nil {
				t.Error("a certificate assertion reached the federation verifier")
			}
		})
	}
}
