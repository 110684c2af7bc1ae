package federation_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/aadsts"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/federation"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/issuermeta"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/oidcissuer"
)

// staticKeys is one issuer's fixed key set, so the fuzzer exercises parsing
// and checking without a network.
type staticKeys map[string]*jose.JSONWebKey

func (s staticKeys) Key(_ context.Context, _ string, kid string) (*jose.JSONWebKey, error) {
	if k, ok := s[kid]; ok {
		return k, nil
	}
	return nil, issuermeta.ErrKeyNotFound
}

// FuzzVerify feeds arbitrary assertions to the verifier: it must never
// panic, and whatever it accepts must carry a valid signature by the
// issuer's key.
func FuzzVerify(f *testing.F) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	iss := "https://oidc.example.org"
	at := time.Unix(1_800_000_000, 0)
	good := oidcissuer.Sign(f, jose.RS256, key, map[jose.HeaderKey]any{"kid": "k1"},
		map[string]any{"iss": iss, "sub": workload, "aud": []string{audience}, "iat": at.Unix(), "exp": at.Add(time.Hour).Unix()})
	for _, seed := range []string{good, good + "x", "eyJhbGciOiJub25lIn0.e30.", "a.b.c.d.e", "", "...", good[:len(good)/2]} {
		f.Add(seed)
	}
	creds := []store.FederatedCredential{{ID: "1", Issuer: iss, Subject: workload, Audiences: []string{audience}}}
	v := federation.NewVerifier(staticKeys{"k1": {Key: &key.PublicKey, KeyID: "k1", Use: "sig"}},
		federation.WithClock(func() time.Time { return at.Add(time.Minute) }))
	f.Fuzz(func(t *testing.T, assertion string) {
		m, err := v.Verify(context.Background(), assertion, creds)
		if err != nil {
			var aerr *aadsts.Error
			if !errors.As(err, &aerr) || aerr.Code == 0 || aerr.Message == "" {
				t.Fatalf("an error that is not an Entra error with a code and message: %+v", err)
			}
			return
		}
		jws, err := jose.ParseSignedCompact(assertion, []jose.SignatureAlgorithm{jose.RS256})
		if err != nil {
			t.Fatalf("accepted %q which go-jose does not parse: %v", assertion, err)
		}
		if _, err := jws.Verify(&key.PublicKey); err != nil {
			t.Fatalf("accepted %q with a bad signature: %v", assertion, errors.Join(err))
		}
		if m.Subject != workload {
			t.Fatalf("accepted subject %q", m.Subject)
		}
	})
}
