package arm

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store/conformance"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store/sqlstore"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/mgmt/apiauth"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/oidcissuer"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/pgtest"
)

// TestConcurrentCredentialWritesConflict holds one identity's write slot,
// as a write in flight does, and checks that a second write gets ARM's 409.
func TestConcurrentCredentialWritesConflict(t *testing.T) {
	s, st, token := newTestServer(t, slog.New(slog.DiscardHandler))
	mi := store.ManagedIdentity{ID: directory.ManagedIdentityID("sub", "rg", "mi"), TenantID: testTenant, SubscriptionID: "sub", ResourceGroup: "rg",
		Name: "mi", Location: "westeurope", ClientID: "c1", PrincipalID: "p1"}
	if err := st.CreateManagedIdentity(context.Background(), mi); err != nil {
		t.Fatal(err)
	}
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

// TestConcurrentCredentialWritesConflictAcrossReplicas: while a replica
// writes an identity's credentials, a write through another replica on the
// same PostgreSQL database gets ARM's 409, from the database.
func TestConcurrentCredentialWritesConflictAcrossReplicas(t *testing.T) {
	if !pgtest.Available() {
		t.Skip(pgtest.EnvDSN + " is not set")
	}
	dsn := pgtest.DSN(t)
	open := func() store.Store {
		st, err := sqlstore.OpenPostgres(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	other := open()
	s, st, token := newTestServerOn(t, open(), slog.New(slog.DiscardHandler))
	ctx := context.Background()
	mi := store.ManagedIdentity{ID: directory.ManagedIdentityID("sub", "rg", "mi"), TenantID: testTenant, SubscriptionID: "sub", ResourceGroup: "rg",
		Name: "mi", Location: "westeurope", ClientID: "c1", PrincipalID: "p1"}
	c := store.FederatedCredential{ID: "f1", OwnerID: "p1", Name: "fic-1", Issuer: "https://i.example", Subject: "s", Audiences: []string{"api://AzureADTokenExchange"}}
	for _, err := range []error{st.CreateManagedIdentity(ctx, mi), st.CreateFederatedCredential(ctx, c)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	put := func() *httptest.ResponseRecorder {
		body := `{"properties":{"issuer":"https://i.example","subject":"s2","audiences":["api://AzureADTokenExchange"]}}`
		r := httptest.NewRequest(http.MethodPut, "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/mi/federatedIdentityCredentials/fic-1?api-version=2024-11-30", strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		return w
	}
	release := conformance.HoldOwner(t, other, c) // the other replica's write in flight
	if w := put(); w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), `"code":"ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity"`) {
		t.Fatalf("a write while the other replica writes: %d %s", w.Code, w.Body)
	}
	release()
	if w := put(); w.Code != http.StatusOK {
		t.Fatalf("the write after the other ended: %d %s", w.Code, w.Body)
	}
}

// TestStoreFailureIsARMs503: a failing store is logged with its cause and
// answered with ARM's 503, the cause not sent.
func TestStoreFailureIsARMs503(t *testing.T) {
	var logs bytes.Buffer
	s, st, token := newTestServer(t, slog.New(slog.NewTextHandler(&logs, nil)))
	st.Close()
	r := httptest.NewRequest(http.MethodGet, "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities?api-version=2024-11-30", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), `"code":"ServiceUnavailable"`) || strings.Contains(w.Body.String(), "closed") {
		t.Errorf("got %d %s, want ARM's 503 without the cause", w.Code, w.Body)
	}
	if !strings.Contains(logs.String(), "closed") {
		t.Errorf("the cause was not logged:\n%s", logs.String())
	}
}

// racingStore answers CreateManagedIdentity as the store does when another
// request created the same identity first.
type racingStore struct{ store.Store }

func (racingStore) CreateManagedIdentity(context.Context, store.ManagedIdentity) error {
	return fmt.Errorf("unique constraint: %w", store.ErrAlreadyExists)
}

// TestIdentityCreatedConcurrentlyIsConflict: losing the race to create an
// identity is ARM's 409, not a 503 blaming the backend.
func TestIdentityCreatedConcurrentlyIsConflict(t *testing.T) {
	s, st, token := newTestServer(t, slog.New(slog.DiscardHandler))
	s = New(racingStore{st}, s.auth, s.parse)
	r := httptest.NewRequest(http.MethodPut, "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/new?api-version=2024-11-30", strings.NewReader(`{"location":"westeurope"}`))
	r.Header.Set("Authorization", "Bearer "+token)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	if w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), `"code":"Conflict"`) {
		t.Fatalf("a lost creation race: %d %s", w.Code, w.Body)
	}
}

const testTenant = "6f0c2a4e-1b7d-4c55-9f3e-2d8a1b7c9e10"

// newTestServer is the ARM endpoint over a SQLite store holding one tenant
// with its subscription "sub", on which the caller "o" is Owner, with a
// token for it that the endpoint accepts.
func newTestServer(t *testing.T, logger *slog.Logger) (*Server, store.Store, string) {
	t.Helper()
	st, err := sqlstore.OpenSQLite(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return newTestServerOn(t, st, logger)
}

// newTestServerOn is newTestServer over st.
func newTestServerOn(t *testing.T, st store.Store, logger *slog.Logger) (*Server, store.Store, string) {
	t.Helper()
	ctx := context.Background()
	for _, err := range []error{
		st.CreateTenant(ctx, store.Tenant{ID: testTenant}),
		st.CreateSubscription(ctx, store.Subscription{ID: "sub", TenantID: testTenant}),
		st.CreateRoleAssignment(ctx, store.RoleAssignment{ID: "ra", TenantID: testTenant, Scope: "/subscriptions/sub", RoleDefinitionID: directory.RoleOwner.ID, PrincipalID: "o"}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	verifier := &apiauth.Verifier{Key: func(kid string) (crypto.PublicKey, bool) { return key.Public(), kid == "k" }, Now: time.Now}
	token := oidcissuer.Sign(t, jose.RS256, key, map[jose.HeaderKey]any{"kid": "k"}, map[string]any{"iss": "https://sts.windows.net/" + testTenant + "/",
		"aud": "https://management.core.windows.net/", "tid": testTenant, "oid": "o", "appid": "a", "exp": time.Now().Add(time.Hour).Unix()})
	return New(st, verifier, func(string) error { return nil }, WithLogger(logger)), st, token
}
