package signer_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/signer"
)

// claims are an access token's, the size the token endpoint signs.
var claims = []byte(`{"aud":"api://payments","iss":"https://sts.windows.net/6f0c2a4e-1b7d-4c55-9f3e-2d8a1b7c9e10/","iat":1764520000,"nbf":1764520000,"exp":1764523900,"aio":"` +
	strings.Repeat("A", 64) + `","appid":"5d8b3f4c-ae60-4b9c-b3f1-7a4e9c1b2d56","appidacr":"1","idp":"https://sts.windows.net/6f0c2a4e-1b7d-4c55-9f3e-2d8a1b7c9e10/","idtyp":"app","oid":"0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0","rh":"0.` +
	strings.Repeat("B", 64) + `.","roles":["Legacy.Read"],"sub":"0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0","tid":"6f0c2a4e-1b7d-4c55-9f3e-2d8a1b7c9e10","uti":"` +
	strings.Repeat("C", 22) + `","ver":"1.0"}`)

// signingKey returns the stored private key that signed tok.
func signingKey(t testing.TB, s store.Store, tok string) *rsa.PrivateKey {
	t.Helper()
	keys, err := s.ListSigningKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	kid := kidOf(t, tok)
	for _, k := range keys {
		if k.ID == kid {
			pk, err := x509.ParsePKCS8PrivateKey(k.PrivateKeyDER)
			if err != nil {
				t.Fatal(err)
			}
			return pk.(*rsa.PrivateKey)
		}
	}
	t.Fatalf("no stored key %s", kid)
	return nil
}

// TestSignIsGoJOSEsCompactJWS: Sign writes the JWS itself, from a header
// rendered once per key; its tokens are byte for byte those go-jose made
// with the options the signer used to give it (RS256 PKCS#1 v1.5 is
// deterministic), with the header as relying parties have always seen it,
// and verify with the published key set.
func TestSignIsGoJOSEsCompactJWS(t *testing.T) {
	s := openStore(t)
	sg := signer.New(s)
	if err := sg.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(sg.PublicKeysJSON(), &set); err != nil {
		t.Fatal(err)
	}
	for _, withX5T := range []bool{false, true} {
		for _, payload := range [][]byte{claims, []byte(`{}`), []byte(`{"a":"\u00e9<>&"}`)} {
			tok, err := sg.Sign(payload, withX5T)
			if err != nil {
				t.Fatal(err)
			}
			key := signingKey(t, s, tok)
			kid := kidOf(t, tok)
			o := (&jose.SignerOptions{}).WithType("JWT")
			want := `{"alg":"RS256","kid":"` + kid + `","typ":"JWT"}`
			if withX5T {
				o = o.WithHeader("x5t", kid)
				want = `{"alg":"RS256","kid":"` + kid + `","typ":"JWT","x5t":"` + kid + `"}`
			}
			js, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, o)
			if err != nil {
				t.Fatal(err)
			}
			jws, err := js.Sign(payload)
			if err != nil {
				t.Fatal(err)
			}
			ref, err := jws.CompactSerialize()
			if err != nil {
				t.Fatal(err)
			}
			if tok != ref {
				t.Errorf("x5t %v, %s:\n got %s\nwant %s (go-jose)", withX5T, payload, tok, ref)
			}
			if h, _ := base64.RawURLEncoding.DecodeString(tok[:strings.IndexByte(tok, '.')]); string(h) != want {
				t.Errorf("header %s, want %s", h, want)
			}
			parsed, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.RS256})
			if err != nil {
				t.Fatal(err)
			}
			pub := set.Key(kid)
			if len(pub) != 1 {
				t.Fatalf("kid %s published %d times", kid, len(pub))
			}
			if got, err := parsed.Verify(pub[0].Key); err != nil || string(got) != string(payload) {
				t.Errorf("verify with the published key: %q, %v", got, err)
			}
		}
	}
}

// BenchmarkSign is Sign beside the one RSA-2048 PKCS#1 v1.5 signature of the
// same signing input it makes: the difference is the signer's own work.
// go test -run '^$' -bench Sign -benchmem ./pkg/entra/signer/
func BenchmarkSign(b *testing.B) {
	s := openStore(b)
	sg := signer.New(s)
	if err := sg.Refresh(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Run("signer", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := sg.Sign(claims, true); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("rsa", func(b *testing.B) {
		tok, err := sg.Sign(claims, true)
		if err != nil {
			b.Fatal(err)
		}
		key := signingKey(b, s, tok)
		input := []byte(tok[:strings.LastIndexByte(tok, '.')])
		b.ReportAllocs()
		for b.Loop() {
			digest := sha256.Sum256(input)
			if _, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, digest[:]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
