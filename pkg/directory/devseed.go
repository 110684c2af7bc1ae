package directory

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
)

// ManagedByDev marks the objects of the development seed.
const ManagedByDev = "dev"

// devNamespace derives the development seed's stable ids, so that every
// developer's dev.env names the same tenant and clients.
var devNamespace = uuid.MustParse("5b0b1c4e-3d7a-4a43-9d8e-2f7c0a9e6b11")

func devID(name string) string { return uuid.NewSHA1(devNamespace, []byte(name)).String() }

// The development seed's well-known values.
var (
	DevTenantID           = devID("tenant")
	DevResourceAppID      = devID("resource-app")
	DevClientAppID        = devID("client-app")
	DevResourceURI        = "api://spiffe-entra-gateway-dev"
	DevRole               = "Data.Read"
	DevTenantDomain       = "dev.localhost"
	DevFederatedName      = "dev-workload-spiffe"
	DevSubscriptionID     = devID("subscription")
	TokenExchangeAudience = "api://AzureADTokenExchange"
)

// DevSeedParams are the values of the development seed that depend on how
// the gateway runs.
type DevSeedParams struct {
	Issuer     string // the OIDC listener's issuer, the federated credential's issuer
	Subject    string // the development workload's SPIFFE ID
	SecretFile string // where the client secret is kept between starts (0600)
}

// DevSeed describes the seeded objects a developer needs.
type DevSeed struct {
	TenantID      string
	ClientID      string
	ClientSecret  string
	ResourceAppID string
	Scope         string // <resource>/.default
	// SubscriptionID is the development tenant's subscription, on which the
	// client is Owner for the ARM shaped API.
	SubscriptionID string
}

// EnsureDevSeed creates the development tenant, a resource app with an app
// role, and a client app holding a client secret, that role, Graph's
// Application.ReadWrite.All, Owner on the development subscription and a
// federated credential for p.Subject at p.Issuer. It is idempotent: on later starts it
// only brings the federated credential's issuer and subject up to date.
func EnsureDevSeed(ctx context.Context, s store.Store, p DevSeedParams, now time.Time) (DevSeed, error) {
	seed := DevSeed{TenantID: DevTenantID, ClientID: DevClientAppID, ResourceAppID: DevResourceAppID, Scope: DevResourceURI + "/.default",
		SubscriptionID: DevSubscriptionID}
	steps := []func() error{
		func() error {
			return ignoreExists(s.CreateTenant(ctx, store.Tenant{ID: DevTenantID, DisplayName: "Development", Domains: []string{DevTenantDomain}, ManagedBy: ManagedByDev}))
		},
		func() error {
			return ensureApp(ctx, s, "resource-app", DevResourceAppID, "dev-resource-api", now, DevResourceURI)
		},
		func() error { return ensureApp(ctx, s, "client-app", DevClientAppID, "dev-workload", now) },
		func() error {
			return ignoreExists(s.CreateAppRoleAssignment(ctx, store.AppRoleAssignment{
				ID: devID("assignment"), PrincipalID: devID("client-app/sp"), ResourceID: devID("resource-app/sp"),
				AppRoleID: devID("role/" + DevRole), ManagedBy: ManagedByDev,
			}))
		},
		func() error { return ensureDevFederatedCredential(ctx, s, p, now) },
		func() error { return EnsureMicrosoftResources(ctx, s, DevTenantID, now) },
		// The development client may call the Graph and ARM shaped APIs.
		func() error {
			return ignoreExists(s.CreateAppRoleAssignment(ctx, store.AppRoleAssignment{
				ID: devID("assignment/graph"), PrincipalID: devID("client-app/sp"), ResourceID: MicrosoftObjectID(DevTenantID, GraphAppID+"/sp"),
				AppRoleID: GraphApplicationReadWriteAllID, ManagedBy: ManagedByDev,
			}))
		},
		// ARM needs an Azure role: the client owns the development
		// subscription, as whoever created a subscription does in Azure.
		func() error {
			return ignoreExists(s.CreateSubscription(ctx, store.Subscription{ID: DevSubscriptionID, TenantID: DevTenantID, DisplayName: "Development", ManagedBy: ManagedByDev}))
		},
		func() error {
			return ignoreExists(s.CreateRoleAssignment(ctx, store.RoleAssignment{
				ID: devID("azure-role/owner"), TenantID: DevTenantID, Scope: "/subscriptions/" + DevSubscriptionID,
				RoleDefinitionID: RoleOwner.ID, PrincipalID: devID("client-app/sp"), ManagedBy: ManagedByDev, CreatedAt: now.UTC(),
			}))
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return seed, fmt.Errorf("dev seed: %w", err)
		}
	}
	secret, err := ensureDevSecret(ctx, s, p.SecretFile, now)
	if err != nil {
		return seed, fmt.Errorf("dev seed: %w", err)
	}
	seed.ClientSecret = secret
	return seed, nil
}

func ensureApp(ctx context.Context, s store.Store, key, appID, name string, now time.Time, uris ...string) error {
	app := store.Application{
		ObjectID: devID(key), TenantID: DevTenantID, AppID: appID, DisplayName: name,
		IdentifierURIs: uris, AccessTokenAcceptedVersion: 2, ManagedBy: ManagedByDev, CreatedAt: now.UTC(),
	}
	if len(uris) > 0 {
		app.AppRoles = []store.AppRole{{
			ID: devID("role/" + DevRole), Value: DevRole, DisplayName: "Read data",
			Description: "Development role granted to the development workload", AllowedMemberTypes: []string{"Application"}, IsEnabled: true,
		}}
	}
	if err := ignoreExists(s.CreateApplication(ctx, app, nil, nil)); err != nil {
		return err
	}
	return ignoreExists(s.CreateServicePrincipal(ctx, store.ServicePrincipal{
		ObjectID: devID(key + "/sp"), TenantID: DevTenantID, AppID: appID, DisplayName: name, ManagedBy: ManagedByDev,
	}))
}

func ensureDevFederatedCredential(ctx context.Context, s store.Store, p DevSeedParams, now time.Time) error {
	want := store.FederatedCredential{
		ID: devID("fic"), OwnerID: devID("client-app"), Name: DevFederatedName, Issuer: p.Issuer, Subject: p.Subject,
		Audiences: []string{TokenExchangeAudience}, Description: "Development workload from the development Workload API",
		ManagedBy: ManagedByDev, CreatedAt: now.UTC(),
	}
	have, err := s.GetFederatedCredential(ctx, want.OwnerID, want.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return s.CreateFederatedCredential(ctx, want)
	case err != nil:
		return err
	case have.Issuer == want.Issuer && have.Subject == want.Subject:
		return nil
	}
	return s.UpdateFederatedCredential(ctx, want.OwnerID, want.ID, store.Replace(want))
}

// ensureDevSecret reuses the secret kept in file when the client still has
// it, and otherwise adds a new one and keeps it there. Only the development
// seed keeps a plaintext secret, so that dev.env stays valid across restarts.
func ensureDevSecret(ctx context.Context, s store.Store, file string, now time.Time) (string, error) {
	creds, err := s.ListPasswordCredentials(ctx, devID("client-app"))
	if err != nil {
		return "", err
	}
	if data, err := os.ReadFile(file); err == nil {
		secret := strings.TrimSpace(string(data))
		if CheckSecret(creds, secret, now) == SecretValid {
			return secret, nil
		}
	}
	cred, secret, err := NewPasswordCredential(devID("client-app"), "development secret", now, 2*365*24*time.Hour)
	if err != nil {
		return "", err
	}
	cred.ManagedBy = ManagedByDev
	if err := s.AddPasswordCredential(ctx, cred); err != nil {
		return "", err
	}
	if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("keep the development secret in %s: %w", file, err)
	}
	return secret, nil
}

func ignoreExists(err error) error {
	if errors.Is(err, store.ErrAlreadyExists) {
		return nil
	}
	return err
}
