// Package azcred gives Go programs an Azure SDK credential backed by the
// workload's SPIFFE identity: azidentity's ClientAssertionCredential whose
// assertion is a JWT-SVID fetched through a go-spiffe JWTSource.
//
// Programs that only serve, and never call Azure, do not import this package,
// so the Azure SDK stays out of their binaries.
package azcred

import (
	"context"
	"errors"
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

// DefaultAudience is the audience Entra expects in a federated assertion.
const DefaultAudience = "api://AzureADTokenExchange"

// Credential is an azcore.TokenCredential that presents the workload's
// JWT-SVID to Entra as a client assertion.
type Credential struct {
	cred        *azidentity.ClientAssertionCredential
	source      *workloadapi.JWTSource
	ownsSource  bool
	params      jwtsvid.Params
	description string
}

var _ azcore.TokenCredential = (*Credential)(nil)

type options struct {
	source            *workloadapi.JWTSource
	addr              string
	audience          string
	extraAudiences    []string
	subject           spiffeid.ID
	authorityHost     string
	instanceDiscovery bool
	clientOptions     azcore.ClientOptions
}

// Option configures a Credential.
type Option func(*options)

// WithSource shares a JWTSource among credentials; Close leaves it open.
// Without it the credential opens its own source and closes it in Close.
func WithSource(s *workloadapi.JWTSource) Option { return func(o *options) { o.source = s } }

// WithWorkloadAPIAddr sets the Workload API address of the credential's own
// source (default $SPIFFE_ENDPOINT_SOCKET).
func WithWorkloadAPIAddr(addr string) Option { return func(o *options) { o.addr = addr } }

// WithAudience sets the JWT-SVID's audiences (default api://AzureADTokenExchange).
func WithAudience(aud string, extra ...string) Option {
	return func(o *options) { o.audience, o.extraAudiences = aud, extra }
}

// WithSPIFFEID selects the SVID of one SPIFFE ID when the workload has several.
func WithSPIFFEID(id spiffeid.ID) Option { return func(o *options) { o.subject = id } }

// WithAuthorityHost points the credential at an Entra-compatible authority
// such as the gateway's Entra endpoint (default: $AZURE_AUTHORITY_HOST, else
// Entra's public cloud).
func WithAuthorityHost(host string) Option { return func(o *options) { o.authorityHost = host } }

// WithInstanceDiscovery turns Entra instance discovery on or off (default on,
// as in azidentity). Any authority other than Entra's own hosts, the gateway
// included, needs it off: instance discovery asks login.microsoftonline.com.
func WithInstanceDiscovery(enabled bool) Option {
	return func(o *options) { o.instanceDiscovery = enabled }
}

// WithClientOptions sets the Azure SDK client options (transport, retries,
// logging). WithAuthorityHost, when also given, overrides their cloud's
// authority host.
func WithClientOptions(c azcore.ClientOptions) Option {
	return func(o *options) { o.clientOptions = c }
}

// New returns a credential for the app or managed identity clientID in
// tenantID. Without WithSource it connects to the Workload API and waits,
// within ctx, for the first JWT bundle.
func New(ctx context.Context, tenantID, clientID string, opts ...Option) (*Credential, error) {
	o := options{audience: DefaultAudience, instanceDiscovery: true}
	for _, opt := range opts {
		opt(&o)
	}
	c := &Credential{
		source:      o.source,
		params:      jwtsvid.Params{Audience: o.audience, ExtraAudiences: o.extraAudiences, Subject: o.subject},
		description: fmt.Sprintf("JWT-SVID for audience %q", o.audience),
	}
	if !o.subject.IsZero() {
		c.description += fmt.Sprintf(" and SPIFFE ID %q", o.subject)
	}
	if c.source == nil {
		var sourceOpts []workloadapi.JWTSourceOption
		if o.addr != "" {
			sourceOpts = append(sourceOpts, workloadapi.WithClientOptions(workloadapi.WithAddr(o.addr)))
		}
		source, err := workloadapi.NewJWTSource(ctx, sourceOpts...)
		if err != nil {
			return nil, fmt.Errorf("azcred: Workload API JWT source: %w", err)
		}
		c.source, c.ownsSource = source, true
	}
	clientOpts := o.clientOptions
	if o.authorityHost != "" {
		clientOpts.Cloud = cloud.Configuration{
			ActiveDirectoryAuthorityHost: o.authorityHost,
			Services:                     clientOpts.Cloud.Services,
		}
	}
	cred, err := azidentity.NewClientAssertionCredential(tenantID, clientID, c.assertion,
		&azidentity.ClientAssertionCredentialOptions{ClientOptions: clientOpts, DisableInstanceDiscovery: !o.instanceDiscovery})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("azcred: %w", err)
	}
	c.cred = cred
	return c, nil
}

// assertion is the ClientAssertionCredential callback. The SDK calls it only
// when it has no cached access token, so every call fetches: the Workload API
// decides how long to reuse an SVID.
func (c *Credential) assertion(ctx context.Context) (string, error) {
	svid, err := c.source.FetchJWTSVID(ctx, c.params)
	if err != nil {
		return "", fmt.Errorf("azcred: fetch %s: %w", c.description, err)
	}
	return svid.Marshal(), nil
}

// GetToken returns an access token for opts.Scopes, from the SDK's cache when
// it holds one.
func (c *Credential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return c.cred.GetToken(ctx, opts)
}

// Close releases the credential's own JWTSource; a shared one stays open.
func (c *Credential) Close() error {
	if !c.ownsSource || c.source == nil {
		return nil
	}
	if err := c.source.Close(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("azcred: close JWT source: %w", err)
	}
	return nil
}
