package e2e

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/workload/identityendpoint"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/devgw"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/latency"
)

// TestManagedIdentityCredentialOnTheIdentityEndpoint: azidentity's
// ManagedIdentityCredential and DefaultAzureCredential, with nothing but the
// App Service variables the sidecar writes, get tokens exchanged for the
// development workload's JWT-SVID at the development gateway.
func TestManagedIdentityCredentialOnTheIdentityEndpoint(t *testing.T) {
	info, client := devGateway(t)
	var svids atomic.Int32
	const header = "e2e-identity-header-0123456789"
	endpoint, err := identityendpoint.New(identityendpoint.Config{
		AuthorityHost: info.AuthorityHost, TenantID: info.TenantID, ClientID: info.ClientID, Header: header,
		HTTPClient: client,
		Assertion: func(ctx context.Context) (string, error) {
			svids.Add(1)
			return fetchSVID(ctx, info.WorkloadSocket)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(endpoint)
	defer srv.Close()
	for _, v := range []string{"AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_FEDERATED_TOKEN_FILE",
		"AZURE_USERNAME", "MSI_ENDPOINT", "MSI_SECRET", "IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT", "AZURE_TOKEN_CREDENTIALS"} {
		t.Setenv(v, "") // restored after the test
		os.Unsetenv(v)
	}
	t.Setenv("AZURE_TENANT_ID", "")
	t.Setenv("AZURE_CLIENT_ID", "")
	t.Setenv("IDENTITY_ENDPOINT", srv.URL+identityendpoint.MSIPath)
	t.Setenv("IDENTITY_HEADER", header)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	scope := policy.TokenRequestOptions{Scopes: []string{info.Scope}}

	// System-assigned: the sidecar's default client id.
	mi, err := azidentity.NewManagedIdentityCredential(nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := mi.GetToken(ctx, scope)
	if err != nil {
		t.Fatalf("ManagedIdentityCredential: %v", err)
	}
	claims := verifyAccessToken(t, info, client, tok.Token)
	if claims.Azp != info.ClientID || time.Until(tok.ExpiresOn) < 30*time.Minute {
		t.Errorf("ManagedIdentityCredential: token for %s expiring %s", claims.Azp, tok.ExpiresOn)
	}

	// User-assigned by client id, and the SDK's own refusal path: a client
	// id with no federated credential gets Entra's error, not a token.
	mi, err = azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{ID: azidentity.ClientID(info.ClientID)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mi.GetToken(ctx, scope); err != nil {
		t.Fatalf("ManagedIdentityCredential with ClientID: %v", err)
	}
	unknown, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
		ID: azidentity.ClientID("00000000-0000-0000-0000-0000000000aa")}) // the nil GUID is AADSTS700038
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unknown.GetToken(ctx, scope); err == nil || !strings.Contains(err.Error(), "AADSTS700016") {
		t.Errorf("an unknown client id: %v, want AADSTS700016", err)
	}

	// DefaultAzureCredential finds the endpoint through the same variables,
	// with AZURE_CLIENT_ID naming the identity.
	t.Setenv("AZURE_CLIENT_ID", info.ClientID)
	dac, err := azidentity.NewDefaultAzureCredential(nil)
	if err != nil {
		t.Fatal(err)
	}
	tok2, err := dac.GetToken(ctx, scope)
	if err != nil {
		t.Fatalf("DefaultAzureCredential: %v", err)
	}
	verifyAccessToken(t, info, client, tok2.Token)
	if tok2.Token != tok.Token {
		t.Error("DefaultAzureCredential got a new token: the endpoint's cache per client id and resource was not used")
	}
	if n := svids.Load(); n != 2 {
		t.Errorf("%d JWT-SVIDs fetched, want 2 (one per exchange; the rest from the cache)", n)
	}
}

// BenchmarkIdentityEndpoint: what a managed-identity request costs through
// the sidecar's endpoint, over loopback HTTP. cached: the token is in the
// endpoint's cache. first-exchange: a new endpoint each time, so every
// request fetches a JWT-SVID from the development Workload API and exchanges
// it at the development gateway over TLS.
func BenchmarkIdentityEndpoint(b *testing.B) {
	gw := devgw.Run(b)
	info := gw.Info
	newEndpoint := func() *identityendpoint.Server {
		e, err := identityendpoint.New(identityendpoint.Config{
			AuthorityHost: info.AuthorityHost, TenantID: info.TenantID, ClientID: info.ClientID,
			Header: "bench-identity-header-0123456789", HTTPClient: gw.Client,
			Assertion: func(ctx context.Context) (string, error) { return fetchSVID(ctx, info.WorkloadSocket) },
		})
		if err != nil {
			b.Fatal(err)
		}
		return e
	}
	var current atomic.Pointer[identityendpoint.Server]
	current.Store(newEndpoint())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { current.Load().ServeHTTP(w, r) }))
	defer srv.Close()
	url := srv.URL + identityendpoint.IMDSPath + "?api-version=2018-02-01&resource=" + strings.TrimSuffix(info.Scope, "/.default")
	get := func() {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Metadata", "true")
		resp, err := srv.Client().Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	b.Run("cached", func(b *testing.B) {
		get()
		latency.Measure(b, get)
	})
	b.Run("first-exchange", func(b *testing.B) {
		latency.Measure(b, func() {
			current.Store(newEndpoint())
			get()
		})
	})
}
