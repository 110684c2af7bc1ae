package discovery_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkServeKeys is the handler alone: routing, the host check and the
// prepared response, without a network.
func BenchmarkServeKeys(b *testing.B) {
	for _, tc := range []struct {
		name   string
		header http.Header
	}{
		{"plain", nil},
		{"gzip", http.Header{"Accept-Encoding": {"gzip"}}},
		{"not-modified", nil},
	} {
		b.Run(tc.name, func(b *testing.B) {
			src := newSource()
			f := &fixture{src: src}
			var err error
			if f.issuer, err = newIssuer(src); err != nil {
				b.Fatal(err)
			}
			if f.handler, err = newHandler(f.issuer); err != nil {
				b.Fatal(err)
			}
			src.publish(newRSA(b, "a", 2048).jwk, newRSA(b, "b", 2048).jwk)
			f.issuer.Run(canceled())
			req := httptest.NewRequest(http.MethodGet, "https://oidc.example.org/keys", nil)
			for k, v := range tc.header {
				req.Header[k] = v
			}
			if tc.name == "not-modified" {
				rec := httptest.NewRecorder()
				f.handler.ServeHTTP(rec, req)
				req.Header.Set("If-None-Match", rec.Header().Get("ETag"))
			}
			w := &discardWriter{header: http.Header{}}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				clear(w.header)
				f.handler.ServeHTTP(w, req)
			}
		})
	}
}

type discardWriter struct{ header http.Header }

func (w *discardWriter) Header() http.Header         { return w.header }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}
