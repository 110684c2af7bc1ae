package e2e

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/dev/devtenant"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store/sqlstore"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/devgw"
)

// TestDevModeHasProductionEndpoints: serve --dev runs through the
// production wiring, so it has /livez, /readyz (keys, signer, seed) and
// /metrics, which count its token requests.
func TestDevModeHasProductionEndpoints(t *testing.T) {
	info, client := devGateway(t)
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if status, body := get(info.HealthURL + "/livez"); status != 200 {
		t.Errorf("/livez: %d %s", status, body)
	}
	// The issuer is ready once Run has rendered its first key set.
	status, body := get(info.HealthURL + "/readyz")
	for deadline := time.Now().Add(20 * time.Second); status != 200 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		status, body = get(info.HealthURL + "/readyz")
	}
	if status != 200 || !strings.Contains(body, "entra seed file") || !strings.Contains(body, "entra signing keys") || !strings.Contains(body, info.Issuer) {
		t.Errorf("/readyz: %d %s; want ready with the issuer, the signer and the seed", status, body)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cred, err := azidentity.NewClientSecretCredential(info.TenantID, info.ClientID, info.ClientSecret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: clientOptions(info, client), DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{info.Scope}}); err != nil {
		t.Fatal(err)
	}
	if status, body := get(info.MetricsURL); status != 200 || !strings.Contains(body, `grant="client_credentials"`) {
		t.Errorf("/metrics: %d, no client_credentials token counted:\n%s", status, body)
	}
}

// TestDevDataDirFromTheRetiredSeeder: a data directory an earlier version
// seeded (other object ids, managed by "dev") starts, and its client
// works under the seed document.
func TestDevDataDirFromTheRetiredSeeder(t *testing.T) {
	ctx := context.Background()
	dir := dataDirWith(t, "dev", func(s store.Store) error {
		return s.CreateServicePrincipal(ctx, store.ServicePrincipal{ObjectID: "1f0e0d0c-0b0a-4909-8807-060504030201", TenantID: devtenant.TenantID,
			AppID: devtenant.ClientAppID, DisplayName: "dev-workload", ManagedBy: "dev"})
	})
	g, err := devgw.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	cred, err := azidentity.NewClientSecretCredential(g.Info.TenantID, g.Info.ClientID, g.Info.ClientSecret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: clientOptions(g.Info, g.Client), DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := cred.GetToken(tctx, policy.TokenRequestOptions{Scopes: []string{g.Info.Scope}}); err != nil {
		t.Fatalf("the development client after the migration: %v", err)
	}
}

// TestDevStartSaysWhyTheTenantWasRefused: an object created through an API
// where the development tenant wants its own stops serve --dev with the
// seed's reason.
func TestDevStartSaysWhyTheTenantWasRefused(t *testing.T) {
	g, err := devgw.New(dataDirWith(t, "", nil)) // "": made through an API
	if err == nil {
		g.Close()
		t.Fatal("serve --dev started over an application in the way")
	}
	if !strings.Contains(err.Error(), "the development directory") || !strings.Contains(err.Error(), `application "dev-workload"`) {
		t.Errorf("the error does not say why: %v", err)
	}
}

// dataDirWith is a data directory whose database already holds the
// development tenant and an application with the development client's id,
// both managed by managedBy, and whatever more adds.
func dataDirWith(t *testing.T, managedBy string, more func(store.Store) error) string {
	t.Helper()
	dir := t.TempDir()
	s, err := sqlstore.OpenSQLite(filepath.Join(dir, "gateway.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.CreateTenant(ctx, store.Tenant{ID: devtenant.TenantID, DisplayName: "Development", ManagedBy: managedBy}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateApplication(ctx, store.Application{ObjectID: "0f0e0d0c-0b0a-4909-8807-060504030201", TenantID: devtenant.TenantID,
		AppID: devtenant.ClientAppID, DisplayName: "dev-workload", ManagedBy: managedBy, CreatedAt: time.Now()}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if more != nil {
		if err := more(s); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
