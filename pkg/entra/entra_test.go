package entra_test

// This file holds the fixture the endpoint's tests share: a seeded SQLite
// directory, a real signer and a stand-in federation verifier. The tests sit
// in files named for the step they test.

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
	// publicClientID is an application allowed public-client flows.
	publicClientID = "4c7a2e3b-9d10-4f8a-a2e0-6b3d8c0a1f45"
	miClient       = "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"
	secret         = "a-test-client-secret-of-enough-length"
	password       = "correct horse battery staple"
)

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
          - {name: spiffe-worker, issuer: "ISSUER", subject: "spiffe://example.org/worker"}
        roleAssignments:
          - {resource: api://payments, role: Payments.Read}
          - {resource: legacy-api, role: Legacy.Read}
      - name: desktop
        appId: ` + publicClientID + `
        isFallbackPublicClient: true
        clientSecretFiles: [SECRETFILE]
      - name: no-credentials
        appId: 7e9c4a5d-bf71-4cad-84a2-8b5fad2c3e67
        clientSecretFiles: [SECRETFILE]
      - name: offline-issuer
        appId: 8f0d5b6e-c082-4dbe-95b3-9c6a0e3d4f78
        federatedCredentials:
          - {name: gone, issuer: "https://127.0.0.1:9", subject: "spiffe://example.org/worker"}
    users:
      - {userPrincipalName: Ada@contoso.example, displayName: Ada Lovelace, passwordFile: PASSWORDFILE}
    managedIdentities:
      - name: batch
        subscriptionId: 0d5c3e1f-7a2b-4c9d-8e6f-1a2b3c4d5e6f
        resourceGroup: rg
        clientId: ` + miClient + `
        federatedCredentials:
          - {name: k8s, issuer: "ISSUER", subject: "system:serviceaccount:batch:runner"}
`

// fakeVerifier stands in for the federation verifier, whose rules have
// their own suite: it accepts exactly the assertion "good".
type fakeVerifier struct{ creds []store.FederatedCredential }

func (f *fakeVerifier) Verify(_ context.Context, assertion string, creds []store.FederatedCredential) (*federation.Match, error) {
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
	v := &fakeVerifier{}
	f := startFixture(t, v, "https://oidc.example.org")
	f.verifier = v
	return f
}

// startFixture serves the seed, whose federated credentials name issuer,
// with v checking federated assertions.
func startFixture(t *testing.T, v entra.AssertionVerifier, issuer string) *fixture {
	t.Helper()
	s, err := sqlstore.OpenSQLite(filepath.Join(t.TempDir(), "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return startFixtureOn(t, s, v, issuer)
}

// startFixtureOn is startFixture on the store s.
func startFixtureOn(t testing.TB, s store.Store, v entra.AssertionVerifier, issuer string) *fixture {
	t.Helper()
	dir := t.TempDir()
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
	f, err := seed.Parse([]byte(strings.NewReplacer("SECRETFILE", secretFile, "CERTFILE", certFile, "PASSWORDFILE", passwordFile, "ISSUER", issuer).Replace(seedYAML)))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := (&seed.Applier{Store: s, ParseExpression: func(string) error { return nil }}).Apply(ctx, f); err != nil {
		t.Fatal(err)
	}
	sg := signer.New(s)
	if err := sg.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(entra.New(s, v, sg).Handler())
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, store: s, signer: sg}
}

func (f *fixture) post(t testing.TB, path string, form url.Values, edit func(*http.Request)) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", f.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	if edit != nil {
		edit(req)
	}
	return do(t, f.srv.Client(), req)
}

// do sends req and decodes the JSON answer.
func do(t testing.TB, c *http.Client, req *http.Request) (*http.Response, map[string]any) {
	t.Helper()
	resp, err := c.Do(req)
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
	v := url.Values{"grant_type": {"password"}, "client_id": {publicClientID}, "scope": {"api://payments/Payments.Submit openid profile offline_access"},
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
