package discovery_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/oidc/discovery"
)

// FuzzHandler sends header games to the provider: whatever the request,
// the answer is one of the expected statuses, never a panic, and a 200
// carries the document.
func FuzzHandler(f *testing.F) {
	src := newSource()
	iss, err := discovery.NewIssuer(src, "https://oidc.example.org/td")
	if err != nil {
		f.Fatal(err)
	}
	h, err := discovery.New([]*discovery.Issuer{iss}, discovery.WithTrustedProxies(netip.MustParsePrefix("192.0.2.0/24")))
	if err != nil {
		f.Fatal(err)
	}
	src.publish(newRSA(f, "a", 2048).jwk)
	iss.Run(canceled())
	f.Add("GET", "/td/keys", "oidc.example.org", "gzip", `"x"`, "Mon, 02 Jan 2006 15:04:05 GMT", "oidc.example.org", "host=a")
	f.Add("HEAD", "/td/.well-known/openid-configuration", "OIDC.example.org:443", "gzip;q=0, br", "*", "garbage", "", "")
	f.Add("POST", "/td/keys", "[::1]:80", "", "W/\"a\", \"b\"", "", "evil, oidc.example.org", "for=x;host=\"oidc.example.org\"")
	f.Fuzz(func(t *testing.T, method, path, host, acceptEncoding, ifNoneMatch, ifModifiedSince, xfh, forwarded string) {
		req := httptest.NewRequest(http.MethodGet, "https://oidc.example.org/", nil)
		req.Method, req.URL.Path, req.Host = method, path, host
		req.RemoteAddr = "192.0.2.1:1234"
		for k, v := range map[string]string{"Accept-Encoding": acceptEncoding, "If-None-Match": ifNoneMatch,
			"If-Modified-Since": ifModifiedSince, "X-Forwarded-Host": xfh, "Forwarded": forwarded} {
			if v != "" {
				req.Header.Set(k, v)
			}
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK:
			if method != http.MethodHead && rec.Body.Len() == 0 {
				t.Fatal("a 200 without a body")
			}
		case http.StatusNotModified, http.StatusBadRequest, http.StatusNotFound, http.StatusMethodNotAllowed:
		default:
			t.Fatalf("status %d", rec.Code)
		}
	})
}
