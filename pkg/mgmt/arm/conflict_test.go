package arm

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store/sqlstore"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/mgmt/apiauth"
)

// TestConcurrentCredentialWritesConflict holds one identity's write slot,
// as a write in flight does, and checks that a second write gets ARM's 409.
func TestConcurrentCredentialWritesConflict(t *testing.T) {
	st, err := sqlstore.OpenSQLite(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	const tenant = "6f0c2a4e-1b7d-4c55-9f3e-2d8a1b7c9e10"
	if err := st.CreateTenant(ctx, store.Tenant{ID: tenant}); err != nil {
		t.Fatal(err)
	}
	mi := store.ManagedIdentity{ID: directory.ManagedIdentityID("sub", "rg", "mi"), TenantID: tenant, SubscriptionID: "sub", ResourceGroup: "rg",
		Name: "mi", Location: "westeurope", ClientID: "c1", PrincipalID: "p1"}
	if err := st.CreateManagedIdentity(ctx, mi); err != nil {
		t.Fatal(err)
	}
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	verifier := &apiauth.Verifier{Key: func(kid string) (crypto.PublicKey, bool) { return key.Public(), kid == "k" }, Now: time.Now}
	s := New(st, verifier, func(string) error { return nil }, nil)
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "k"}}, nil)
	claims, _ := json.Marshal(map[string]any{"iss": "https://sts.windows.net/" + tenant + "/", "aud": "https://management.core.windows.net/",
		"tid": tenant, "oid": "o", "appid": "a", "exp": time.Now().Add(time.Hour).Unix()})
	jws, _ := signer.Sign(claims)
	token, _ := jws.CompactSerialize()

	put := func() *httptest.ResponseRecorder {
		body := `{"properties":{"issuer":"https://i.example","subject":"s","audiences":["api://AzureADTokenExchange"]}}`
		r := httptest.NewRequest(http.MethodPut, "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/mi/federatedIdentityCredentials/fic-1?api-version=2024-11-30", strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		return w
	}
	if !s.begin(mi.ID) {
		t.Fatal("the slot was taken")
	}
	w := put()
	if w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), `"code":"ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity"`) {
		t.Fatalf("a concurrent write: %d %s", w.Code, w.Body)
	}
	s.end(mi.ID)
	if w := put(); w.Code != http.StatusCreated {
		t.Fatalf("the write after the first ended: %d %s", w.Code, w.Body)
	}
}
