package conformance

import (
	"context"
	"testing"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
)

// testSubscriptions: a subscription belongs to one tenant, whatever the
// case of its id.
func testSubscriptions(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedTenant(t, s)
	must(t, s.CreateTenant(ctx, store.Tenant{ID: otherTID, DisplayName: "Fabrikam"}))
	sub := store.Subscription{ID: "0d5c3e1f-7a2b-4c9d-8e6f-1a2b3c4d5e6f", TenantID: tenantID, DisplayName: "Production", ManagedBy: store.ManagedBySeed}
	must(t, s.CreateSubscription(ctx, sub))
	wantErr(t, "the same subscription in another tenant",
		s.CreateSubscription(ctx, store.Subscription{ID: "0D5C3E1F-7A2B-4C9D-8E6F-1A2B3C4D5E6F", TenantID: otherTID}), store.ErrAlreadyExists)
	got, err := s.GetSubscription(ctx, "0D5C3E1F-7A2B-4C9D-8E6F-1A2B3C4D5E6F")
	must(t, err)
	same(t, "GetSubscription", got, sub)
	_, err = s.GetSubscription(ctx, "a0000000-0000-0000-0000-000000000000")
	wantErr(t, "an absent subscription", err, store.ErrNotFound)
	list, err := s.ListSubscriptions(ctx, tenantID)
	must(t, err)
	same(t, "ListSubscriptions", list, []store.Subscription{sub})
	list, err = s.ListSubscriptions(ctx, otherTID)
	must(t, err)
	same(t, "ListSubscriptions of the other tenant", list, []store.Subscription{})
}

// testRoleAssignments: Azure role assignments are unique by id and by scope,
// role and principal, listed per tenant and per principal, and go with the
// principal holding them.
func testRoleAssignments(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedTenant(t, s)
	must(t, s.CreateTenant(ctx, store.Tenant{ID: otherTID, DisplayName: "Fabrikam"}))
	a := store.RoleAssignment{ID: "5f1e8c2a-0b7d-4e3f-9a61-2c4d6e8f0a1b", TenantID: tenantID, Scope: "/subscriptions/S1/resourceGroups/RG",
		RoleDefinitionID: "e40ec5ca-96e0-45a2-b4ff-59039f2c2b59", PrincipalID: "sp-1", ManagedBy: store.ManagedBySeed, CreatedAt: at}
	must(t, s.CreateRoleAssignment(ctx, a))
	want := a
	want.Scope = "/subscriptions/s1/resourcegroups/rg"
	got, err := s.GetRoleAssignment(ctx, a.ID)
	must(t, err)
	same(t, "GetRoleAssignment (scope in lower case)", got, want)
	wantErr(t, "the same id", s.CreateRoleAssignment(ctx, a), store.ErrAlreadyExists)
	dup := a
	dup.ID, dup.Scope = "6a2f9d3b-1c8e-4f40-8b72-3d5e7f9a1b2c", "/SUBSCRIPTIONS/s1/resourcegroups/rg"
	wantErr(t, "the same scope, role and principal", s.CreateRoleAssignment(ctx, dup), store.ErrAlreadyExists)
	b := store.RoleAssignment{ID: "7b3a0e4c-2d9f-4051-9c83-4e6f8a0b2c3d", TenantID: otherTID, Scope: "/subscriptions/s2",
		RoleDefinitionID: "acdd72a7-3385-48ef-bd42-f606fba81ae7", PrincipalID: "sp-2", CreatedAt: at}
	must(t, s.CreateRoleAssignment(ctx, b))
	list, err := s.ListRoleAssignments(ctx, tenantID)
	must(t, err)
	same(t, "ListRoleAssignments", list, []store.RoleAssignment{want})
	list, err = s.ListPrincipalRoleAssignments(ctx, "sp-2")
	must(t, err)
	same(t, "ListPrincipalRoleAssignments", list, []store.RoleAssignment{b})
	must(t, s.DeleteRoleAssignment(ctx, b.ID))
	wantErr(t, "deleting it again", s.DeleteRoleAssignment(ctx, b.ID), store.ErrNotFound)
	_, err = s.GetRoleAssignment(ctx, b.ID)
	wantErr(t, "a deleted assignment", err, store.ErrNotFound)

	// A managed identity's and an application's assignments go with them.
	mi := store.ManagedIdentity{ID: "/subscriptions/s1/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/mi",
		TenantID: tenantID, SubscriptionID: "s1", ResourceGroup: "rg", Name: "mi", Location: "westeurope", ClientID: "mi-client", PrincipalID: "mi-principal"}
	must(t, s.CreateManagedIdentity(ctx, mi))
	must(t, s.CreateRoleAssignment(ctx, store.RoleAssignment{ID: "8c4b1f5d-3e0a-4162-8d94-5f7a9b1c3d4e", TenantID: tenantID, Scope: "/subscriptions/s1",
		RoleDefinitionID: "acdd72a7-3385-48ef-bd42-f606fba81ae7", PrincipalID: mi.PrincipalID, CreatedAt: at}))
	must(t, s.DeleteManagedIdentity(ctx, mi.ID))
	if l, _ := s.ListPrincipalRoleAssignments(ctx, mi.PrincipalID); len(l) != 0 {
		t.Errorf("Azure role assignments survived the identity: %v", l)
	}
	must(t, s.CreateApplication(ctx, app("app-1", "11111111-1111-1111-1111-111111111111"), nil, nil))
	must(t, s.CreateServicePrincipal(ctx, store.ServicePrincipal{ObjectID: "sp-app-1", TenantID: tenantID, AppID: "11111111-1111-1111-1111-111111111111"}))
	must(t, s.CreateRoleAssignment(ctx, store.RoleAssignment{ID: "9d5c2a6e-4f1b-4273-9ea5-6a8b0c2d4e5f", TenantID: tenantID, Scope: "/subscriptions/s1",
		RoleDefinitionID: "acdd72a7-3385-48ef-bd42-f606fba81ae7", PrincipalID: "sp-app-1", CreatedAt: at}))
	must(t, s.DeleteApplication(ctx, "app-1"))
	if l, _ := s.ListPrincipalRoleAssignments(ctx, "sp-app-1"); len(l) != 0 {
		t.Errorf("Azure role assignments survived the application: %v", l)
	}
}
