package entra_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"sigs.k8s.io/yaml"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/federation"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/issuermeta"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/oidcissuer"
)

// entraCase is one row of testdata/cases.yaml: a request to the token
// endpoint (or discovery), what Entra answers it with, and where that
// answer was seen.
type entraCase struct {
	Name string `json:"name"`
	// Source is where Entra's answer was seen: a captured response in a
	// public issue, Entra's documentation, or an SDK's fixture.
	Source string `json:"source"`
	// Note records a disagreement between sources and which one won.
	Note string `json:"note"`

	Method string `json:"method"` // default POST
	Path   string `json:"path"`   // default /$TENANT/oauth2/v2.0/token
	// Form edits the default request (client credentials with a federated
	// JWT-SVID); a null value removes the field.
	Form map[string]*string `json:"form"`
	// Basic sends client_id and client_secret in an Authorization header.
	Basic bool `json:"basic"`

	// Claims and Header edit the default JWT-SVID; a null removes the
	// claim or header, "now+1h" and "now-90s" are times relative to now.
	Claims map[string]any `json:"claims"`
	Header map[string]any `json:"header"`
	Alg    string         `json:"alg"` // default RS256
	// Key signs the assertion: rsa (default, published as rsa-1), ec
	// (published as ec-1), rsa1024 (published as rsa-1024) or stranger
	// (published nowhere).
	Key string `json:"key"`
	// Assertion replaces the JWT-SVID outright.
	Assertion *string `json:"assertion"`
	// Certificate replaces it with the client's own assertion signed by a
	// certificate (ClientCertificateCredential), claims edited by Claims:
	// registered (named by x5t#S256), registered-x5t (by its SHA-1 x5t),
	// registered-unnamed (no thumbprint, no kid) or stranger (not
	// registered).
	Certificate string `json:"certificate"`

	Want struct {
		Status int    `json:"status"`
		Error  string `json:"error"`
		Code   int    `json:"code"`
		Says   string `json:"says"` // a part of error_description
		// ErrorURI, when set, says whether error_uri is present.
		ErrorURI *bool `json:"error_uri"`
		// Claims are values the issued token must carry; a null claim
		// must be absent.
		Claims map[string]any `json:"claims"`
		// Body are values the success response must carry.
		Body map[string]any `json:"body"`
	} `json:"want"`
}

// caseNoSP is an application without a service principal, caseNoFICs one
// without federated credentials, which also holds caseExpiredSecret.
const (
	caseNoSP          = "6e9d4b5c-0f1a-4b2c-8d3e-4f5a6b7c8d9e"
	caseNoFICs        = "7e9c4a5d-bf71-4cad-84a2-8b5fad2c3e67"
	caseExpiredSecret = "a-secret-that-expired-yesterday-0123456789"
)

// TestEntraCases drives every row of testdata/cases.yaml through the real
// token endpoint, the real federation verifier and a real issuer.
func TestEntraCases(t *testing.T) {
	raw, err := os.ReadFile("testdata/cases.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cases []entraCase
	if err := yaml.UnmarshalStrict(raw, &cases); err != nil {
		t.Fatal(err)
	}
	is := oidcissuer.New(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	is.Publish(jose.JSONWebKey{Key: &small.PublicKey, KeyID: "rsa-1024", Use: "sig"})
	stranger, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]struct {
		key any
		kid string
	}{"rsa": {is.RSA, is.RSAKID}, "ec": {is.EC, is.ECKID}, "rsa1024": {small, "rsa-1024"}, "stranger": {stranger, is.RSAKID}}
	srv := caseServer(t, is)
	vars := strings.NewReplacer("$TENANT", tenantID, "$CLIENT", clientID, "$SECRET", secret, "$ISSUER", is.URL, "$NO_SP", caseNoSP,
		"$MI", miClient, "$NO_FICS", caseNoFICs, "$EXPIRED", caseExpiredSecret, "$API", apiAppID, "$BASE", srv.URL, "$UPPER_ISSUER", strings.ToUpper(is.URL))
	names := map[string]bool{}
	for _, tc := range cases {
		if tc.Name == "" || tc.Source == "" || names[tc.Name] {
			t.Fatalf("case %q: every case needs a unique name and a source", tc.Name)
		}
		names[tc.Name] = true
		t.Run(tc.Name, func(t *testing.T) {
			claims := map[string]any{"iss": is.URL, "sub": "spiffe://example.org/worker", "aud": []string{"api://AzureADTokenExchange"},
				"iat": time.Now().Add(-time.Minute).Unix(), "exp": time.Now().Add(5 * time.Minute).Unix()}
			edit(t, claims, tc.Claims, vars)
			k, ok := keys[map[bool]string{true: "rsa", false: tc.Key}[tc.Key == ""]]
			if !ok {
				t.Fatalf("key %q", tc.Key)
			}
			header := map[string]any{"kid": k.kid}
			edit(t, header, tc.Header, vars)
			hk := map[jose.HeaderKey]any{}
			for n, v := range header {
				hk[jose.HeaderKey(n)] = v
			}
			if _, ok := tc.Header["typ"]; ok && header["typ"] == nil {
				hk["typ"] = "" // removed: oidcissuer.Sign leaves it out
			}
			alg := jose.SignatureAlgorithm(map[bool]string{true: "RS256", false: tc.Alg}[tc.Alg == ""])
			assertion := oidcissuer.Sign(t, alg, k.key, hk, claims)
			if tc.Assertion != nil {
				assertion = *tc.Assertion
			}
			if tc.Certificate != "" {
				assertion = certificateCase(t, tc, srv.URL, vars)
			}
			form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "scope": {"api://payments/.default"},
				"client_assertion_type": {jwtBearer}, "client_assertion": {assertion}}
			for n, v := range tc.Form {
				if v == nil {
					form.Del(n)
				} else {
					form.Set(n, vars.Replace(*v))
				}
			}
			method, path := tc.Method, vars.Replace(tc.Path)
			if method == "" {
				method = http.MethodPost
			}
			if path == "" {
				path = "/" + tenantID + "/oauth2/v2.0/token"
			}
			req, _ := http.NewRequest(method, srv.URL+path, nil)
			if method == http.MethodPost {
				if tc.Basic {
					req.SetBasicAuth(form.Get("client_id"), form.Get("client_secret"))
					form.Del("client_id")
					form.Del("client_secret")
				}
				req.Body = io.NopCloser(strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			check(t, tc, srv.Client(), req, vars)
		})
	}
	t.Logf("%d cases", len(cases))
}

func check(t *testing.T, tc entraCase, c *http.Client, req *http.Request, vars *strings.Replacer) {
	t.Helper()
	resp, body := do(t, c, req)
	w := tc.Want
	if resp.StatusCode != w.Status {
		t.Fatalf("status %d, want %d: %v", resp.StatusCode, w.Status, body)
	}
	if w.Code != 0 {
		codes, _ := body["error_codes"].([]any)
		desc, _ := body["error_description"].(string)
		if body["error"] != w.Error || len(codes) != 1 || codes[0] != float64(w.Code) || !strings.HasPrefix(desc, fmt.Sprintf("AADSTS%d: ", w.Code)) || !strings.Contains(desc, vars.Replace(w.Says)) {
			t.Errorf("got %v %v %q\nwant %s AADSTS%d: %s", body["error"], body["error_codes"], desc, w.Error, w.Code, w.Says)
		}
		if _, has := body["error_uri"]; w.ErrorURI != nil && has != *w.ErrorURI {
			t.Errorf("error_uri present: %v, want %v", has, *w.ErrorURI)
		}
	}
	for k, v := range w.Body {
		if got, want := jsonOf(body[k]), vars.Replace(jsonOf(v)); got != want {
			t.Errorf("body %s = %s, want %s", k, got, want)
		}
	}
	if len(w.Claims) > 0 {
		tok, _ := body["access_token"].(string)
		parts := strings.Split(tok, ".")
		var claims map[string]any
		if len(parts) != 3 || json.Unmarshal(segment(parts[1]), &claims) != nil {
			t.Fatalf("no access token: %v", body)
		}
		for k, v := range w.Claims {
			got, has := claims[k]
			switch {
			case v == nil && has:
				t.Errorf("claim %s = %v, want none", k, got)
			case v != nil && jsonOf(got) != vars.Replace(jsonOf(v)):
				t.Errorf("claim %s = %v, want %v", k, got, v)
			}
		}
	}
}

// edit applies a case's edits to m: nil removes, "now±d" is a time.
func edit(t *testing.T, m, edits map[string]any, vars *strings.Replacer) {
	t.Helper()
	for k, v := range edits {
		switch s, _ := v.(string); {
		case v == nil:
			delete(m, k)
		case strings.HasPrefix(s, "now"):
			d, err := time.ParseDuration(strings.TrimPrefix(strings.TrimPrefix(s, "now"), "+"))
			if s == "now" {
				d, err = 0, nil
			}
			if err != nil {
				t.Fatalf("%s: %q: %v", k, s, err)
			}
			m[k] = time.Now().Add(d).Unix()
		case s != "":
			m[k] = vars.Replace(s)
		default:
			if list, ok := v.([]any); ok {
				for i, e := range list {
					if es, ok := e.(string); ok {
						list[i] = vars.Replace(es)
					}
				}
			}
			m[k] = v
		}
	}
}

// caseServer is the token endpoint over the test seed, its federated
// credentials naming is, with the real verifier trusting is, and an
// application without a service principal.
func caseServer(t *testing.T, is *oidcissuer.Issuer) *httptest.Server {
	t.Helper()
	f := startFixture(t, federation.NewVerifier(issuermeta.New(issuermeta.WithRootCAs(oidcissuer.Pool(is)), issuermeta.WithAllowedNetworks(issuermeta.Loopback...))), is.URL)
	ctx := context.Background()
	if err := f.store.CreateApplication(ctx, store.Application{ObjectID: "no-sp", TenantID: tenantID, AppID: caseNoSP}, nil, nil); err != nil {
		t.Fatal(err)
	}
	// The application without federated credentials also holds a secret
	// that expired yesterday: $EXPIRED.
	app, err := f.store.GetApplicationByAppID(ctx, tenantID, caseNoFICs)
	if err != nil {
		t.Fatal(err)
	}
	expired, err := directory.HashedSecret(app.ObjectID, "expired", caseExpiredSecret, time.Now().Add(-48*time.Hour), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.AddPasswordCredential(ctx, expired); err != nil {
		t.Fatal(err)
	}
	return f.srv
}

// certificateCase signs the client's own assertion for the token endpoint
// at base, as ClientCertificateCredential does.
func certificateCase(t *testing.T, tc entraCase, base string, vars *strings.Replacer) string {
	t.Helper()
	ck, header := testCert, []string{}
	switch tc.Certificate {
	case "registered":
	case "registered-x5t":
		sum := sha1.Sum(testCert.cert.Raw)
		header = []string{"x5t", base64.RawURLEncoding.EncodeToString(sum[:])}
	case "registered-unnamed":
		header = []string{"typ", "JWT"}
	case "stranger":
		ck = strangerCert
	default:
		t.Fatalf("certificate %q", tc.Certificate)
	}
	return ck.assertion(t, base+"/"+tenantID+"/oauth2/v2.0/token", func(c map[string]any) { edit(t, c, tc.Claims, vars) }, header...)
}

func segment(s string) []byte {
	b, _ := base64.RawURLEncoding.DecodeString(s)
	return b
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
