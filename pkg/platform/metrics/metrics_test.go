package metrics_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/metrics"
)

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func TestRoutesAreABoundedLabelSet(t *testing.T) {
	m := metrics.New()
	h := m.Instrument("entra", entra.Route, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "token") {
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	for _, p := range []string{"/t/oauth2/v2.0/token", "/t/oauth2/token", "/t/v2.0/.well-known/openid-configuration",
		"/t/discovery/v2.0/keys", "/common/discovery/instance", "/random/a", "/random/b", "/%00"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "https://gw"+p, nil))
	}
	out := scrape(t, m)
	for _, want := range []string{
		`gateway_http_requests_total{code="401",listener="entra",route="token"} 2`,
		`gateway_http_requests_total{code="200",listener="entra",route="discovery"} 1`,
		`gateway_http_requests_total{code="200",listener="entra",route="keys"} 1`,
		`gateway_http_requests_total{code="200",listener="entra",route="instance_discovery"} 1`,
		`gateway_http_requests_total{code="200",listener="entra",route="other"} 3`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s", want)
		}
	}
	if strings.Contains(out, "random") {
		t.Error("a request path became a label value")
	}
}

func TestTokensFetchesAndKeySetAge(t *testing.T) {
	m := metrics.New()
	m.TokenIssued("client_credentials")
	m.TokenRefused("client_credentials", 700213)
	m.TokenRefused("client_credentials", 700213)
	m.IssuerFetch(false)
	var changed time.Time
	m.KeySetAge("https://oidc.example.org", func() time.Time { return changed })
	out := scrape(t, m)
	for _, want := range []string{
		`gateway_tokens_issued_total{grant="client_credentials"} 1`,
		`gateway_tokens_refused_total{aadsts="700213",grant="client_credentials"} 2`,
		`gateway_issuer_metadata_fetches_total{result="error"} 1`,
		`gateway_keyset_age_seconds{issuer="https://oidc.example.org"} -1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s in\n%s", want, out)
		}
	}
	changed = time.Now().Add(-time.Minute)
	if out := scrape(t, m); !strings.Contains(out, `gateway_keyset_age_seconds{issuer="https://oidc.example.org"} 60`) {
		t.Error("the key set age does not follow the change time")
	}
}

// TestRequestsCountedFromManyGoroutines: every request is counted once in
// its status's counter and once in its route's histogram, whatever shard
// it landed in, and the histogram's buckets add up to its count.
func TestRequestsCountedFromManyGoroutines(t *testing.T) {
	m := metrics.New()
	h := m.Instrument("oidc", func(r *http.Request) string { return "keys" }, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("slow") {
			time.Sleep(1050 * time.Millisecond) // beyond the last bound, 1 s
		}
		if r.Method == http.MethodHead {
			w.WriteHeader(http.StatusNotModified)
		}
	}))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range 500 {
				method := http.MethodGet
				if i%5 == 0 {
					method = http.MethodHead
				}
				h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(method, "/keys", nil))
			}
		})
	}
	wg.Wait()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/keys?slow", nil))
	out := scrape(t, m)
	for _, want := range []string{
		`gateway_http_requests_total{code="200",listener="oidc",route="keys"} 3201`,
		`gateway_http_requests_total{code="304",listener="oidc",route="keys"} 800`,
		`gateway_http_request_duration_seconds_count{listener="oidc",route="keys"} 4001`,
		`gateway_http_request_duration_seconds_bucket{listener="oidc",route="keys",le="+Inf"} 4001`,
		`gateway_http_request_duration_seconds_bucket{listener="oidc",route="keys",le="1"} 4000`,
		`# HELP gateway_http_request_duration_seconds HTTP request latency by listener and route.`,
		`# TYPE gateway_http_requests_total counter`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s in\n%s", want, out)
		}
	}
	sum := regexp.MustCompile(`gateway_http_request_duration_seconds_sum\{listener="oidc",route="keys"\} (\S+)`).FindStringSubmatch(out)
	if len(sum) < 2 {
		t.Fatalf("no sum in\n%s", out)
	}
	if s, err := strconv.ParseFloat(sum[1], 64); err != nil || s < 1.05 || s > 100 {
		t.Errorf("sum %s: not the slow request's 1.05 s and the rest", sum[1])
	}
}
