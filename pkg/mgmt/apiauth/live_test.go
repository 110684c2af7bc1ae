package apiauth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store/sqlstore"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/mgmt/apiauth"
)

// TestLiveDirectory: with a Directory, a token counts only while its
// service principal exists and for the roles it still holds, after at most
// the cache's TTL; a managed identity's token counts while the identity
// exists.
func TestLiveDirectory(t *testing.T) {
	f := newFixture(t)
	st, err := sqlstore.OpenSQLite(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	for _, err := range []error{
		st.CreateTenant(ctx, store.Tenant{ID: tenant}),
		directory.EnsureMicrosoftResources(ctx, st, tenant, f.now),
		st.CreateApplication(ctx, store.Application{ObjectID: "app-object", TenantID: tenant, AppID: "client-app", DisplayName: "client"}, nil, nil),
		st.CreateServicePrincipal(ctx, store.ServicePrincipal{ObjectID: "sp-object", TenantID: tenant, AppID: "client-app"}),
		st.CreateAppRoleAssignment(ctx, store.AppRoleAssignment{ID: "ra", PrincipalID: "sp-object",
			ResourceID: directory.MicrosoftObjectID(tenant, directory.GraphAppID+"/sp"), AppRoleID: directory.GraphApplicationReadWriteAllID}),
		st.CreateManagedIdentity(ctx, store.ManagedIdentity{ID: "/subscriptions/s/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/mi",
			TenantID: tenant, SubscriptionID: "s", ResourceGroup: "rg", Name: "mi", ClientID: "mi-client", PrincipalID: "mi-principal"}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	f.verifier.Directory = &apiauth.Live{Store: st, TTL: 5 * time.Second, Now: func() time.Time { return f.now }}
	token := f.sign(t, f.key, jose.RS256, "k1", f.claims())
	if c, err := f.verify(token); err != nil || !c.HasRole(directory.GraphApplicationReadWriteAll) {
		t.Fatalf("a live caller: %+v %v", c, err)
	}

	if err := st.DeleteAppRoleAssignment(ctx, "ra"); err != nil {
		t.Fatal(err)
	}
	if c, _ := f.verify(token); !c.HasRole(directory.GraphApplicationReadWriteAll) {
		t.Fatal("the role went before the cache's TTL")
	}
	f.now = f.now.Add(5 * time.Second)
	if c, err := f.verify(token); err != nil || c.HasRole(directory.GraphApplicationReadWriteAll) {
		t.Fatalf("after the revocation and the TTL: %+v %v", c, err)
	}

	if err := st.DeleteApplication(ctx, "app-object"); err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(5 * time.Second)
	if _, err := f.verify(token); !errors.Is(err, apiauth.ErrGone) || !errors.Is(err, apiauth.ErrInvalid) {
		t.Fatalf("a deleted application's token: %v", err)
	}

	mi := f.claims()
	mi["oid"], mi["appid"] = "mi-principal", "mi-client"
	if _, err := f.verify(f.sign(t, f.key, jose.RS256, "k1", mi)); err != nil {
		t.Fatalf("a managed identity's token: %v", err)
	}
	mi["oid"] = "someone-else"
	if _, err := f.verify(f.sign(t, f.key, jose.RS256, "k1", mi)); !errors.Is(err, apiauth.ErrGone) {
		t.Fatalf("a token naming a managed identity's client id with another oid: %v", err)
	}

	// An audience another application of the tenant holds is not Graph's.
	if err := st.CreateApplication(ctx, store.Application{ObjectID: "impostor", TenantID: tenant, AppID: "impostor-app", IdentifierURIs: []string{"https://graph.microsoft.com/"}}, nil, nil); err != nil {
		t.Fatal(err)
	}
	aud := f.claims()
	aud["aud"], aud["oid"], aud["appid"] = "https://graph.microsoft.com/", "mi-principal", "mi-client"
	r := httptest.NewRequest(http.MethodGet, "/v1.0/applications", nil)
	r.Header.Set("Authorization", "Bearer "+f.sign(t, f.key, jose.RS256, "k1", aud))
	if _, err := f.verifier.Verify(r, directory.GraphAppID, "https://graph.microsoft.com/"); !errors.Is(err, apiauth.ErrAudience) {
		t.Fatalf("a token for another application's identifier URI: %v", err)
	}
}
