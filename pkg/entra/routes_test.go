package entra_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestUnknownPathsAndMethodsAnswerJSON: the listener's 404, 405 and the
// token endpoint's wrong method are JSON in the OAuth error shape, never
// the router's plain text.
func TestUnknownPathsAndMethodsAnswerJSON(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		method, path string
		status       int
		says         string
	}{
		{"GET", "/nothing/here", 404, "No endpoint of this service is at /nothing/here"},
		{"GET", "/" + tenantID + "/oauth2/v2.0/token", 400, "AADSTS900561: The endpoint only accepts POST, OPTIONS requests. Received a GET request."},
		{"PUT", "/" + tenantID + "/oauth2/token", 400, "AADSTS900561"},
		{"POST", "/" + tenantID + "/v2.0/.well-known/openid-configuration", 405, "only accepts GET requests"},
		{"DELETE", "/" + tenantID + "/discovery/v2.0/keys", 405, "only accepts GET requests"},
	} {
		req, _ := http.NewRequest(tc.method, f.srv.URL+tc.path, nil)
		resp, err := f.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != tc.status || body["error"] != "invalid_request" || !strings.Contains(body["error_description"].(string), tc.says) {
			t.Errorf("%s %s: %d %v (%v), want %d saying %q", tc.method, tc.path, resp.StatusCode, body, err, tc.status, tc.says)
		}
	}
}
