package federation

import (
	"encoding/base64"
	"reflect"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// FuzzReadClaims holds readClaims to what the verifier did before it
// decoded the payload once: go-jose's jwt.Claims into the registered claims
// and into a map. Both must refuse the same payloads and read the same
// values from the rest.
func FuzzReadClaims(f *testing.F) {
	for _, seed := range []string{
		`{"iss":"https://oidc.example.org","sub":"spiffe://example.org/w","aud":["api://AzureADTokenExchange"],"iat":1800000000,"exp":1800003600,"nbf":1800000000}`,
		`{"iss":"i","aud":"a"}`, `{"aud":[]}`, `{"aud":null}`, `{"aud":["a",null]}`, `{"aud":["a",1]}`, `{"aud":{}}`, `{"aud":1}`,
		`{"iss":null,"sub":null}`, `{"iss":1}`, `{"sub":true}`, `{"iss":{}}`, `{"ISS":"x","Sub":"y","AUD":"z"}`,
		`{"exp":null}`, `{"exp":"1800000000"}`, `{"exp":1.5e9}`, `{"exp":-1}`, `{"exp":1e400}`, `{"exp":4611686018427387904}`,
		`{"exp":4611686018427387903}`, `{"exp":-4611686018427387904}`, `{"iat":true}`, `{"nbf":[1]}`, `{"exp":1800000000.9}`,
		`{"iss":"a","iss":"b"}`, `{"iss":1,"iss":"b"}`, `{"x":1,"x":2}`, `{"x":{"y":1,"y":2}}`,
		`null`, `[]`, `1`, `"s"`, `{`, ``, `{} x`, `{"x":"\ud800"}`, `{"iss":"\u0069"}`, "{\"iss\":\"\xff\"}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		type registered struct {
			Issuer   string           `json:"iss"`
			Subject  string           `json:"sub"`
			Audience jwt.Audience     `json:"aud"`
			Expiry   *jwt.NumericDate `json:"exp"`
			NotBefor *jwt.NumericDate `json:"nbf"`
			IssuedAt *jwt.NumericDate `json:"iat"`
		}
		var old registered
		var oldAll map[string]any
		oldErr := unsafeClaims(payload, &old, &oldAll)
		c, all, err := readClaims(payload)
		if (oldErr == nil) != (err == nil) {
			t.Fatalf("%q: before %v, now %v", payload, oldErr, err)
		}
		if err != nil {
			return
		}
		if got := registered(c); !reflect.DeepEqual(got, old) {
			t.Fatalf("%q: registered claims\nbefore %+v\nnow    %+v", payload, old, got)
		}
		if !reflect.DeepEqual(all, oldAll) {
			t.Fatalf("%q: claims\nbefore %v\nnow    %v", payload, oldAll, all)
		}
	})
}

// unsafeClaims decodes payload as jwt.JSONWebToken's
// UnsafeClaimsWithoutVerification does, through a token go-jose parses.
func unsafeClaims(payload []byte, dest ...any) error {
	enc := base64.RawURLEncoding
	compact := enc.EncodeToString([]byte(`{"alg":"RS256"}`)) + "." + enc.EncodeToString(payload) + "." + enc.EncodeToString([]byte("sig"))
	tok, err := jwt.ParseSigned(compact, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return err
	}
	return tok.UnsafeClaimsWithoutVerification(dest...)
}
