package metrics_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/metrics"
)

// BenchmarkInstrument is what counting and timing adds to every request.
func BenchmarkInstrument(b *testing.B) {
	m := metrics.New()
	h := m.Instrument("oidc", func(*http.Request) string { return "keys" }, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	req := httptest.NewRequest(http.MethodGet, "/keys", nil)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for range b.N {
		h.ServeHTTP(w, req)
	}
}
