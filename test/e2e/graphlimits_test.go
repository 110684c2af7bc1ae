package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestGraphBoundsAnApplication: Graph's object limits and paging ranges
// hold, and bodies that are not clean UTF-8 text are refused.
func TestGraphBoundsAnApplication(t *testing.T) {
	a := newAPI(t)
	tok := a.graphToken()
	status, app, _ := a.do("POST", "/v1.0/applications", tok, map[string]any{"displayName": "bounded"})
	if status != 201 {
		t.Fatalf("create: %d %v", status, app)
	}
	path := "/v1.0/applications/" + app["id"].(string)

	uris := make([]string, 10000)
	for i := range uris {
		uris[i] = fmt.Sprintf("api://bounded/%d", i)
	}
	status, body, _ := a.do("PATCH", path, tok, map[string]any{"identifierUris": uris})
	graphError(t, "10,000 identifier URIs", status, body, 400, "Request_BadRequest", "at most 50 are allowed")
	status, body, _ = a.do("PATCH", path, tok, map[string]any{"displayName": strings.Repeat("n", 257)})
	graphError(t, "a 257-character name", status, body, 400, "Request_BadRequest", "at most 256 are allowed")
	status, body, _ = a.do("PATCH", path, tok, map[string]any{"displayName": "nul\x00inside"})
	graphError(t, "a NUL in a name", status, body, 400, "Request_BadRequest", "without NUL characters")
	// A backslash followed by the text u0000 is text, not a NUL.
	if status, body, _ = a.do("PATCH", path, tok, map[string]any{"displayName": `C:\u0000`}); status != http.StatusNoContent {
		t.Errorf("a name with a backslash and u0000: %d %v", status, body)
	}

	req, _ := http.NewRequest("PATCH", a.info.AuthorityHost+path, strings.NewReader("{\"displayName\":\"bad \xff\xfe utf-8\"}"))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(raw), "must be UTF-8 text") {
		t.Fatalf("invalid UTF-8: %d %s", resp.StatusCode, raw)
	}

	for _, skip := range []string{"9223372036854775807", "-1", "100000"} {
		status, body, _ = a.do("GET", "/v1.0/applications?$top=1&$skiptoken="+skip, tok, nil)
		graphError(t, "$skiptoken "+skip, status, body, 400, "Request_BadRequest", "Invalid skip token")
	}
	status, body, _ = a.do("GET", "/v1.0/applications?$top=9223372036854775807", tok, nil)
	graphError(t, "a huge $top", status, body, 400, "Request_BadRequest", "Invalid page size")

	for i := range 20 {
		if status, body, _ := a.do("POST", path+"/addPassword", tok, map[string]any{"passwordCredential": map[string]any{"displayName": fmt.Sprint("s", i)}}); status != 200 {
			t.Fatalf("secret %d: %d %v", i, status, body)
		}
	}
	status, body, _ = a.do("POST", path+"/addPassword", tok, map[string]any{"passwordCredential": map[string]any{"displayName": "one too many"}})
	graphError(t, "a 21st secret", status, body, 400, "Request_BadRequest", "at most 20 are allowed")
}
