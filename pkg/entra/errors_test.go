package entra_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store/sqlstore"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra"
)

// TestStoreFailureIsEntras503: a failure that is not a refusal is answered
// with Entra's retryable 503 on every route that reads the store, and its
// cause is logged, not sent.
func TestStoreFailureIsEntras503(t *testing.T) {
	s, err := sqlstore.OpenSQLite(filepath.Join(t.TempDir(), "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	s.Close() // every call fails from now on
	var logs bytes.Buffer
	srv := httptest.NewTLSServer(entra.New(s, &fakeVerifier{}, nil, entra.WithLogger(slog.New(slog.NewTextHandler(&logs, nil)))).Handler())
	t.Cleanup(srv.Close)

	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret}, "scope": {"api://payments/.default"}}
	for _, path := range []string{"/oauth2/v2.0/token", "/v2.0/.well-known/openid-configuration", "/discovery/v2.0/keys"} {
		req, _ := http.NewRequest("GET", srv.URL+"/"+tenantID+path, nil)
		if strings.HasSuffix(path, "token") {
			req, _ = http.NewRequest("POST", srv.URL+"/"+tenantID+path, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, body := do(t, srv.Client(), req)
		codes, _ := body["error_codes"].([]any)
		if resp.StatusCode != 503 || body["error"] != "temporarily_unavailable" || len(codes) != 1 || codes[0] != float64(90033) ||
			resp.Header.Get("Retry-After") != "5" {
			t.Errorf("%s %s: got %d %v (Retry-After %q), want Entra's 503", req.Method, req.URL.Path, resp.StatusCode, body, resp.Header.Get("Retry-After"))
		}
		if desc, _ := body["error_description"].(string); strings.Contains(desc, "closed") {
			t.Errorf("the cause reached the client: %s", desc)
		}
	}
	if !strings.Contains(logs.String(), "get tenant") || !strings.Contains(logs.String(), "closed") {
		t.Errorf("the cause was not logged:\n%s", logs.String())
	}
}

// countingMetrics records the token endpoint's outcomes.
type countingMetrics struct{ outcomes []string }

func (m *countingMetrics) TokenIssued(grant string) {
	m.outcomes = append(m.outcomes, grant+" issued")
}

func (m *countingMetrics) TokenRefused(grant string, code int) {
	m.outcomes = append(m.outcomes, fmt.Sprintf("%s refused %d", grant, code))
}

// TestTokenOutcomesAreCounted: every token request is counted once, by its
// grant as far as the request named one, with the AADSTS code it was
// refused with; the other routes' errors are no token outcomes.
func TestTokenOutcomesAreCounted(t *testing.T) {
	f := newFixture(t)
	m := &countingMetrics{}
	h := entra.New(f.store, f.verifier, f.signer, entra.WithMetrics(m)).Handler()
	v2 := "/" + tenantID + "/oauth2/v2.0/token"
	for _, tc := range []struct {
		method, path string
		form         url.Values
		want         string
	}{
		{"POST", v2, ccForm(), "client_credentials issued"},
		{"POST", v2, ccForm("client_secret", "nope"), "client_credentials refused 7000215"},
		{"POST", v2, ccForm("grant_type", "magic"), "unsupported refused 70003"},
		{"POST", v2, nil, "none refused 900144"},
		{"POST", "/nowhere.example/oauth2/v2.0/token", ropcForm(), "password refused 90002"},
		{"GET", v2, nil, ""},
		{"GET", "/nowhere.example/discovery/v2.0/keys", nil, ""},
	} {
		m.outcomes = nil
		var body io.Reader = http.NoBody
		if tc.form != nil {
			body = strings.NewReader(tc.form.Encode())
		}
		r := httptest.NewRequest(tc.method, "https://localhost"+tc.path, body)
		if tc.form != nil {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
		if got := strings.Join(m.outcomes, ", "); got != tc.want {
			t.Errorf("%s %s %v: counted %q, want %q", tc.method, tc.path, tc.form, got, tc.want)
		}
	}
}
