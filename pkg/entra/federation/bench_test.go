package federation_test

import (
	"context"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/latency"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/oidcissuer"
)

// BenchmarkVerify is the assertion check alone with a warm issuer cache:
// parse, RS256 signature, time checks and matching against three
// credentials.
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
