package entra_test

import (
	"fmt"
	"strings"
	"testing"
)

// TestPasswordSmartLockout: after ten wrong passwords the account is
// locked (AADSTS50053), and the right password waits too.
func TestPasswordSmartLockout(t *testing.T) {
	f := newFixture(t)
	path := "/" + tenantID + "/oauth2/v2.0/token"
	for i := range 10 {
		if resp, body := f.post(t, path, ropcForm("password", fmt.Sprint("wrong-", i)), nil); resp.StatusCode != 400 ||
			!strings.HasPrefix(fmt.Sprint(body["error_description"]), "AADSTS50126") {
			t.Fatalf("wrong password %d: %d %v", i, resp.StatusCode, body)
		}
	}
	resp, body := f.post(t, path, ropcForm(), nil)
	if resp.StatusCode != 400 || body["error"] != "invalid_grant" || !strings.HasPrefix(fmt.Sprint(body["error_description"]), "AADSTS50053") {
		t.Fatalf("the right password after ten wrong ones: %d %v", resp.StatusCode, body)
	}
}

// TestClientSecretGuessingThrottled: after twenty wrong secrets from one
// address the client is throttled there (429, AADSTS90055, Retry-After),
// the right secret included.
func TestClientSecretGuessingThrottled(t *testing.T) {
	f := newFixture(t)
	path := "/" + tenantID + "/oauth2/v2.0/token"
	for i := range 20 {
		if resp, body := f.post(t, path, ccForm("client_secret", fmt.Sprint("guess-", i)), nil); resp.StatusCode != 401 {
			t.Fatalf("wrong secret %d: %d %v", i, resp.StatusCode, body)
		}
	}
	resp, body := f.post(t, path, ccForm(), nil)
	if resp.StatusCode != 429 || body["error"] != "temporarily_unavailable" || !strings.HasPrefix(fmt.Sprint(body["error_description"]), "AADSTS90055") ||
		resp.Header.Get("Retry-After") == "" {
		t.Fatalf("the right secret after twenty wrong ones: %d %v %v", resp.StatusCode, resp.Header, body)
	}
}
