package apiauth_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/mgmt/apiauth"
)

const tenant = "6f0c2a4e-1b7d-4c55-9f3e-2d8a1b7c9e10"

type fixture struct {
	key      *rsa.PrivateKey
	verifier *apiauth.Verifier
	now      time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{key: key, now: time.Unix(1_800_000_000, 0)}
	keys := map[string]crypto.PublicKey{"k1": key.Public()}
	f.verifier = &apiauth.Verifier{Key: func(kid string) (crypto.PublicKey, bool) { k, ok := keys[kid]; return k, ok }, Now: func() time.Time { return f.now }}
	return f
}

func (f *fixture) claims() map[string]any {
	return map[string]any{
		"iss": "https://sts.windows.net/" + tenant + "/", "aud": "https://graph.microsoft.com", "tid": tenant,
		"oid": "sp-object", "appid": "client-app", "roles": []string{"Application.ReadWrite.All"},
		"iat": f.now.Unix() - 60, "nbf": f.now.Unix() - 60, "exp": f.now.Unix() + 3600,
	}
}

func (f *fixture) sign(t *testing.T, key any, alg jose.SignatureAlgorithm, kid string, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := jws.CompactSerialize()
	return out
}

func (f *fixture) verify(token string) (apiauth.Caller, error) {
	r := httptest.NewRequest(http.MethodGet, "/v1.0/applications", nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return f.verifier.Verify(r, "00000003-0000-0000-c000-000000000000", "https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000")
}

func TestValidToken(t *testing.T) {
	f := newFixture(t)
	c, err := f.verify(f.sign(t, f.key, jose.RS256, "k1", f.claims()))
	if err != nil {
		t.Fatal(err)
	}
	if c.TenantID != tenant || c.AppID != "client-app" || c.ObjectID != "sp-object" || !c.HasRole("Application.ReadWrite.All") || c.HasRole("Other") {
		t.Fatalf("caller %+v", c)
	}
}

func TestRefusals(t *testing.T) {
	f := newFixture(t)
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	with := func(k string, v any) map[string]any { c := f.claims(); c[k] = v; return c }
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	// The classic confusion: the verifier's RSA public key, as published,
	// used as an HMAC secret.
	publicDER, err := x509.MarshalPKIXPublicKey(f.key.Public())
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(f.claims())
	for _, tc := range []struct {
		name, token, want string
	}{
		{"no token", "", "access token is empty"},
		{"alg none", b64(`{"alg":"none","kid":"k1"}`) + "." + base64.RawURLEncoding.EncodeToString(payload) + ".", "not a signed JWT"},
		{"HMAC with the public key as secret", f.sign(t, publicDER, jose.HS256, "k1", f.claims()), "not a signed JWT"},
		{"another key under our kid", f.sign(t, other, jose.RS256, "k1", f.claims()), "invalid signature"},
		{"unknown kid", f.sign(t, other, jose.RS256, "k9", f.claims()), "not the gateway's"},
		{"expired", f.sign(t, f.key, jose.RS256, "k1", with("exp", f.now.Unix()-1)), "expired"},
		{"not yet valid", f.sign(t, f.key, jose.RS256, "k1", with("nbf", f.now.Unix()+3600)), "not valid yet"},
		{"other audience", f.sign(t, f.key, jose.RS256, "k1", with("aud", "api://other")), "invalid audience"},
		{"issuer of another tenant", f.sign(t, f.key, jose.RS256, "k1", with("iss", "https://sts.windows.net/other/")), "invalid issuer"},
		{"no tenant", f.sign(t, f.key, jose.RS256, "k1", with("tid", "")), "no tenant"},
		{"huge", strings.Repeat("a", 20<<10), "too large"},
	} {
		_, err := f.verify(tc.token)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
		if tc.token != "" && !errors.Is(err, apiauth.ErrInvalid) {
			t.Errorf("%s: %v is not ErrInvalid", tc.name, err)
		}
	}
}
