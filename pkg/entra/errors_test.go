package entra_test

import (
	"bytes"
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
