package graph

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store/sqlstore"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/mgmt/apiauth"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/oidcissuer"
)

// TestStoreFailureIsGraphs503: a failing store is logged with its cause and
// answered with Graph's retryable 503, the cause not sent.
func TestStoreFailureIsGraphs503(t *testing.T) {
	st, err := sqlstore.OpenSQLite(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	const tenant = "6f0c2a4e-1b7d-4c55-9f3e-2d8a1b7c9e10"
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	var logs bytes.Buffer
	s := New(st, &apiauth.Verifier{Key: func(kid string) (crypto.PublicKey, bool) { return key.Public(), kid == "k" }, Now: time.Now},
		func(string) error { return nil }, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	token := oidcissuer.Sign(t, jose.RS256, key, map[jose.HeaderKey]any{"kid": "k"}, map[string]any{"iss": "https://sts.windows.net/" + tenant + "/",
		"aud": directory.GraphResource, "tid": tenant, "oid": "o", "appid": "a", "roles": []string{directory.GraphApplicationReadWriteAll},
		"exp": time.Now().Add(time.Hour).Unix()})
	r := httptest.NewRequest(http.MethodGet, "/v1.0/applications", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "5" ||
		!strings.Contains(w.Body.String(), `"code":"serviceNotAvailable"`) || strings.Contains(w.Body.String(), "closed") {
		t.Errorf("got %d %s, want Graph's 503 without the cause", w.Code, w.Body)
	}
	if !strings.Contains(logs.String(), "closed") {
		t.Errorf("the cause was not logged:\n%s", logs.String())
	}
}
