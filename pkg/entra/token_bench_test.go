package entra_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/gateway"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/metrics"
)

// BenchmarkTokenHandler runs client-secret token requests through the
// handler chain the gateway serves the Entra listener with (request
// metrics, host policy, the Entra routes, token metrics, an info-level JSON
// logger) on a seeded SQLite directory, in process and without TLS: what a
// token costs beyond the connection, one RSA signature included.
// go test -run '^$' -bench TokenHandler -benchmem -cpuprofile cpu.out ./pkg/entra/
func BenchmarkTokenHandler(b *testing.B) {
	s, _ := stores["sqlite"](b)
	startFixtureOn(b, s, &fakeVerifier{}, "https://oidc.example.org")
	m := metrics.New()
	e := gateway.NewEntra(s, gateway.EntraOptions{Metrics: m, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	if err := e.Signer.Refresh(context.Background()); err != nil {
		b.Fatal(err)
	}
	h := m.Instrument("entra", e.Route, e.Handler)
	for _, tc := range []struct {
		name, path string
		form       url.Values
	}{
		// a v2 token (the resource accepts v2) and a v1 token, which
		// carries x5t, from the v1 endpoint
		{"v2", "/" + tenantID + "/oauth2/v2.0/token", ccForm()},
		{"v1", "/" + tenantID + "/oauth2/token", ccForm("scope", "", "resource", "https://legacy.contoso.example")},
	} {
		b.Run(tc.name, func(b *testing.B) {
			body := tc.form.Encode()
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest(http.MethodPost, "https://localhost"+tc.path, strings.NewReader(body))
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
		})
	}
}
