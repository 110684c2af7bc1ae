package entra

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4/jwt"
)

// FuzzIssuedBy holds the pre-check to the whole parse it spares: every
// assertion the whole parse takes for the client's own must pass it.
func FuzzIssuedBy(f *testing.F) {
	const client = "7c1e1f4e-5a3b-4c55-9a11-0f0e3d1c2b4a"
	b64 := base64.RawURLEncoding.EncodeToString
	head := b64([]byte(`{"alg":"RS256","typ":"JWT"}`))
	for _, payload := range []string{
		`{"iss":"` + client + `","sub":"` + client + `"}`,
		`{"iss":"` + strings.ToUpper(client) + `"}`,
		`{"ISS":"` + client + `"}`,
		`{"iss":"https://oidc.example.com","sub":"spiffe://example.org/w"}`,
		`{"iss":"https://oidc.example.com","iss":"` + client + `"}`,
		`{"iss":"` + client + `","iss":"https://oidc.example.com"}`,
		`{"iss":1}`, `{"iss":null}`, `[]`, `{`,
	} {
		f.Add(head + "." + b64([]byte(payload)) + "." + b64([]byte("signature")))
		f.Add(head + "." + b64([]byte(payload)) + "=." + b64([]byte("signature")))
	}
	f.Add("a.b")
	f.Add("..")
	f.Fuzz(func(t *testing.T, assertion string) {
		tok, err := jwt.ParseSigned(assertion, certificateAlgorithms)
		if err != nil || len(tok.Headers) != 1 {
			return
		}
		var c struct {
			Issuer string `json:"iss"`
		}
		if tok.UnsafeClaimsWithoutVerification(&c) == nil && strings.EqualFold(c.Issuer, client) && !issuedBy(assertion, client) {
			t.Fatalf("the whole parse reads iss %q, the pre-check refuses %q", c.Issuer, assertion)
		}
	})
}
