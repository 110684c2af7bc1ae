// Package hostnames runs the Azure SDK for Go with its defaults (no
// authority host, instance discovery on) against a development gateway
// answering as Entra's own host names. test/hostnames/run.sh runs the
// compiled test inside a network and mount namespace of its own, where a
// private hosts file sends those names to the gateway and no Microsoft host
// is reachable; anywhere else the tests skip.
package hostnames

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

func env(t *testing.T, name string) string {
	t.Helper()
	if os.Getenv("GATEWAY_TEST_ENTRA_HOSTNAMES") != "1" {
		t.Skip("run by test/hostnames/run.sh inside its own namespaces")
	}
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set", name)
	}
	return v
}

func claims(t *testing.T, token string) map[string]any {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func getToken(t *testing.T, what string, cred azcore.TokenCredential, scope string) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}})
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	c := claims(t, tok.Token)
	t.Logf("%s: a token from %v for %v", what, c["iss"], c["aud"])
	return c
}

func TestDefaults(t *testing.T) {
	tenant, client, scope := env(t, "AZURE_TENANT_ID"), env(t, "AZURE_CLIENT_ID"), env(t, "GATEWAY_DEV_SCOPE")
	secret, tokenFile := env(t, "GATEWAY_DEV_CLIENT_SECRET"), env(t, "AZURE_FEDERATED_TOKEN_FILE")

	cred, err := azidentity.NewClientSecretCredential(tenant, client, secret, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c := getToken(t, "ClientSecretCredential", cred, scope); c["iss"] != "https://login.microsoftonline.com/"+tenant+"/v2.0" {
		t.Errorf("issuer %v", c["iss"])
	}

	assertion, err := azidentity.NewClientAssertionCredential(tenant, client, func(context.Context) (string, error) {
		b, err := os.ReadFile(tokenFile)
		return strings.TrimSpace(string(b)), err
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	getToken(t, "ClientAssertionCredential", assertion, scope)

	// AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_FEDERATED_TOKEN_FILE only.
	wi, err := azidentity.NewWorkloadIdentityCredential(nil)
	if err != nil {
		t.Fatal(err)
	}
	getToken(t, "WorkloadIdentityCredential", wi, scope)

	// IMDS at 169.254.169.254, the sidecar's managed-identity endpoint.
	mi, err := azidentity.NewManagedIdentityCredential(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c := getToken(t, "ManagedIdentityCredential (IMDS)", mi, scope); c["azp"] != client {
		t.Errorf("azp %v", c["azp"])
	}
	dac, err := azidentity.NewDefaultAzureCredential(nil)
	if err != nil {
		t.Fatal(err)
	}
	getToken(t, "DefaultAzureCredential", dac, "https://management.azure.com/.default")
}
