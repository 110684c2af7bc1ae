package readcache

import (
	"context"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
)

// View is the cache at one generation, for one request. Its lookups are
// the store's, with the same arguments and answers. What they return is
// shared with every request of the generation: callers read it and never
// modify it, nor the slices it holds.
type View struct {
	c   *Cache
	gen string
}

// GetTenant is store.Store.GetTenant.
func (v View) GetTenant(ctx context.Context, id string) (store.Tenant, error) {
	return lookup(v, key{kind: tenantByID, name: id}, func() (store.Tenant, error) {
		return v.c.store.GetTenant(ctx, id)
	})
}

// GetTenantByDomain is store.Store.GetTenantByDomain.
func (v View) GetTenantByDomain(ctx context.Context, domain string) (store.Tenant, error) {
	return lookup(v, key{kind: tenantByDomain, name: domain}, func() (store.Tenant, error) {
		return v.c.store.GetTenantByDomain(ctx, domain)
	})
}

// appWithPrincipal is what the GetApplicationWithPrincipal lookups return.
type appWithPrincipal struct {
	app store.Application
	sp  store.ServicePrincipal
}

// GetApplicationWithPrincipalByAppID is
// store.Store.GetApplicationWithPrincipalByAppID.
func (v View) GetApplicationWithPrincipalByAppID(ctx context.Context, tenantID, appID string) (store.Application, store.ServicePrincipal, error) {
	found, err := lookup(v, key{kind: appByAppID, scope: tenantID, name: appID}, func() (appWithPrincipal, error) {
		app, sp, err := v.c.store.GetApplicationWithPrincipalByAppID(ctx, tenantID, appID)
		return appWithPrincipal{app, sp}, err
	})
	return found.app, found.sp, err
}

// GetApplicationWithPrincipalByIdentifierURI is
// store.Store.GetApplicationWithPrincipalByIdentifierURI.
func (v View) GetApplicationWithPrincipalByIdentifierURI(ctx context.Context, tenantID, uri string) (store.Application, store.ServicePrincipal, error) {
	found, err := lookup(v, key{kind: appByIdentifierURI, scope: tenantID, name: uri}, func() (appWithPrincipal, error) {
		app, sp, err := v.c.store.GetApplicationWithPrincipalByIdentifierURI(ctx, tenantID, uri)
		return appWithPrincipal{app, sp}, err
	})
	return found.app, found.sp, err
}

// GetManagedIdentityByClientID is store.Store.GetManagedIdentityByClientID.
func (v View) GetManagedIdentityByClientID(ctx context.Context, tenantID, clientID string) (store.ManagedIdentity, error) {
	return lookup(v, key{kind: managedIdentityByClientID, scope: tenantID, name: clientID}, func() (store.ManagedIdentity, error) {
		return v.c.store.GetManagedIdentityByClientID(ctx, tenantID, clientID)
	})
}

// ListFederatedCredentials is store.Store.ListFederatedCredentials.
func (v View) ListFederatedCredentials(ctx context.Context, ownerID string) ([]store.FederatedCredential, error) {
	return lookup(v, key{kind: federatedCredentials, name: ownerID}, func() ([]store.FederatedCredential, error) {
		return v.c.store.ListFederatedCredentials(ctx, ownerID)
	})
}

// ListPasswordCredentials is store.Store.ListPasswordCredentials.
func (v View) ListPasswordCredentials(ctx context.Context, ownerID string) ([]store.PasswordCredential, error) {
	return lookup(v, key{kind: passwordCredentials, name: ownerID}, func() ([]store.PasswordCredential, error) {
		return v.c.store.ListPasswordCredentials(ctx, ownerID)
	})
}

// ListKeyCredentials is store.Store.ListKeyCredentials.
func (v View) ListKeyCredentials(ctx context.Context, ownerID string) ([]store.KeyCredential, error) {
	return lookup(v, key{kind: keyCredentials, name: ownerID}, func() ([]store.KeyCredential, error) {
		return v.c.store.ListKeyCredentials(ctx, ownerID)
	})
}

// ListAppRoleAssignments is store.Store.ListAppRoleAssignments.
func (v View) ListAppRoleAssignments(ctx context.Context, principalID string) ([]store.AppRoleAssignment, error) {
	return lookup(v, key{kind: appRoleAssignments, name: principalID}, func() ([]store.AppRoleAssignment, error) {
		return v.c.store.ListAppRoleAssignments(ctx, principalID)
	})
}

// GetUserByUPN is store.Store.GetUserByUPN.
func (v View) GetUserByUPN(ctx context.Context, tenantID, upn string) (store.User, error) {
	return lookup(v, key{kind: userByUPN, scope: tenantID, name: upn}, func() (store.User, error) {
		return v.c.store.GetUserByUPN(ctx, tenantID, upn)
	})
}
