package check_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/check"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/federation"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/issuermeta"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/oidcissuer"
)

const (
	workload = "spiffe://example.org/ns/payments/sa/worker"
	exchange = "api://AzureADTokenExchange"
)

func TestAssertion(t *testing.T) {
	is := oidcissuer.New(t)
	v := federation.NewVerifier(issuermeta.New(issuermeta.WithRootCAs(oidcissuer.Pool(is)), issuermeta.WithAllowedNetworks(issuermeta.Loopback...)))
	creds := []store.FederatedCredential{
		{ID: "1", Name: "other-workload", Issuer: is.URL, Subject: "spiffe://example.org/ns/other/sa/x", Audiences: []string{exchange}},
		{ID: "2", Name: "worker", Issuer: is.URL, Subject: workload, Audiences: []string{exchange}},
	}
	sign := func(alg jose.SignatureAlgorithm, key any, kid string, edit func(map[string]any)) string {
		now := time.Now()
		c := map[string]any{"iss": is.URL, "sub": workload, "aud": []string{exchange}, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
		if edit != nil {
			edit(c)
		}
		return oidcissuer.Sign(t, alg, key, map[jose.HeaderKey]any{"kid": kid}, c)
	}
	rs := func(edit func(map[string]any)) string { return sign(jose.RS256, is.RSA, is.RSAKID, edit) }
	for _, tc := range []struct {
		name    string
		token   string
		creds   []store.FederatedCredential
		code    int
		nearest string // the nearest credential's name
		says    string // one of its differences
	}{
		{name: "exchangeable", token: rs(nil)},
		{name: "issuer with a trailing slash", token: rs(func(c map[string]any) { c["iss"] = is.URL + "/" }), code: 700211, nearest: "worker", says: "issuer differs only by a trailing slash"},
		{name: "subject in another case", token: rs(func(c map[string]any) { c["sub"] = strings.ToUpper(workload) }), code: 7002138, nearest: "worker", says: "subject differs only in case"},
		{name: "another audience", token: rs(func(c map[string]any) { c["aud"] = "api://AzureADTokenExchange/" }), code: 700212, nearest: "worker", says: `audience differs only by a trailing slash: the credential has "api://AzureADTokenExchange"`},
		{name: "another subject", token: rs(func(c map[string]any) { c["sub"] = "spiffe://example.org/ns/payments/sa/other" }), code: 700213, nearest: "other-workload", says: "subject differs: the credential has"},
		{name: "no credentials", token: rs(nil), creds: []store.FederatedCredential{}, code: 70025},
		{name: "expired", token: rs(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() }), code: 700024},
		{name: "ES256, SPIRE's default", token: sign(jose.ES256, is.EC, is.ECKID, nil), code: 5002738},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := creds
			if tc.creds != nil {
				cs = tc.creds
			}
			r := check.Assertion(context.Background(), v, tc.token, cs)
			if tc.code == 0 {
				if !r.Exchangeable || r.Matched == nil || r.Matched.Name != "worker" || r.Refusal != nil {
					t.Fatalf("report %+v", r)
				}
				return
			}
			if r.Exchangeable || r.Refusal == nil || r.Refusal.Code != tc.code || !strings.HasPrefix(r.Refusal.Message, "AADSTS") {
				t.Fatalf("refusal %+v, want AADSTS%d", r.Refusal, tc.code)
			}
			if r.Token.Issuer == "" || r.Token.Alg == "" {
				t.Errorf("token not read: %+v", r.Token)
			}
			switch {
			case tc.nearest == "" && r.Nearest != nil:
				t.Errorf("a nearest credential for AADSTS%d: %+v", tc.code, r.Nearest)
			case tc.nearest != "" && (r.Nearest == nil || r.Nearest.Credential.Name != tc.nearest || !strings.Contains(strings.Join(r.Nearest.Differences, "\n"), tc.says)):
				t.Errorf("nearest %+v, want %s saying %q", r.Nearest, tc.nearest, tc.says)
			}
		})
	}
}
