package federation_test

import (
	"context"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/federation"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/latency"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/oidcissuer"
)

// BenchmarkVerify is the assertion check alone with a warm issuer cache,
// for a JWT-SVID presented again, as workloads do for its lifetime: no
// parse and no RSA verification, but the key lookup, the time checks and
// matching against three credentials.
func BenchmarkVerify(b *testing.B) {
	w := newWorld(b)
	tok := oidcissuer.Sign(b, jose.RS256, w.is.RSA, map[jose.HeaderKey]any{"kid": w.is.RSAKID}, claims(w.is.URL))
	if _, aerr := w.verifier.Verify(context.Background(), tok, w.creds); aerr != nil {
		b.Fatal(aerr)
	}
	b.ReportAllocs()
	latency.Measure(b, func() {
		if _, aerr := w.verifier.Verify(context.Background(), tok, w.creds); aerr != nil {
			b.Fatal(aerr)
		}
	})
}

// BenchmarkVerifyFirst is the check of a JWT-SVID not seen before (each
// time by a new verifier with the issuer's key at hand): parse, RS256
// signature, time checks and matching against three credentials.
func BenchmarkVerifyFirst(b *testing.B) {
	w := newWorld(b)
	tok := oidcissuer.Sign(b, jose.RS256, w.is.RSA, map[jose.HeaderKey]any{"kid": w.is.RSAKID}, claims(w.is.URL))
	keys := staticKeys{w.is.RSAKID: {Key: &w.is.RSA.PublicKey, KeyID: w.is.RSAKID, Use: "sig"}}
	clock := federation.WithClock(func() time.Time { return now })
	b.ReportAllocs()
	latency.Measure(b, func() {
		if _, aerr := federation.NewVerifier(keys, clock).Verify(context.Background(), tok, w.creds); aerr != nil {
			b.Fatal(aerr)
		}
	})
}
