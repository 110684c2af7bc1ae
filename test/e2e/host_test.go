package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestEntraListenerHostPolicy: the Entra listener serves its authority host
// names only. Any other Host — such as Entra's own, which the gateway once
// reflected into discovery, the iss of tokens and the audience a
// certificate assertion must name — is refused with Entra's AADSTS50049
// before anything is written with it.
func TestEntraListenerHostPolicy(t *testing.T) {
	a := newAPI(t)
	send := func(method, path, host string, form url.Values) (int, map[string]any, string) {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, a.info.AuthorityHost+path, body)
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		req.Host = host
		resp, err := a.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var out map[string]any
		_ = json.Unmarshal(raw, &out)
		return resp.StatusCode, out, string(raw)
	}
	discovery := "/" + a.info.TenantID + "/v2.0/.well-known/openid-configuration"
	token := "/" + a.info.TenantID + "/oauth2/v2.0/token"
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {a.info.ClientID}, "client_secret": {a.info.ClientSecret}, "scope": {a.info.Scope}}
	for _, host := range []string{"login.microsoftonline.com", "evil.example:8443", "localhost.evil.example"} {
		for _, tc := range []struct {
			method, path string
			form         url.Values
		}{
			{"GET", discovery, nil},
			{"GET", "/common/discovery/instance?api-version=1.1&authorization_endpoint=https://" + host + "/common/oauth2/v2.0/authorize", nil},
			{"POST", token, form},
			{"GET", "/v1.0/applications", nil},
		} {
			status, body, raw := send(tc.method, tc.path, host, tc.form)
			codes, _ := body["error_codes"].([]any)
			if status != 400 || body["error"] != "invalid_instance" || len(codes) != 1 || codes[0] != float64(50049) {
				t.Errorf("%s %s with Host %s: %d %s", tc.method, tc.path, host, status, raw)
			}
			if strings.Contains(raw, strings.Split(host, ":")[0]) {
				t.Errorf("%s %s: the answer names the Host %s: %s", tc.method, tc.path, host, raw)
			}
		}
	}
	u, _ := url.Parse(a.info.AuthorityHost)
	for _, host := range []string{u.Host, "LOCALHOST:" + u.Port(), "127.0.0.1:" + u.Port()} {
		if status, body, _ := send("GET", discovery, host, nil); status != 200 || !strings.HasPrefix(body["issuer"].(string), "https://"+host+"/") {
			t.Errorf("discovery with Host %s: %d %v", host, status, body)
		}
	}
	if status, _, raw := send("POST", token, u.Host, form); status != 200 {
		t.Errorf("a token with the authority's Host: %d %s", status, raw)
	}
}
