package health_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/health"
)

func TestReadyzReportsEveryCheck(t *testing.T) {
	ready := true
	h := health.Handler(
		health.Check{Name: "always", Ready: func() (bool, any) { return true, nil }},
		health.Check{Name: "toggled", Ready: func() (bool, any) { return ready, map[string]bool{"ready": ready} }},
	)
	get := func(path string) (*httptest.ResponseRecorder, map[string]any) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		var body map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		return rec, body
	}
	if rec, body := get("/readyz"); rec.Code != 200 || body["ready"] != true || len(body["checks"].([]any)) != 2 {
		t.Fatalf("ready: %d %v", rec.Code, body)
	}
	ready = false
	rec, body := get("/readyz")
	if rec.Code != 503 || body["ready"] != false || rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("not ready: %d %v", rec.Code, body)
	}
	if c := body["checks"].([]any)[1].(map[string]any); c["name"] != "toggled" || c["ready"] != false {
		t.Fatalf("check detail %v", c)
	}
	if rec, _ := get("/livez"); rec.Code != 200 || rec.Body.String() != "ok\n" {
		t.Fatalf("/livez while not ready: %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/readyz", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST /readyz: %d", rec.Code)
	}
}
