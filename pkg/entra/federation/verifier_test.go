package federation_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store/sqlstore"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/aadsts"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/federation"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/issuermeta"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/signer"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/oidcissuer"
)

const (
	workload = "spiffe://example.org/ns/payments/sa/worker"
	audience = "api://AzureADTokenExchange"
)

var now = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// world is an issuer, an attacker's issuer, credentials naming the first,
// and a token endpoint where an app holds those credentials.
type world struct {
	is, attacker *oidcissuer.Issuer
	creds        []store.FederatedCredential
	verifier     *federation.Verifier
}

const (
	tenant   = "6f0c2a4e-1b7d-4c55-9f3e-2d8a1b7c9e10"
	withFICs = "5d8b3f4c-ae60-4b9c-b3f1-7a4e9c1b2d56"
	withNone = "7e9c4a5d-bf71-4cad-84a2-8b5fad2c3e67"
	resource = "api://payments"
)

// endpoint serves the Entra token endpoint over w's verifier, with the app
// withFICs holding w.creds and the app withNone holding none.
func (w *world) endpoint(t *testing.T) *httptest.Server {
	t.Helper()
	s, err := sqlstore.OpenSQLite(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.CreateTenant(ctx, store.Tenant{ID: tenant, DisplayName: "Contoso"}))
	for i, app := range []store.Application{
		{ObjectID: "a-res", TenantID: tenant, AppID: "3b6f1d2a-8c4e-4f7a-b1d9-5e2c7a9f0b34", IdentifierURIs: []string{resource}},
		{ObjectID: "a-fics", TenantID: tenant, AppID: withFICs},
		{ObjectID: "a-none", TenantID: tenant, AppID: withNone},
	} {
		must(s.CreateApplication(ctx, app, nil, nil))
		must(s.CreateServicePrincipal(ctx, store.ServicePrincipal{ObjectID: fmt.Sprint("sp-", i), TenantID: tenant, AppID: app.AppID}))
	}
	for _, c := range w.creds {
		c.OwnerID = "a-fics"
		must(s.CreateFederatedCredential(ctx, c))
	}
	sg := signer.New(s)
	must(sg.Refresh(ctx))
	srv := httptest.NewTLSServer(entra.New(s, w.verifier, sg).Handler())
	t.Cleanup(srv.Close)
	return srv
}

// exchange presents assertion for client at srv and returns the status and
// the decoded body.
func exchange(t *testing.T, srv *httptest.Server, client, assertion string) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {client}, "scope": {resource + "/.default"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion}}
	resp, err := srv.Client().PostForm(srv.URL+"/"+tenant+"/oauth2/v2.0/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func newWorld(t testing.TB, opts ...federation.Option) *world {
	is, attacker := oidcissuer.New(t), oidcissuer.New(t)
	cache := issuermeta.New(issuermeta.WithRootCAs(oidcissuer.Pool(is, attacker)), issuermeta.WithClock(func() time.Time { return now }), issuermeta.WithAllowedNetworks(issuermeta.Loopback...))
	return &world{
		is: is, attacker: attacker,
		creds: []store.FederatedCredential{
			{ID: "1", Name: "other-subject", Issuer: is.URL, Subject: "spiffe://example.org/other", Audiences: []string{audience}},
			{ID: "2", Name: "worker", Issuer: is.URL, Subject: workload, Audiences: []string{audience}},
			{ID: "3", Name: "github", Issuer: is.URL, ClaimsMatchingExpression: "claims['sub'] matches 'repo:contoso/*:ref:refs/heads/*' and claims['repository_owner'] eq 'contoso'", Audiences: []string{"api://github"}},
		},
		verifier: federation.NewVerifier(cache, append([]federation.Option{federation.WithClock(func() time.Time { return now })}, opts...)...),
	}
}

func claims(iss string, edits ...func(map[string]any)) map[string]any {
	c := map[string]any{"iss": iss, "sub": workload, "aud": []string{audience}, "iat": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix()}
	for _, e := range edits {
		e(c)
	}
	return c
}

func set(k string, v any) func(map[string]any) { return func(c map[string]any) { c[k] = v } }
func del(k string) func(map[string]any)        { return func(c map[string]any) { delete(c, k) } }

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// TestVerify runs each assertion through the token endpoint and checks the
// status, error and AADSTS code Entra answers with.
func TestVerify(t *testing.T) {
	w := newWorld(t)
	srv := w.endpoint(t)
	is := w.is
	rs := func(edits ...func(map[string]any)) string {
		return oidcissuer.Sign(t, jose.RS256, is.RSA, map[jose.HeaderKey]any{"kid": is.RSAKID}, claims(is.URL, edits...))
	}
	withKey := func(alg jose.SignatureAlgorithm, key any, kid string, edits ...func(map[string]any)) string {
		h := map[jose.HeaderKey]any{}
		if kid != "" {
			h["kid"] = kid
		}
		return oidcissuer.Sign(t, alg, key, h, claims(is.URL, edits...))
	}
	otherRSA := w.attacker.RSA
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	is.Publish(jose.JSONWebKey{Key: &small.PublicKey, KeyID: "rsa-1024", Use: "sig"})
	otherEC, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	pubDER, _ := x509.MarshalPKIXPublicKey(&is.RSA.PublicKey)
	valid := rs()
	parts := strings.Split(valid, ".")
	jwkHeader := oidcissuer.Sign(t, jose.RS256, otherRSA, map[jose.HeaderKey]any{"kid": "attacker", "jwk": map[string]any{"kty": "RSA", "kid": "attacker",
		"n": base64.RawURLEncoding.EncodeToString(otherRSA.N.Bytes()), "e": "AQAB"}}, claims(is.URL))

	for _, tc := range []struct {
		name   string
		token  string
		creds  []store.FederatedCredential // non-nil: present for an app with no credentials
		code   int                         // 0: accepted
		says   string
		credID string // for reading; the endpoint does not say which credential matched
	}{
		{name: "valid RS256 JWT-SVID", token: valid, credID: "2"},
		{name: "aud as a string", token: rs(set("aud", audience)), credID: "2"},
		{name: "aud array with the audience second", token: rs(set("aud", []string{"api://x", audience})), credID: "2"},
		{name: "no nbf is fine", token: rs(del("nbf")), credID: "2"},
		{name: "expired within the clock skew", token: rs(set("exp", now.Add(-4*time.Minute).Unix())), credID: "2"},
		{name: "nbf within the clock skew", token: rs(set("nbf", now.Add(4*time.Minute).Unix())), credID: "2"},
		{name: "lifetime exactly 25 hours", token: rs(set("iat", now.Add(-time.Hour).Unix()), set("exp", now.Add(24*time.Hour).Unix())), credID: "2"},
		{name: "extra claims ignored", token: rs(set("jti", "x"), set("custom", map[string]any{"a": 1})), credID: "2"},
		{name: "second credential of the issuer matches", token: rs(set("sub", "spiffe://example.org/other")), credID: "1"},

		{name: "no credentials at all", token: valid, creds: []store.FederatedCredential{}, code: 70025, says: "Client application has no configured federated identity credentials."},
		{name: "unknown issuer", token: oidcissuer.Sign(t, jose.RS256, otherRSA, map[jose.HeaderKey]any{"kid": "x"}, claims(w.attacker.URL)), code: 700211, says: "presented assertion issuer '" + w.attacker.URL + "'"},
		{name: "issuer with a trailing slash", token: rs(set("iss", is.URL+"/")), code: 700211, says: "issuer '" + is.URL + "/'"},
		{name: "issuer differing in case", token: rs(set("iss", strings.ToUpper(is.URL))), code: 700211},
		// A client assertion without iss or aud: captured 2023-12 in MSAL.NET's
		// test fixtures (MockHelpers.BadCredNoIssError90014, BadCredNoAudError90014).
		{name: "no iss", token: rs(del("iss")), code: 90014, says: "The required field 'iss' is missing from the credential. Ensure that you have all the necessary parameters for the login request."},
		{name: "empty iss", token: rs(set("iss", "")), code: 90014, says: "'iss'"},
		{name: "issuer with whitespace", token: rs(set("iss", " "+is.URL)), code: 700211},
		{name: "audience mismatch", token: rs(set("aud", []string{"api://other"})), code: 700212, says: "presented assertion audience 'api://other'"},
		{name: "audience mismatch as string", token: rs(set("aud", "api://other")), code: 700212},
		{name: "no aud", token: rs(del("aud")), code: 90014, says: "The required field 'aud' is missing from the credential."},
		{name: "empty aud list", token: rs(set("aud", []string{})), code: 90014, says: "'aud'"},
		{name: "audience differing in case", token: rs(set("aud", strings.ToUpper(audience))), code: 700212},
		{name: "subject mismatch", token: rs(set("sub", "spiffe://example.org/ns/x/sa/y")), code: 700213, says: "presented assertion subject 'spiffe://example.org/ns/x/sa/y'. Check your federated identity credential"},
		{name: "subject differing only in case", token: rs(set("sub", strings.ToUpper(workload))), code: 7002138, says: "case-insensitive comparison, but not with case-sensitive"},
		{name: "no sub", token: rs(del("sub")), code: 700213},
		{name: "subject with trailing slash", token: rs(set("sub", workload+"/")), code: 700213},
		{name: "Entra-issued v2 token", token: rs(set("iss", "https://login.microsoftonline.com/tid/v2.0")), code: 700222, says: "AAD-issued tokens may not be used"},
		{name: "Entra-issued v1 token", token: rs(set("iss", "https://sts.windows.net/tid/")), code: 700222},
		{name: "Entra regional host", token: rs(set("iss", "https://westus.login.microsoft.com/tid/v2.0")), code: 700222},

		{name: "alg none", token: b64(`{"alg":"none","kid":"rsa-1"}`) + "." + parts[1] + ".", code: 5002738, says: "'none' is not a supported signature algorithm"},
		{name: "HS256 with the issuer's public key as secret", token: withKey(jose.HS256, pubDER, is.RSAKID), code: 5002738, says: "'HS256'"},
		{name: "HS384", token: withKey(jose.HS384, make([]byte, 48), is.RSAKID), code: 5002738},
		{name: "HS512", token: withKey(jose.HS512, make([]byte, 64), is.RSAKID), code: 5002738},
		{name: "ES256 under Entra fidelity", token: withKey(jose.ES256, is.EC, is.ECKID), code: 5002738, says: "'ES256' is not a supported signature algorithm"},
		{name: "ES384", token: withKey(jose.ES384, otherEC, "x"), code: 5002738},
		{name: "PS256", token: withKey(jose.PS256, is.RSA, is.RSAKID), code: 5002738},
		{name: "RS512", token: withKey(jose.RS512, is.RSA, is.RSAKID), code: 5002738},
		{name: "unknown alg", token: b64(`{"alg":"XY999","kid":"rsa-1"}`) + "." + parts[1] + "." + parts[2], code: 5002738},
		{name: "no alg", token: b64(`{"kid":"rsa-1"}`) + "." + parts[1] + "." + parts[2], code: 5002738},
		{name: "JWE shape", token: "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d", code: 50027, says: "JWT token is invalid or malformed."},
		{name: "two parts", token: parts[0] + "." + parts[1], code: 50027},
		{name: "garbage", token: "not a token", code: 50027},
		{name: "empty assertion is no credential", token: "", code: 7000216, says: "'client_assertion', 'client_secret' or 'request' is required"},
		{name: "header not base64", token: "%%%." + parts[1] + "." + parts[2], code: 50027},
		{name: "header not JSON", token: b64("alg") + "." + parts[1] + "." + parts[2], code: 50027},
		{name: "payload not JSON", token: parts[0] + "." + b64("{") + "." + parts[2], code: 50027},
		{name: "payload not base64", token: parts[0] + ".***." + parts[2], code: 50027},
		{name: "JSON serialization", token: `{"payload":"` + parts[1] + `","signatures":[]}`, code: 50027},
		{name: "oversized", token: rs(set("pad", strings.Repeat("x", 17<<10))), code: 50027, says: "larger than 16384 bytes"},
		{name: "crit header", token: withKeyHeaders(t, is.URL, is, map[jose.HeaderKey]any{"kid": is.RSAKID, "crit": []string{"exp"}}), code: 50027, says: "Critical header"},

		// typ: captured 2021-12 in a public Go client ("Microsoft error if not
		// using 'JWT'"); an absent typ, as Kubernetes service-account tokens
		// have, is accepted (AKS workload identity).
		{name: "typ at+jwt", token: withKeyHeaders(t, is.URL, is, map[jose.HeaderKey]any{"kid": is.RSAKID, "typ": "at+jwt"}), code: 5002727,
			says: "Invalid JWT header type specified, must be 'JWT' or 'http://openid.net/specs/jwt/1.0'."},
		{name: "typ JOSE", token: withKeyHeaders(t, is.URL, is, map[jose.HeaderKey]any{"kid": is.RSAKID, "typ": "JOSE"}), code: 5002727},
		{name: "typ absent", token: withKeyHeaders(t, is.URL, is, map[jose.HeaderKey]any{"kid": is.RSAKID, "typ": ""}), credID: "2"},
		{name: "typ the OpenID URI", token: withKeyHeaders(t, is.URL, is, map[jose.HeaderKey]any{"kid": is.RSAKID, "typ": "http://openid.net/specs/jwt/1.0"}), credID: "2"},
		{name: "no kid", token: withKey(jose.RS256, is.RSA, ""), code: 7000272, says: "could not be found in the metadata of identity provider " + is.URL},
		{name: "unknown kid", token: withKey(jose.RS256, is.RSA, "rotated-away"), code: 7000272, says: "identifier rotated-away"},
		{name: "known kid, another key's signature", token: withKey(jose.RS256, otherRSA, is.RSAKID), code: 700027, says: "Client assertion failed signature validation."},
		{name: "RS256 kid naming the EC key", token: withKey(jose.RS256, is.RSA, is.ECKID), code: 5002730, says: "Unsupported key for the signing algorithm"},
		{name: "RSA-1024 key", token: withKey(jose.RS256, small, "rsa-1024"), code: 5002730},
		{name: "payload swapped after signing", token: parts[0] + "." + strings.Split(rs(set("sub", "spiffe://example.org/other")), ".")[1] + "." + parts[2], code: 700027},
		{name: "embedded jwk header is not trusted", token: jwkHeader, code: 7000272, says: "identifier attacker"},
		{name: "jku header is not followed", token: withKeyHeaders(t, is.URL, w.attacker, map[jose.HeaderKey]any{"kid": "rsa-1", "jku": w.attacker.URL + "/keys"}), code: 700027},
		{name: "x5u header is not followed", token: withKeyHeaders(t, is.URL, w.attacker, map[jose.HeaderKey]any{"kid": "rsa-1", "x5u": w.attacker.URL + "/cert"}), code: 700027},

		{name: "expired", token: rs(set("iat", now.Add(-2*time.Hour).Unix()), set("nbf", now.Add(-2*time.Hour).Unix()), set("exp", now.Add(-time.Hour).Unix())), code: 700024,
			says: "Current time: 2026-11-24T12:00:00.0000000Z, assertion valid from 2026-11-24T10:00:00.0000000Z, expiry time of assertion 2026-11-24T11:00:00.0000000Z."},
		{name: "expired without nbf shows 1970", token: rs(set("exp", now.Add(-time.Hour).Unix())), code: 700024, says: "valid from 1970-01-01T00:00:00.0000000Z"},
		{name: "not yet valid", token: rs(set("nbf", now.Add(10*time.Minute).Unix())), code: 700024},
		// A missing exp shows as 1970, as in a 2023-12 capture kept in MSAL.NET's
		// test fixtures (MockHelpers.BadTimeRangeError700024).
		{name: "no exp", token: rs(del("exp")), code: 700024, says: "expiry time of assertion 1970-01-01T00:00:00.0000000Z"},
		{name: "lifetime over 25 hours", token: rs(set("iat", now.Add(-time.Hour).Unix()), set("exp", now.Add(24*time.Hour+time.Second).Unix())), code: 70023,
			says: fmt.Sprintf("lifetime of less than or equal to 1.01:00:00. Token issued at %d. Token expires on %d.", now.Add(-time.Hour).Unix(), now.Add(24*time.Hour+time.Second).Unix())},
		// No capture of a token without iat is public; Entra counts the
		// lifetime from iat and so reports it issued at 0.
		{name: "no iat", token: rs(del("iat")), code: 70023, says: fmt.Sprintf("Token issued at 0. Token expires on %d.", now.Add(time.Hour).Unix())},
		{name: "lifetime over 25 hours from nbf", token: rs(del("iat"), set("nbf", now.Add(-time.Hour).Unix()), set("exp", now.Add(25*time.Hour).Unix())), code: 70023},

		{name: "expression credential ignored for an issuer Entra refuses it for", token: rs(set("aud", "api://github"), set("sub", "repo:contoso/app:ref:refs/heads/main"), set("repository_owner", "contoso")), code: 700213},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := withFICs
			if tc.creds != nil {
				client = withNone
			}
			status, body := exchange(t, srv, client, tc.token)
			if tc.code == 0 {
				if status != 200 || body["access_token"] == nil {
					t.Fatalf("refused: %d %v", status, body)
				}
				return
			}
			want := aadsts.New(tc.code, "")
			codes, _ := body["error_codes"].([]any)
			desc, _ := body["error_description"].(string)
			if status != want.Status || body["error"] != want.OAuth || len(codes) != 1 || codes[0] != float64(tc.code) ||
				!strings.HasPrefix(desc, fmt.Sprintf("AADSTS%d: ", tc.code)) || !strings.Contains(desc, tc.says) {
				t.Fatalf("got %d %v\nwant %d %s AADSTS%d saying %q", status, body, want.Status, want.OAuth, tc.code, tc.says)
			}
		})
	}
	if n := w.attacker.DiscoveryHits.Load() + w.attacker.JWKSHits.Load(); n != 0 {
		t.Errorf("the attacker's issuer was fetched %d times; only stored issuers may be fetched", n)
	}
}

// withKeyHeaders signs a token for issuer with signer's key and headers h.
func withKeyHeaders(t *testing.T, issuer string, signer *oidcissuer.Issuer, h map[jose.HeaderKey]any) string {
	return oidcissuer.Sign(t, jose.RS256, signer.RSA, h, claims(issuer))
}

func TestVerifyOptions(t *testing.T) {
	t.Run("ES256 accepted when allowed", func(t *testing.T) {
		w := newWorld(t, federation.WithAlgorithms(jose.RS256, jose.ES256))
		tok := oidcissuer.Sign(t, jose.ES256, w.is.EC, map[jose.HeaderKey]any{"kid": w.is.ECKID}, claims(w.is.URL))
		if _, aerr := w.verifier.Verify(context.Background(), tok, w.creds); aerr != nil {
			t.Fatal(aerr)
		}
	})
	t.Run("HMAC never allowed", func(t *testing.T) {
		w := newWorld(t, federation.WithAlgorithms(jose.RS256, jose.HS256))
		tok := oidcissuer.Sign(t, jose.HS256, make([]byte, 32), map[jose.HeaderKey]any{"kid": w.is.RSAKID}, claims(w.is.URL))
		if aerr := refusal(w.verifier.Verify(context.Background(), tok, w.creds)); aerr == nil || aerr.Code != 5002738 {
			t.Fatalf("HS256 got %v", aerr)
		}
	})
	t.Run("expressions for any issuer", func(t *testing.T) {
		w := newWorld(t, federation.WithAnyIssuerExpressions(true))
		gh := func(sub, owner string) string {
			return oidcissuer.Sign(t, jose.RS256, w.is.RSA, map[jose.HeaderKey]any{"kid": w.is.RSAKID},
				claims(w.is.URL, set("aud", "api://github"), set("sub", sub), set("repository_owner", owner)))
		}
		m, aerr := w.verifier.Verify(context.Background(), gh("repo:contoso/app:ref:refs/heads/main", "contoso"), w.creds)
		if aerr != nil || m.Credential.ID != "3" {
			t.Fatalf("GitHub-shaped token: %v %+v", aerr, m)
		}
		for _, bad := range [][2]string{{"repo:contoso/app:pull_request", "contoso"}, {"repo:contoso/app:ref:refs/heads/main", "fabrikam"}} {
			if aerr := refusal(w.verifier.Verify(context.Background(), gh(bad[0], bad[1]), w.creds)); aerr == nil || aerr.Code != 7002131 ||
				!strings.Contains(aerr.Error(), "no federated identity credential expression matched") {
				t.Errorf("%v: got %v, want AADSTS7002131", bad, aerr)
			}
		}
		tok := oidcissuer.Sign(t, jose.RS256, w.is.RSA, map[jose.HeaderKey]any{"kid": w.is.RSAKID},
			claims(w.is.URL, set("aud", "api://github"), set("sub", "repo:contoso/app:ref:refs/heads/main"), set("repository_owner", 42)))
		if aerr := refusal(w.verifier.Verify(context.Background(), tok, w.creds)); aerr == nil || aerr.Code != 7002131 {
			t.Errorf("a non-string claim matched: %v", aerr)
		}
	})
	t.Run("Kubernetes service-account token for a managed identity", func(t *testing.T) {
		w := newWorld(t)
		mi := []store.FederatedCredential{{ID: "mi", Issuer: w.is.URL, Subject: "system:serviceaccount:batch:runner", Audiences: []string{audience}}}
		tok := oidcissuer.Sign(t, jose.RS256, w.is.RSA, map[jose.HeaderKey]any{"kid": w.is.RSAKID}, claims(w.is.URL,
			set("sub", "system:serviceaccount:batch:runner"), set("kubernetes.io", map[string]any{"namespace": "batch", "serviceaccount": map[string]any{"name": "runner"}})))
		if m, aerr := w.verifier.Verify(context.Background(), tok, mi); aerr != nil || m.Claims["kubernetes.io"] == nil {
			t.Fatalf("%v %+v", aerr, m)
		}
	})
}

func TestVerifyIssuerFailures(t *testing.T) {
	t.Run("issuer down", func(t *testing.T) {
		w := newWorld(t)
		tok := oidcissuer.Sign(t, jose.RS256, w.is.RSA, map[jose.HeaderKey]any{"kid": w.is.RSAKID}, claims(w.is.URL))
		w.is.Close()
		if aerr := refusal(w.verifier.Verify(context.Background(), tok, w.creds)); aerr == nil || aerr.Code != 90061 || aerr.Status != http.StatusBadRequest {
			t.Fatalf("got %v, want AADSTS90061", aerr)
		}
	})
	t.Run("discovery names another issuer", func(t *testing.T) {
		w := newWorld(t)
		w.is.ClaimIssuer(w.is.URL + "/")
		tok := oidcissuer.Sign(t, jose.RS256, w.is.RSA, map[jose.HeaderKey]any{"kid": w.is.RSAKID}, claims(w.is.URL))
		if aerr := refusal(w.verifier.Verify(context.Background(), tok, w.creds)); aerr == nil || aerr.Code != 90061 {
			t.Fatalf("got %v, want AADSTS90061", aerr)
		}
	})
	t.Run("rotated key found after one refresh", func(t *testing.T) {
		w := newWorld(t)
		first := oidcissuer.Sign(t, jose.RS256, w.is.RSA, map[jose.HeaderKey]any{"kid": w.is.RSAKID}, claims(w.is.URL))
		if _, aerr := w.verifier.Verify(context.Background(), first, w.creds); aerr != nil {
			t.Fatal(aerr)
		}
		next := w.attacker.RSA // any new key
		w.is.Publish(jose.JSONWebKey{Key: &next.PublicKey, KeyID: "rsa-2", Use: "sig", Algorithm: "RS256"})
		tok := oidcissuer.Sign(t, jose.RS256, next, map[jose.HeaderKey]any{"kid": "rsa-2"}, claims(w.is.URL))
		if _, aerr := w.verifier.Verify(context.Background(), tok, w.creds); aerr != nil {
			t.Fatalf("rotated key: %v", aerr)
		}
		if d, j := w.is.DiscoveryHits.Load(), w.is.JWKSHits.Load(); d != 2 || j != 2 {
			t.Errorf("discovery %d, JWKS %d fetches; want one initial fetch and one refresh", d, j)
		}
	})
}

// refusal is Verify's error as the Entra error every refusal must be; nil
// when Verify accepted.
func refusal(_ *federation.Match, err error) *aadsts.Error {
	var aerr *aadsts.Error
	if err != nil && !errors.As(err, &aerr) {
		panic("Verify returned an error that is not an Entra error: " + err.Error())
	}
	return aerr
}
