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
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/dev/devworkload"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/gateway"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/workload/azcred"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/workload/tokenfile"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/devgw"
)

func fileKID(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.ParseSigned(strings.TrimSpace(string(b)), []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	return tok.Headers[0].KeyID
}

// TestTokenFileAcrossKeyRotation: after SPIRE-style key rotation, an SDK
// re-reading the file succeeds with the SVID signed by the previous key (still
// in the bundle) and, once the sidecar has replaced it, with the new one.
func TestTokenFileAcrossKeyRotation(t *testing.T) {
	gw := devgw.Run(t)
	info := gw.Info
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	getToken := func() {
		t.Helper()
		// A new credential reads the file, as the SDK does when its copy expires.
		cred, err := azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
			ClientOptions: clientOptions(info, gw.Client), TenantID: info.TenantID, ClientID: info.ClientID,
			TokenFilePath: info.TokenFile, DisableInstanceDiscovery: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{info.Scope}})
		if err != nil {
			t.Fatalf("GetToken: %v", err)
		}
		verifyAccessToken(t, info, gw.Client, tok.Token)
	}
	getToken()
	before := fileKID(t, info.TokenFile)

	wl := gw.Dev.WorkloadAPI()
	if err := wl.Rotate(); err != nil {
		t.Fatal(err)
	}
	wl.Activate(false)
	getToken() // the file still holds the SVID of the previous key

	time.Sleep(1100 * time.Millisecond) // JWT expiry has one-second resolution
	client, err := workloadapi.New(ctx, workloadapi.WithAddr(info.WorkloadSocket))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if _, err := tokenfile.New(info.TokenFile, client).Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if after := fileKID(t, info.TokenFile); after == before {
		t.Fatalf("the refreshed file is still signed by %s", before)
	}
	getToken() // signed by the new key, which the gateway fetches on the kid miss
}

// TestAzcredAcrossWorkloadAPIRestart: the Go credential's JWTSource
// reconnects when the agent restarts on the same socket.
func TestAzcredAcrossWorkloadAPIRestart(t *testing.T) {
	gw := devgw.Run(t)
	info := gw.Info
	// A second Workload API with the development gateway's key and issuer
	// plays the node's agent, which the test restarts.
	sock := filepath.Join(t.TempDir(), "agent.sock")
	var agent *devworkload.Server
	startAgent := func() {
		t.Helper()
		var err error
		agent, err = devworkload.New(
			devworkload.WithKeyDir(filepath.Join(filepath.Dir(info.EnvFile), "workload")),
			devworkload.WithTrustDomain(gateway.DevTrustDomain), devworkload.WithSPIFFEID(info.SPIFFEID), devworkload.WithIssuer(info.Issuer))
		if err != nil {
			t.Fatal(err)
		}
		ln, err := devworkload.ListenUnix(sock)
		if err != nil {
			t.Fatal(err)
		}
		go agent.Serve(ln)
	}
	startAgent()
	defer func() { agent.Stop() }()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cred, err := azcred.New(ctx, info.TenantID, info.ClientID,
		azcred.WithWorkloadAPIAddr("unix://"+sock), azcred.WithAuthorityHost(info.AuthorityHost),
		azcred.WithInstanceDiscovery(false), azcred.WithClientOptions(clientOptions(info, gw.Client)))
	if err != nil {
		t.Fatal(err)
	}
	defer cred.Close()
	// Each scope is a separate cache entry, so each GetToken needs an assertion.
	scopes := []string{info.Scope, info.ResourceAppID + "/.default"}
	if _, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: scopes[:1]}); err != nil {
		t.Fatalf("GetToken before the restart: %v", err)
	}
	agent.Stop()
	down, cancelDown := context.WithTimeout(ctx, time.Second)
	if _, err := cred.GetToken(down, policy.TokenRequestOptions{Scopes: scopes[1:]}); err == nil {
		t.Fatal("GetToken succeeded while the agent was down")
	}
	cancelDown()
	startAgent()
	var lastErr error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: scopes[1:]})
		if lastErr = err; err == nil {
			verifyAccessToken(t, info, gw.Client, tok.Token)
			return
		}
	}
	t.Fatalf("no token after the agent restarted: %v", lastErr)
}
