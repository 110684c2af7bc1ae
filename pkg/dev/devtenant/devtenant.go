// Package devtenant is the development gateway's directory as a seed
// document: a tenant, a resource API with an app role, and a client app
// with a client secret, that role, Graph's Application.ReadWrite.All, Owner
// on the development subscription and a federated credential for the
// development workload. serve --dev applies
// it through the same seed path as a production seed file.
package devtenant

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/google/uuid"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/seed"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
)

// namespace derives the well-known ids, so that every developer's dev.env
// names the same tenant and clients.
var namespace = uuid.MustParse("5b0b1c4e-3d7a-4a43-9d8e-2f7c0a9e6b11")

func id(name string) string { return uuid.NewSHA1(namespace, []byte(name)).String() }

// The development tenant's well-known values.
var (
	TenantID      = id("tenant")
	ResourceAppID = id("resource-app")
	ClientAppID   = id("client-app")
	ResourceURI   = "api://spiffe-entra-gateway-dev"
	Role          = "Data.Read"
	Domain        = "dev.localhost"
	// SubscriptionID is the development tenant's subscription, on which
	// the client is Owner for the ARM shaped API.
	SubscriptionID = id("subscription")
	// Scope is what the client asks for: every role it holds on the
	// resource.
	Scope = ResourceURI + "/.default"
)

// Document is the development tenant, its federated credential trusting
// subject at issuer and its client accepting the secret in secretFile.
func Document(issuer, subject, secretFile string) seed.File {
	return seed.File{Tenants: []seed.Tenant{{
		ID: TenantID, DisplayName: "Development", Domains: []string{Domain},
		Subscriptions: []seed.Subscription{{ID: SubscriptionID, DisplayName: "Development"}},
		Applications: []seed.Application{
			{
				Name: "dev-resource-api", AppID: ResourceAppID, IdentifierURIs: []string{ResourceURI}, AccessTokenAcceptedVersion: 2,
				AppRoles: []seed.AppRole{{Value: Role, DisplayName: "Read data", Description: "Development role granted to the development workload"}},
			},
			{
				Name: "dev-workload", AppID: ClientAppID, AccessTokenAcceptedVersion: 2,
				ClientSecretFiles: []string{secretFile},
				FederatedCredentials: []seed.FederatedCredential{{
					Name: "dev-workload-spiffe", Issuer: issuer, Subject: subject,
					Description: "Development workload from the development Workload API",
				}},
				RoleAssignments: []seed.RoleAssignment{
					{Resource: ResourceURI, Role: Role},
					// The development client may call the Graph and ARM
					// shaped APIs.
					{Resource: directory.GraphResource, Role: directory.GraphApplicationReadWriteAll},
				},
				// ARM needs an Azure role: the client owns the development
				// subscription, as whoever created a subscription does in
				// Azure.
				AzureRoleAssignments: []seed.AzureRoleAssignment{{Role: "Owner", Scope: "/subscriptions/" + SubscriptionID}},
			},
		},
	}}}
}

// EnsureSecret returns the client secret kept in file, creating it (0600)
// on the first start, so that dev.env stays valid across restarts. Only the
// development tenant keeps a secret in plain text.
func EnsureSecret(file string) (string, error) {
	if data, err := os.ReadFile(file); err == nil {
		if secret := strings.TrimSpace(string(data)); len(secret) >= 16 {
			return secret, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("development client secret: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	secret := base64.RawURLEncoding.EncodeToString(raw)
	if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("keep the development client secret in %s: %w", file, err)
	}
	return secret, nil
}

// retiredManagedBy marked the objects of the development seeder that this
// document replaced.
const retiredManagedBy = "dev"

// Migrate deletes the development applications an earlier version seeded
// by other means (and with other object ids) from a reused data directory,
// so that the document can take their application ids.
func Migrate(ctx context.Context, s store.Store) error {
	apps, err := s.ListApplications(ctx, TenantID)
	if err != nil {
		return err
	}
	for _, app := range apps {
		if app.ManagedBy == retiredManagedBy {
			if err := s.DeleteApplication(ctx, app.ObjectID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("retire development application %s: %w", app.AppID, err)
			}
		}
	}
	return nil
}
