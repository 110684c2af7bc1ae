// Package conformance is the behaviour every store.Store backend must have,
// as one suite that each backend's tests run against a fresh, empty store.
package conformance

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
)

// Opener returns a new, empty store and a way to open another handle on
// the same database (as a second replica has), all closed when t ends.
type Opener func(t *testing.T) (s store.Store, another func() store.Store)

// Run runs the whole suite, each test against its own store.
func Run(t *testing.T, open Opener) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, store.Store)
	}{
		{"Tenants", testTenants},
		{"Applications", testApplications},
		{"DeleteApplicationCascades", testDeleteApplication},
		{"ApplicationOwners", testApplicationOwners},
		{"ServicePrincipals", testServicePrincipals},
		{"Secrets", testSecrets},
		{"Certificates", testCertificates},
		{"FederatedCredentials", testFederatedCredentials},
		{"FederatedCredentialLimitUnderRace", testFederatedLimitRace},
		{"AppRoleAssignments", testAppRoleAssignments},
		{"ManagedIdentities", testManagedIdentities},
		{"Subscriptions", testSubscriptions},
		{"RoleAssignments", testRoleAssignments},
		{"PublicClients", testPublicClients},
		{"Users", testUsers},
		{"SigningKeys", testSigningKeys},
		{"SigningKeyRace", testSigningKeyRace},
		{"Ping", func(t *testing.T, s store.Store) { must(t, s.Ping(context.Background())) }},
		{"UpdateAbortedByItsFunction", testUpdateAborted},
		{"CreateApplicationAtomic", testCreateApplicationAtomic},
		{"FailIfBusy", testFailIfBusy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := open(t)
			tc.fn(t, s)
		})
	}
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, a, b store.Store)
	}{
		{"ConcurrentApplicationUpdates", testConcurrentApplicationUpdates},
		{"ConcurrentFederatedCredentialUpdates", testConcurrentFederatedUpdates},
		{"ConcurrentTenantAndUserUpdates", testConcurrentTenantAndUserUpdates},
		{"Generation", testGeneration},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, another := open(t)
			tc.fn(t, a, another())
		})
	}
}

const (
	tenantID = "6f0c2a4e-1b7d-4c55-9f3e-2d8a1b7c9e10"
	otherTID = "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9"
)

// at is a time with millisecond precision, which every backend keeps.
var at = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: got %v, want %v", what, err, want)
	}
}

func same[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}

func seedTenant(t *testing.T, s store.Store) {
	t.Helper()
	must(t, s.CreateTenant(context.Background(), store.Tenant{ID: tenantID, DisplayName: "Contoso", Domains: []string{"contoso.example"}}))
}

func testTenants(t *testing.T, s store.Store) {
	ctx := context.Background()
	tn := store.Tenant{ID: tenantID, DisplayName: "Contoso", Domains: []string{"contoso.example", "contoso.onmicrosoft.example"}, ManagedBy: store.ManagedBySeed}
	must(t, s.CreateTenant(ctx, tn))
	got, err := s.GetTenant(ctx, tenantID)
	must(t, err)
	same(t, "GetTenant", got, tn)
	got, err = s.GetTenantByDomain(ctx, "CONTOSO.example")
	must(t, err)
	same(t, "GetTenantByDomain is case-insensitive", got.ID, tenantID)

	wantErr(t, "duplicate id", s.CreateTenant(ctx, store.Tenant{ID: tenantID}), store.ErrAlreadyExists)
	wantErr(t, "a domain of another tenant", s.CreateTenant(ctx, store.Tenant{ID: otherTID, Domains: []string{"Contoso.Example"}}), store.ErrAlreadyExists)
	if _, err := s.GetTenant(ctx, otherTID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a failed create left a tenant behind: %v", err)
	}
	_, err = s.GetTenantByDomain(ctx, "fabrikam.example")
	wantErr(t, "unknown domain", err, store.ErrNotFound)

	tn.DisplayName, tn.Domains = "Contoso Ltd", []string{"contoso.example"}
	must(t, s.UpdateTenant(ctx, tn.ID, store.Replace(tn)))
	got, err = s.GetTenant(ctx, tenantID)
	must(t, err)
	same(t, "after update", got, tn)
	_, err = s.GetTenantByDomain(ctx, "contoso.onmicrosoft.example")
	wantErr(t, "a removed domain", err, store.ErrNotFound)
	wantErr(t, "update of a missing tenant", s.UpdateTenant(ctx, otherTID, store.Replace(store.Tenant{})), store.ErrNotFound)

	must(t, s.CreateTenant(ctx, store.Tenant{ID: otherTID, DisplayName: "Fabrikam", Domains: []string{}}))
	all, err := s.ListTenants(ctx)
	must(t, err)
	if len(all) != 2 {
		t.Errorf("ListTenants: %d tenants, want 2", len(all))
	}
}

func app(objectID, appID string, uris ...string) store.Application {
	if uris == nil {
		uris = []string{}
	}
	return store.Application{ObjectID: objectID, TenantID: tenantID, AppID: appID, DisplayName: objectID, IdentifierURIs: uris,
		AppRoles: []store.AppRole{}, AccessTokenAcceptedVersion: 2, CreatedAt: at}
}

func testApplications(t *testing.T, s store.Store) {
	ctx := context.Background()
	wantErr(t, "an app in a missing tenant", s.CreateApplication(ctx, app("o1", "c1"), nil, nil), store.ErrNotFound)
	seedTenant(t, s)
	a := app("o1", "c1", "api://payments", "https://payments.contoso.example")
	a.AppRoles = []store.AppRole{{ID: "r1", Value: "Payments.Read", DisplayName: "Read", AllowedMemberTypes: []string{"Application"}, IsEnabled: true}}
	a.PermissionScopes = []store.PermissionScope{{ID: "s1", Value: "Payments.Submit", AdminConsentDisplayName: "Submit payments", IsEnabled: true}}
	must(t, s.CreateApplication(ctx, a, nil, nil))
	for name, get := range map[string]func() (store.Application, error){
		"GetApplication":        func() (store.Application, error) { return s.GetApplication(ctx, "o1") },
		"GetApplicationByAppID": func() (store.Application, error) { return s.GetApplicationByAppID(ctx, tenantID, "c1") },
		"GetApplicationByIdentifierURI": func() (store.Application, error) {
			return s.GetApplicationByIdentifierURI(ctx, tenantID, "api://payments")
		},
	} {
		got, err := get()
		must(t, err)
		same(t, name, got, a)
	}
	_, err := s.GetApplicationByAppID(ctx, otherTID, "c1")
	wantErr(t, "appId in another tenant", err, store.ErrNotFound)
	wantErr(t, "duplicate appId", s.CreateApplication(ctx, app("o2", "c1"), nil, nil), store.ErrAlreadyExists)
	wantErr(t, "duplicate identifier URI", s.CreateApplication(ctx, app("o2", "c2", "api://payments"), nil, nil), store.ErrAlreadyExists)
	if _, err := s.GetApplication(ctx, "o2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a failed create left an application behind: %v", err)
	}

	a.DisplayName, a.IdentifierURIs, a.AccessTokenAcceptedVersion = "payments", []string{"api://payments-v2"}, 1
	must(t, s.UpdateApplication(ctx, a.ObjectID, store.Replace(a)))
	got, err := s.GetApplication(ctx, "o1")
	must(t, err)
	same(t, "after update", got, a)
	_, err = s.GetApplicationByIdentifierURI(ctx, tenantID, "api://payments")
	wantErr(t, "a removed identifier URI", err, store.ErrNotFound)
	wantErr(t, "update of a missing app", s.UpdateApplication(ctx, "o9", store.Replace(app("o9", "c9"))), store.ErrNotFound)

	must(t, s.CreateApplication(ctx, app("o2", "c2", "api://payments"), nil, nil))
	list, err := s.ListApplications(ctx, tenantID)
	must(t, err)
	if len(list) != 2 {
		t.Errorf("ListApplications: %d, want 2", len(list))
	}
}

func testDeleteApplication(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedTenant(t, s)
	must(t, s.CreateApplication(ctx, app("client", "c1"), nil, nil))
	must(t, s.CreateApplication(ctx, app("resource", "r1", "api://r"), nil, nil))
	must(t, s.CreateServicePrincipal(ctx, store.ServicePrincipal{ObjectID: "sp-client", TenantID: tenantID, AppID: "c1"}))
	must(t, s.CreateServicePrincipal(ctx, store.ServicePrincipal{ObjectID: "sp-resource", TenantID: tenantID, AppID: "r1"}))
	must(t, s.AddPasswordCredential(ctx, store.PasswordCredential{KeyID: "k", OwnerID: "client", Salt: []byte{1}, Hash: []byte{2}, StartDateTime: at, EndDateTime: at}))
	must(t, s.CreateFederatedCredential(ctx, fic("client", "f", "https://issuer", "sub")))
	must(t, s.CreateAppRoleAssignment(ctx, store.AppRoleAssignment{ID: "ra", PrincipalID: "sp-client", ResourceID: "sp-resource", AppRoleID: "role"}))

	must(t, s.DeleteApplication(ctx, "client"))
	_, err := s.GetApplication(ctx, "client")
	wantErr(t, "deleted app", err, store.ErrNotFound)
	_, err = s.GetServicePrincipal(ctx, "sp-client")
	wantErr(t, "its service principal", err, store.ErrNotFound)
	if l, _ := s.ListPasswordCredentials(ctx, "client"); len(l) != 0 {
		t.Errorf("secrets survived: %v", l)
	}
	if l, _ := s.FindFederatedCredentials(ctx, "https://issuer", "sub"); len(l) != 0 {
		t.Errorf("federated credentials survived: %v", l)
	}
	if l, _ := s.ListAppRoleAssignments(ctx, "sp-client"); len(l) != 0 {
		t.Errorf("role assignments survived: %v", l)
	}
	if _, err := s.GetApplication(ctx, "resource"); err != nil {
		t.Errorf("another app went with it: %v", err)
	}
	wantErr(t, "deleting it again", s.DeleteApplication(ctx, "client"), store.ErrNotFound)
	// The app id is free again.
	must(t, s.CreateApplication(ctx, app("client2", "c1"), nil, nil))
}

func testServicePrincipals(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedTenant(t, s)
	sp := store.ServicePrincipal{ObjectID: "sp1", TenantID: tenantID, AppID: "c1", DisplayName: "worker", ManagedBy: store.ManagedBySeed}
	must(t, s.CreateServicePrincipal(ctx, sp))
	got, err := s.GetServicePrincipalByAppID(ctx, tenantID, "c1")
	must(t, err)
	same(t, "GetServicePrincipalByAppID", got, sp)
	got, err = s.GetServicePrincipal(ctx, "sp1")
	must(t, err)
	same(t, "GetServicePrincipal", got, sp)
	wantErr(t, "second service principal for one appId", s.CreateServicePrincipal(ctx, store.ServicePrincipal{ObjectID: "sp2", TenantID: tenantID, AppID: "c1"}), store.ErrAlreadyExists)
	list, err := s.ListServicePrincipals(ctx, tenantID)
	must(t, err)
	same(t, "ListServicePrincipals", list, []store.ServicePrincipal{sp})

	// The joined lookups: with the principal, and without one.
	a := app("o1", "c1", "api://payments")
	must(t, s.CreateApplication(ctx, a, nil, nil))
	must(t, s.CreateApplication(ctx, app("o2", "c2", "api://alone"), nil, nil))
	a, err = s.GetApplication(ctx, "o1")
	must(t, err)
	for _, by := range []func(c, uri string) (store.Application, store.ServicePrincipal, error){
		func(c, _ string) (store.Application, store.ServicePrincipal, error) {
			return s.GetApplicationWithPrincipalByAppID(ctx, tenantID, c)
		},
		func(_, uri string) (store.Application, store.ServicePrincipal, error) {
			return s.GetApplicationWithPrincipalByIdentifierURI(ctx, tenantID, uri)
		},
	} {
		gotApp, gotSP, err := by("c1", "api://payments")
		must(t, err)
		same(t, "application with its principal", gotApp, a)
		same(t, "its principal", gotSP, sp)
		gotApp, gotSP, err = by("c2", "api://alone")
		must(t, err)
		same(t, "application without a principal", gotApp.ObjectID, "o2")
		same(t, "no principal", gotSP, store.ServicePrincipal{})
		_, _, err = by("c3", "api://missing")
		wantErr(t, "no such application", err, store.ErrNotFound)
	}
	_, _, err = s.GetApplicationWithPrincipalByAppID(ctx, otherTID, "c1")
	wantErr(t, "appId in another tenant", err, store.ErrNotFound)
}

func testAppRoleAssignments(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := store.AppRoleAssignment{ID: "ra1", PrincipalID: "sp-client", ResourceID: "sp-res", AppRoleID: "role-1", ManagedBy: store.ManagedBySeed}
	must(t, s.CreateAppRoleAssignment(ctx, a))
	wantErr(t, "duplicate id", s.CreateAppRoleAssignment(ctx, a), store.ErrAlreadyExists)
	list, err := s.ListAppRoleAssignments(ctx, "sp-client")
	must(t, err)
	same(t, "ListAppRoleAssignments", list, []store.AppRoleAssignment{a})
	must(t, s.DeleteAppRoleAssignment(ctx, "ra1"))
	wantErr(t, "deleting it again", s.DeleteAppRoleAssignment(ctx, "ra1"), store.ErrNotFound)
}

func testManagedIdentities(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedTenant(t, s)
	mi := store.ManagedIdentity{ID: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/batch",
		TenantID: tenantID, SubscriptionID: "s", ResourceGroup: "rg", Name: "batch", Location: "westeurope", ClientID: "mi-client", PrincipalID: "mi-principal"}
	must(t, s.CreateManagedIdentity(ctx, mi))
	got, err := s.GetManagedIdentityByClientID(ctx, tenantID, "mi-client")
	must(t, err)
	same(t, "GetManagedIdentityByClientID", got, mi)
	got, err = s.GetManagedIdentity(ctx, mi.ID)
	must(t, err)
	same(t, "GetManagedIdentity", got, mi)
	other := mi
	other.ID, other.PrincipalID = mi.ID+"2", "p2"
	wantErr(t, "duplicate client id", s.CreateManagedIdentity(ctx, other), store.ErrAlreadyExists)
	list, err := s.ListManagedIdentities(ctx, tenantID)
	must(t, err)
	same(t, "ListManagedIdentities", list, []store.ManagedIdentity{mi})

	must(t, s.CreateFederatedCredential(ctx, fic(mi.PrincipalID, "k8s", "https://kubernetes.default.svc", "system:serviceaccount:batch:runner")))
	must(t, s.CreateAppRoleAssignment(ctx, store.AppRoleAssignment{ID: "ra", PrincipalID: mi.PrincipalID, ResourceID: "r", AppRoleID: "x"}))
	must(t, s.DeleteManagedIdentity(ctx, mi.ID))
	if l, _ := s.ListFederatedCredentials(ctx, mi.PrincipalID); len(l) != 0 {
		t.Errorf("federated credentials survived the identity: %v", l)
	}
	if l, _ := s.ListAppRoleAssignments(ctx, mi.PrincipalID); len(l) != 0 {
		t.Errorf("role assignments survived the identity: %v", l)
	}
	wantErr(t, "deleting it again", s.DeleteManagedIdentity(ctx, mi.ID), store.ErrNotFound)
}

func testUsers(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedTenant(t, s)
	u := store.User{ObjectID: "u1", TenantID: tenantID, UserPrincipalName: "alice@contoso.example", DisplayName: "Alice", PasswordHash: "$argon2id$..."}
	must(t, s.CreateUser(ctx, u))
	got, err := s.GetUserByUPN(ctx, tenantID, "Alice@Contoso.example")
	must(t, err)
	same(t, "GetUserByUPN is case-insensitive", got, u)
	dup := u
	dup.ObjectID = "u2"
	wantErr(t, "duplicate UPN", s.CreateUser(ctx, dup), store.ErrAlreadyExists)
	u.PasswordHash = "$argon2id$new"
	must(t, s.UpdateUser(ctx, u.ObjectID, store.Replace(u)))
	got, err = s.GetUserByUPN(ctx, tenantID, u.UserPrincipalName)
	must(t, err)
	same(t, "after update", got, u)
	wantErr(t, "update of a missing user", s.UpdateUser(ctx, "nobody", store.Replace(store.User{})), store.ErrNotFound)
}

func testApplicationOwners(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedTenant(t, s)
	must(t, s.CreateApplication(ctx, app("o1", "c1"), nil, nil))
	must(t, s.CreateApplication(ctx, app("o2", "c2"), nil, nil))
	must(t, s.AddApplicationOwner(ctx, "o1", "sp-b"))
	must(t, s.AddApplicationOwner(ctx, "o1", "sp-a"))
	must(t, s.AddApplicationOwner(ctx, "o1", "sp-a")) // again: no error, no duplicate
	must(t, s.AddApplicationOwner(ctx, "o2", "sp-a"))
	owners, err := s.ListApplicationOwners(ctx, "o1")
	must(t, err)
	if len(owners) != 2 || owners[0] != "sp-a" || owners[1] != "sp-b" {
		t.Fatalf("owners of o1: %v", owners)
	}
	wantErr(t, "an owner of a missing app", s.AddApplicationOwner(ctx, "missing", "sp-a"), store.ErrNotFound)
	must(t, s.DeleteApplication(ctx, "o1"))
	if owners, _ := s.ListApplicationOwners(ctx, "o1"); len(owners) != 0 {
		t.Fatalf("owners survived their application: %v", owners)
	}
	if owners, _ := s.ListApplicationOwners(ctx, "o2"); len(owners) != 1 {
		t.Fatalf("deleting o1 touched o2's owners: %v", owners)
	}
}
