package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/gateway"
)

const (
	seededClient = "2a3b4c5d-6e7f-4a8b-9c0d-1e2f3a4b5c6d"
	seededSecret = "a-seeded-client-secret-of-enough-length"
	reportsAPI   = "7b8c9d0e-1f2a-4b3c-8d4e-5f6a7b8c9d0e"
)

func seedFile(apps string) string {
	return `
tenants:
  - id: ` + tenantID + `
    displayName: Contoso
    domains: [contoso.example]
    applications:
      - name: reports-api
        appId: ` + reportsAPI + `
        accessTokenAcceptedVersion: 2
        identifierUris: [api://reports]
        appRoles: [{value: Reports.Read}]
` + apps
}

// TestDevSeedFile is a development gateway given a seed file: the seeded
// app gets tokens through the real SDK, and removing it from the file
// takes effect without a restart.
func TestDevSeedFile(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte(seededSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "seed.yaml")
	withReporter := seedFile(`      - name: reporter
        appId: ` + seededClient + `
        clientSecretFiles: [` + secretFile + `]
        roleAssignments:
          - {resource: api://reports, role: Reports.Read}
`)
	if err := os.WriteFile(path, []byte(withReporter), 0o600); err != nil {
		t.Fatal(err)
	}
	info, client := devGateway(t, func(o *gateway.DevOptions) { o.SeedFile = path })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cred, err := azidentity.NewClientSecretCredential(tenantID, seededClient, seededSecret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: clientOptions(info, client), DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"api://reports/.default"}})
	if err != nil {
		t.Fatalf("GetToken for the seeded app: %v", err)
	}
	if c := verifyAccessTokenFor(t, info, client, tenantID, reportsAPI, tok.Token); c.Azp != seededClient || len(c.Roles) != 1 || c.Roles[0] != "Reports.Read" {
		t.Errorf("seeded app's token: azp %q roles %v", c.Azp, c.Roles)
	}

	if err := os.WriteFile(path, []byte(seedFile("")), 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		// A new credential each time: the SDK caches tokens.
		cred, _ := azidentity.NewClientSecretCredential(tenantID, seededClient, seededSecret,
			&azidentity.ClientSecretCredentialOptions{ClientOptions: clientOptions(info, client), DisableInstanceDiscovery: true})
		_, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"api://reports/.default"}})
		if err != nil && strings.Contains(err.Error(), "AADSTS700016") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the app removed from the seed file still authenticates 15 s later: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
