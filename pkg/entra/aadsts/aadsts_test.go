package aadsts

import (
	"encoding/json"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestStatusFollowsOAuthError(t *testing.T) {
	for code, k := range kinds {
		want := 400
		switch k.oauth {
		case "invalid_client":
			want = 401
		case "temporarily_unavailable":
			want = 503
			if code == TooManyRequests {
				want = 429 // throttling, not an outage
			}
		}
		if k.status != want {
			t.Errorf("AADSTS%d (%s): status %d, want %d", code, k.oauth, k.status, want)
		}
	}
}

func TestWriteShapesBodyAsEntra(t *testing.T) {
	now := time.Date(2026, 8, 13, 10, 11, 12, 345678900, time.UTC)
	r := httptest.NewRequest("POST", "/t/oauth2/v2.0/token", nil)
	r.Header.Set("client-request-id", "0b7f3a10-1c2d-4e5f-8a9b-0c1d2e3f4a5b")
	w := httptest.NewRecorder()
	Write(w, r, New(NoMatchingSubject, "No matching federated identity record found for presented assertion subject '%s'.", "spiffe://x/y"), now)

	if w.Code != 401 {
		t.Errorf("status %d, want 401", w.Code)
	}
	if got := w.Header().Get("Cache-Control"); !strings.Contains(got, "no-store") {
		t.Errorf("Cache-Control %q, want no-store", got)
	}
	var b Body
	if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil {
		t.Fatal(err)
	}
	if b.Error != "invalid_client" || len(b.ErrorCodes) != 1 || b.ErrorCodes[0] != 700213 {
		t.Errorf("error %q codes %v", b.Error, b.ErrorCodes)
	}
	if b.Timestamp != "2026-08-13 10:11:12Z" {
		t.Errorf("timestamp %q", b.Timestamp)
	}
	if b.CorrelationID != "0b7f3a10-1c2d-4e5f-8a9b-0c1d2e3f4a5b" {
		t.Errorf("correlation id %q is not the client-request-id", b.CorrelationID)
	}
	desc := regexp.MustCompile(`^AADSTS700213: No matching federated identity record found for presented assertion subject 'spiffe://x/y'\. ` +
		`Trace ID: [0-9a-f-]{36} Correlation ID: 0b7f3a10-1c2d-4e5f-8a9b-0c1d2e3f4a5b Timestamp: 2026-08-13 10:11:12Z$`)
	// Whole seconds, as the timestamp field: "Timestamp: 2026-07-16 09:05:39Z"
	// (captured 2026-07, MyPureCloud/terraform-provider-genesyscloud#2443).
	if !desc.MatchString(b.ErrorDescription) {
		t.Errorf("error_description %q", b.ErrorDescription)
	}
	if !strings.Contains(b.ErrorDescription, b.TraceID) {
		t.Error("trace_id differs from the one in error_description")
	}
	if b.ErrorURI != "https://login.microsoftonline.com/error?code=700213" {
		t.Errorf("error_uri %q", b.ErrorURI)
	}
}

func TestWriteWithoutErrorURIAndInvalidCorrelationID(t *testing.T) {
	r := httptest.NewRequest("POST", "/t/oauth2/v2.0/token", nil)
	r.Header.Set("client-request-id", "not a guid")
	w := httptest.NewRecorder()
	Write(w, r, New(UnsupportedGrantType, "The app requested an unsupported grant type '%s'.", "magic"), time.Now())
	var raw map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	if _, ok := raw["error_uri"]; ok {
		t.Error("AADSTS70003 carries error_uri; Entra sends none")
	}
	if raw["correlation_id"] == "not a guid" {
		t.Error("a malformed client-request-id was echoed as correlation id")
	}
	if w.Code != 400 || raw["error"] != "unsupported_grant_type" {
		t.Errorf("status %d error %v", w.Code, raw["error"])
	}
}

func TestRetryAfter(t *testing.T) {
	e := New(ServiceUnavailable, "The service is temporarily unavailable.")
	e.RetryAfter = 5 * time.Second
	w := httptest.NewRecorder()
	Write(w, httptest.NewRequest("POST", "/", nil), e, time.Now())
	if w.Code != 503 || w.Header().Get("Retry-After") != "5" {
		t.Errorf("status %d Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
}

func TestNewPanicsOnUnknownCode(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("New accepted a code missing from the table")
		}
	}()
	New(1, "x")
}
