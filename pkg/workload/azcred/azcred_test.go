package azcred_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/gateway"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/workload/azcred"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/devgw"
)

// countingTransport counts token requests on their way to the gateway.
type countingTransport struct {
	client *http.Client
	tokens atomic.Int32
}

func (c *countingTransport) Do(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token") {
		c.tokens.Add(1)
	}
	return c.client.Do(r)
}

func options(info gateway.DevInfo, tr policy.Transporter) []azcred.Option {
	return []azcred.Option{
		azcred.WithAuthorityHost(info.AuthorityHost),
		azcred.WithInstanceDiscovery(false),
		azcred.WithClientOptions(azcore.ClientOptions{Transport: tr, Retry: policy.RetryOptions{MaxRetries: -1}}),
	}
}

func verify(t *testing.T, info gateway.DevInfo, client *http.Client, token string) map[string]any {
	t.Helper()
	ctx := oidc.ClientContext(context.Background(), client)
	provider, err := oidc.NewProvider(ctx, info.AuthorityHost+"/"+info.TenantID+"/v2.0")
	if err != nil {
		t.Fatal(err)
	}
	idt, err := provider.VerifierContext(ctx, &oidc.Config{ClientID: info.ResourceAppID}).Verify(ctx, token)
	if err != nil {
		t.Fatalf("verify access token: %v", err)
	}
	var claims map[string]any
	idt.Claims(&claims)
	return claims
}

func TestCredentialWithItsOwnSource(t *testing.T) {
	info, client := devgw.Start(t)
	tr := &countingTransport{client: client}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cred, err := azcred.New(ctx, info.TenantID, info.ClientID,
		append(options(info, tr), azcred.WithWorkloadAPIAddr(info.WorkloadSocket))...)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{info.Scope}})
	if err != nil {
		t.Fatal(err)
	}
	claims := verify(t, info, client, tok.Token)
	if claims["azp"] != info.ClientID || claims["azpacr"] != "2" || claims["tid"] != info.TenantID {
		t.Errorf("claims %v, want the client authenticated by a federated assertion", claims)
	}
	if again, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{info.Scope}}); err != nil || again.Token != tok.Token {
		t.Errorf("second GetToken: %v, same token %v", err, again.Token == tok.Token)
	}
	if n := tr.tokens.Load(); n != 1 {
		t.Errorf("%d token requests, want 1 (the second from the SDK's cache)", n)
	}
	if err := cred.Close(); err != nil {
		t.Fatal(err)
	}
	// Its own source is closed: a request the cache cannot serve fails.
	_, err = cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{info.ResourceAppID + "/.default"}, TenantID: ""})
	if err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("GetToken after Close = %v, want a closed-source error", err)
	}
}

func TestCredentialsShareASource(t *testing.T) {
	info, client := devgw.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	source, err := workloadapi.NewJWTSource(ctx, workloadapi.WithClientOptions(workloadapi.WithAddr(info.WorkloadSocket)))
	if err != nil {
		t.Fatal(err)
	}
	defer source.Close()
	tr := &countingTransport{client: client}
	first, err := azcred.New(ctx, info.TenantID, info.ClientID, append(options(info, tr), azcred.WithSource(source))...)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second, err := azcred.New(ctx, info.TenantID, info.ClientID,
		append(options(info, tr), azcred.WithSource(source), azcred.WithSPIFFEID(spiffeid.RequireFromString(info.SPIFFEID)))...)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	tok, err := second.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{info.Scope}})
	if err != nil {
		t.Fatalf("GetToken through a source another credential closed: %v", err)
	}
	verify(t, info, client, tok.Token)
}

func TestCredentialErrors(t *testing.T) {
	info, client := devgw.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr := &countingTransport{client: client}

	other := spiffeid.RequireFromString("spiffe://example.org/not/this/workload")
	cred, err := azcred.New(ctx, info.TenantID, info.ClientID,
		append(options(info, tr), azcred.WithWorkloadAPIAddr(info.WorkloadSocket), azcred.WithSPIFFEID(other))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cred.Close()
	_, err = cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{info.Scope}})
	if err == nil || !strings.Contains(err.Error(), other.String()) {
		t.Errorf("GetToken for an identity the workload lacks = %v, want an error naming it", err)
	}

	// An audience the federated credential does not list: Entra's AADSTS700212.
	cred, err = azcred.New(ctx, info.TenantID, info.ClientID,
		append(options(info, tr), azcred.WithWorkloadAPIAddr(info.WorkloadSocket), azcred.WithAudience("api://other"))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cred.Close()
	_, err = cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{info.Scope}})
	var authErr *azidentity.AuthenticationFailedError
	if !errors.As(err, &authErr) || authErr.RawResponse.StatusCode != http.StatusUnauthorized || !strings.Contains(err.Error(), "AADSTS700212") {
		t.Errorf("GetToken with audience api://other = %v, want AADSTS700212", err)
	}

	// No Workload API: New fails within its context, naming the source.
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelShort()
	if _, err := azcred.New(short, info.TenantID, info.ClientID, azcred.WithWorkloadAPIAddr("unix:///nonexistent/agent.sock")); err == nil || !strings.Contains(err.Error(), "JWT source") {
		t.Errorf("New without a Workload API = %v, want a JWT source error", err)
	}
}
