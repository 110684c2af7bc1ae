// Package e2e runs the whole federation path in process: a development
// gateway, the real Azure SDK for Go, go-spiffe and go-oidc.
package e2e

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/dev/devtenant"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/dev/devworkload"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/gateway"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/devgw"
)

// devGateway starts a development gateway for the test.
var devGateway = devgw.Start

func clientOptions(info gateway.DevInfo, client *http.Client) azcore.ClientOptions {
	return azcore.ClientOptions{
		Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: info.AuthorityHost + "/"},
		Transport: client,
		Retry:     policy.RetryOptions{MaxRetries: -1},
	}
}

// fetchSVID returns a JWT-SVID for the token exchange audience from the
// Workload API at addr, through go-spiffe.
func fetchSVID(ctx context.Context, addr string) (string, error) {
	svid, err := workloadapi.FetchJWTSVID(ctx, jwtsvid.Params{Audience: directory.TokenExchangeAudience},
		workloadapi.WithAddr(addr))
	if err != nil {
		return "", err
	}
	return svid.Marshal(), nil
}

type accessClaims struct {
	Aud    string   `json:"aud"`
	Iss    string   `json:"iss"`
	TID    string   `json:"tid"`
	Azp    string   `json:"azp"`
	AzpACR string   `json:"azpacr"`
	Roles  []string `json:"roles"`
	Ver    string   `json:"ver"`
	OID    string   `json:"oid"`
	Sub    string   `json:"sub"`
}

// verifyAccessToken checks token with go-oidc against the gateway's own
// Entra discovery document and JWKS.
func verifyAccessToken(t *testing.T, info gateway.DevInfo, client *http.Client, token string) accessClaims {
	t.Helper()
	return verifyAccessTokenFor(t, info, client, info.TenantID, info.ResourceAppID, token)
}

// verifyAccessTokenFor verifies a v2 token of tenant for audience.
func verifyAccessTokenFor(t *testing.T, info gateway.DevInfo, client *http.Client, tenant, audience, token string) accessClaims {
	t.Helper()
	ctx := oidc.ClientContext(context.Background(), client)
	issuer := info.AuthorityHost + "/" + tenant + "/v2.0"
	provider, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatalf("discover %s: %v", issuer, err)
	}
	idt, err := provider.VerifierContext(ctx, &oidc.Config{ClientID: audience}).Verify(ctx, token)
	if err != nil {
		t.Fatalf("verify access token: %v", err)
	}
	var c accessClaims
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClientAssertionCredentialWithJWTSVID(t *testing.T) {
	info, client := devGateway(t)
	calls := 0
	cred, err := azidentity.NewClientAssertionCredential(info.TenantID, info.ClientID,
		func(ctx context.Context) (string, error) {
			calls++
			return fetchSVID(ctx, info.WorkloadSocket)
		},
		&azidentity.ClientAssertionCredentialOptions{ClientOptions: clientOptions(info, client), DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{info.Scope}})
	if err != nil {
		t.Fatalf("GetToken: %v", err)
	}
	if calls != 1 {
		t.Errorf("assertion callback called %d times, want 1", calls)
	}
	if until := time.Until(tok.ExpiresOn); until < 50*time.Minute || until > 61*time.Minute {
		t.Errorf("token expires in %v, want about an hour", until)
	}
	c := verifyAccessToken(t, info, client, tok.Token)
	want := accessClaims{
		Aud: info.ResourceAppID, Iss: info.AuthorityHost + "/" + info.TenantID + "/v2.0", TID: info.TenantID,
		Azp: info.ClientID, AzpACR: "2", Roles: []string{devtenant.Role}, Ver: "2.0", OID: c.OID, Sub: c.OID,
	}
	if c.OID == "" || !equalClaims(c, want) {
		t.Errorf("claims = %+v\nwant     %+v", c, want)
	}
	// A second request for the same scope is served from the SDK's cache.
	again, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{info.Scope}})
	if err != nil || again.Token != tok.Token || calls != 1 {
		t.Errorf("second GetToken: err=%v, same token=%v, callback calls=%d; want the cached token", err, again.Token == tok.Token, calls)
	}
}

func equalClaims(a, b accessClaims) bool {
	return a.Aud == b.Aud && a.Iss == b.Iss && a.TID == b.TID && a.Azp == b.Azp && a.AzpACR == b.AzpACR &&
		slices.Equal(a.Roles, b.Roles) && a.Ver == b.Ver && a.OID == b.OID && a.Sub == b.Sub
}

func TestClientSecretCredential(t *testing.T) {
	info, client := devGateway(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := &azidentity.ClientSecretCredentialOptions{ClientOptions: clientOptions(info, client), DisableInstanceDiscovery: true}

	cred, err := azidentity.NewClientSecretCredential(info.TenantID, info.ClientID, info.ClientSecret, opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{info.Scope}})
	if err != nil {
		t.Fatalf("GetToken with the development secret: %v", err)
	}
	if c := verifyAccessToken(t, info, client, tok.Token); c.AzpACR != "1" || c.Azp != info.ClientID {
		t.Errorf("azp=%q azpacr=%q, want %q and \"1\" for a secret", c.Azp, c.AzpACR, info.ClientID)
	}

	wrong, err := azidentity.NewClientSecretCredential(info.TenantID, info.ClientID, "not-the-secret", opts)
	if err != nil {
		t.Fatal(err)
	}
	_, err = wrong.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{info.Scope}})
	assertAuthFailure(t, err, 401, "AADSTS7000215")
}

// assertAuthFailure checks that the SDK surfaced the endpoint's status and
// AADSTS code.
func assertAuthFailure(t *testing.T, err error, status int, code string) {
	t.Helper()
	var authErr *azidentity.AuthenticationFailedError
	if !errors.As(err, &authErr) {
		t.Fatalf("error = %v, want an AuthenticationFailedError", err)
	}
	if authErr.RawResponse == nil || authErr.RawResponse.StatusCode != status {
		t.Errorf("status = %v, want %d", authErr.RawResponse, status)
	}
	if !strings.Contains(err.Error(), code) {
		t.Errorf("error does not name %s:\n%v", code, err)
	}
}

func TestAssertionWithUnknownSubject(t *testing.T) {
	info, client := devGateway(t)
	// A second development Workload API with the same signing key hands out
	// SVIDs for another SPIFFE ID: signed by a published key, but matching
	// no federated credential.
	dir := filepath.Dir(strings.TrimPrefix(info.WorkloadSocket, "unix://"))
	other, err := devworkload.New(
		devworkload.WithKeyDir(filepath.Join(dir, "workload")),
		devworkload.WithTrustDomain(gateway.DevTrustDomain),
		devworkload.WithSPIFFEID("spiffe://example.org/someone/else"),
		devworkload.WithIssuer(info.Issuer))
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "other.sock")
	ln, err := devworkload.ListenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = other.Serve(ln) }()
	t.Cleanup(other.Stop)

	cred, err := azidentity.NewClientAssertionCredential(info.TenantID, info.ClientID,
		func(ctx context.Context) (string, error) { return fetchSVID(ctx, "unix://"+sock) },
		&azidentity.ClientAssertionCredentialOptions{ClientOptions: clientOptions(info, client), DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{info.Scope}})
	assertAuthFailure(t, err, 401, "AADSTS700213")
	if !strings.Contains(err.Error(), "spiffe://example.org/someone/else") {
		t.Errorf("the error does not echo the presented subject:\n%v", err)
	}
}

func TestOIDCProviderVerifiesJWTSVID(t *testing.T) {
	info, client := devGateway(t)
	ctx, cancel := context.WithTimeout(oidc.ClientContext(context.Background(), client), 30*time.Second)
	defer cancel()
	svid, err := fetchSVID(ctx, info.WorkloadSocket)
	if err != nil {
		t.Fatal(err)
	}
	provider, err := oidc.NewProvider(ctx, info.Issuer)
	if err != nil {
		t.Fatalf("discover %s: %v", info.Issuer, err)
	}
	idt, err := provider.VerifierContext(ctx, &oidc.Config{ClientID: directory.TokenExchangeAudience}).Verify(ctx, svid)
	if err != nil {
		t.Fatalf("go-oidc rejects the JWT-SVID: %v", err)
	}
	if idt.Subject != "spiffe://example.org/dev/workload" || idt.Issuer != info.Issuer {
		t.Errorf("sub=%q iss=%q", idt.Subject, idt.Issuer)
	}
	if _, err := provider.VerifierContext(ctx, &oidc.Config{ClientID: "api://someone-else"}).Verify(ctx, svid); err == nil {
		t.Error("go-oidc accepted the JWT-SVID for another audience")
	}
}

// TestWorkloadIdentityCredentialWithDevTokenFile reads the token file the
// development gateway keeps, as an application with AZURE_FEDERATED_TOKEN_FILE does.
func TestWorkloadIdentityCredentialWithDevTokenFile(t *testing.T) {
	info, client := devGateway(t)
	env, err := os.ReadFile(info.EnvFile)
	if err != nil {
		t.Fatal(err)
	}
	if want := "export AZURE_FEDERATED_TOKEN_FILE='" + info.TokenFile + "'\n"; !strings.Contains(string(env), want) {
		t.Fatalf("dev.env lacks %q:\n%s", want, env)
	}
	cred, err := azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
		ClientOptions: clientOptions(info, client), TenantID: info.TenantID, ClientID: info.ClientID,
		TokenFilePath: info.TokenFile, DisableInstanceDiscovery: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{info.Scope}})
	if err != nil {
		t.Fatalf("GetToken: %v", err)
	}
	if c := verifyAccessToken(t, info, client, tok.Token); c.Azp != info.ClientID || c.AzpACR != "2" {
		t.Errorf("azp=%s azpacr=%s, want the client with a federated assertion", c.Azp, c.AzpACR)
	}

	// The same file for a client id the directory lacks: AADSTS700016.
	stranger, err := azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
		ClientOptions: clientOptions(info, client), TenantID: info.TenantID, ClientID: "00000000-0000-4000-8000-000000000001",
		TokenFilePath: info.TokenFile, DisableInstanceDiscovery: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = stranger.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{info.Scope}})
	assertAuthFailure(t, err, 400, "AADSTS700016")
}
