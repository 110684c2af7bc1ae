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

// BenchmarkInstrumentParallel is the same from every core at once, as
// under load: with -cpu 2 it shows what the cores' turns at shared cache
// lines add.
func BenchmarkInstrumentParallel(b *testing.B) {
	m := metrics.New()
	h := m.Instrument("oidc", func(*http.Request) string { return "keys" }, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest(http.MethodGet, "/keys", nil)
		w := httptest.NewRecorder()
		for pb.Next() {
			h.ServeHTTP(w, req)
		}
	})
}
