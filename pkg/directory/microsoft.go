package directory

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
)

// Microsoft's first-party resources that every Entra tenant holds and the
// gateway's management APIs answer for.
const (
	// GraphAppID is Microsoft Graph's application id.
	GraphAppID = "00000003-0000-0000-c000-000000000000"
	// GraphResource is Graph's identifier URI, the audience of its tokens.
	GraphResource = "https://graph.microsoft.com"
	// GraphApplicationReadWriteAll is the app role that allows the Graph
	// calls the gateway serves.
	GraphApplicationReadWriteAll = "Application.ReadWrite.All"
	// GraphApplicationReadWriteAllID is that role's id in Graph.
	GraphApplicationReadWriteAllID = "1bfefb4e-e0b5-418b-a88f-73c46d2cc8e9"
	// GraphApplicationReadWriteOwnedBy allows creating applications and
	// managing those the caller owns.
	GraphApplicationReadWriteOwnedBy = "Application.ReadWrite.OwnedBy"
	// GraphApplicationReadWriteOwnedByID is that role's id in Graph.
	GraphApplicationReadWriteOwnedByID = "18a4783c-866b-4cc7-a460-3d5e5662c884"
	// ARMAppID is Azure Resource Manager's application id.
	ARMAppID = "797f4846-ba00-4fd7-ba43-dac1f8f63013"
	// ManagedByMicrosoft marks the first-party resources: neither the seed
	// nor the APIs delete them.
	ManagedByMicrosoft = "microsoft"
)

// ARMResources are Azure Resource Manager's identifier URIs; az asks for
// the second.
var ARMResources = []string{"https://management.azure.com/", "https://management.core.windows.net/"}

var microsoftNamespace = uuid.MustParse("0b6e3f1d-57a2-4c1b-9a5e-8d3c2b1a0f9e")

// MicrosoftObjectID is the object id of a first-party object in a tenant,
// the same in every replica.
func MicrosoftObjectID(tenantID, name string) string {
	return uuid.NewSHA1(microsoftNamespace, []byte(tenantID+"/"+name)).String()
}

// EnsureMicrosoftResources creates Microsoft Graph (with its
// Application.ReadWrite.All and Application.ReadWrite.OwnedBy app roles) and Azure Resource Manager as
// applications with service principals in the tenant, unless present, so
// that clients can get tokens for them and call the management APIs.
func EnsureMicrosoftResources(ctx context.Context, s store.Store, tenantID string, now time.Time) error {
	apps := []store.Application{
		{
			ObjectID: MicrosoftObjectID(tenantID, "graph"), TenantID: tenantID, AppID: GraphAppID, DisplayName: "Microsoft Graph",
			IdentifierURIs: []string{GraphResource}, ManagedBy: ManagedByMicrosoft, CreatedAt: now.UTC(),
			AppRoles: []store.AppRole{{
				ID: GraphApplicationReadWriteAllID, Value: GraphApplicationReadWriteAll, DisplayName: "Read and write all applications",
				Description:        "Allows the app to create, read, update and delete applications and service principals.",
				AllowedMemberTypes: []string{"Application"}, IsEnabled: true,
			}, {
				ID: GraphApplicationReadWriteOwnedByID, Value: GraphApplicationReadWriteOwnedBy, DisplayName: "Manage apps that this app creates or owns",
				Description:        "Allows the app to create other applications, and fully manage those applications, but not others.",
				AllowedMemberTypes: []string{"Application"}, IsEnabled: true,
			}},
		},
		{
			ObjectID: MicrosoftObjectID(tenantID, "arm"), TenantID: tenantID, AppID: ARMAppID, DisplayName: "Windows Azure Service Management API",
			IdentifierURIs: ARMResources, ManagedBy: ManagedByMicrosoft, CreatedAt: now.UTC(),
		},
	}
	for _, app := range apps {
		have, err := s.GetApplicationByAppID(ctx, tenantID, app.AppID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			err = ignoreExists(s.CreateApplication(ctx, app, nil, nil))
		case err == nil && have.ManagedBy == ManagedByMicrosoft && !slices.EqualFunc(have.AppRoles, app.AppRoles, func(a, b store.AppRole) bool { return a.ID == b.ID && a.Value == b.Value }):
			// A directory from an earlier version gains the roles added since.
			err = s.UpdateApplication(ctx, have.ObjectID, store.Replace(app))
		}
		if err != nil {
			return err
		}
		if err := ignoreExists(s.CreateServicePrincipal(ctx, store.ServicePrincipal{
			ObjectID: MicrosoftObjectID(tenantID, app.AppID+"/sp"), TenantID: tenantID, AppID: app.AppID,
			DisplayName: app.DisplayName, ManagedBy: ManagedByMicrosoft,
		})); err != nil {
			return err
		}
	}
	return nil
}

func ignoreExists(err error) error {
	if errors.Is(err, store.ErrAlreadyExists) {
		return nil
	}
	return err
}
