package seed

import (
	"context"
	"strings"
	"testing"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
)

const (
	otherTID = "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9"
	thirdTID = "2a3b4c5d-6e7f-4809-9a1b-2c3d4e5f6a7b"
	subA     = "0d5c3e1f-7a2b-4c9d-8e6f-1a2b3c4d5e6f"
)

// TestSubscriptionsAndAzureRoles: a tenant's subscriptions are its own, the
// seed grants Azure roles at their scopes, and a tenant naming another
// tenant's subscription fails alone: the error names it, and the tenants
// around it are applied.
func TestSubscriptionsAndAzureRoles(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	a := &Applier{Store: s, ParseExpression: func(string) error { return nil }}
	yaml := `
tenants:
  - id: ` + tid + `
    subscriptions: [{id: ` + strings.ToUpper(subA) + `, displayName: Payments}]
    applications:
      - name: deployer
        azureRoleAssignments:
          - {role: Managed Identity Contributor, scope: /subscriptions/` + subA + `/resourceGroups/payments-rg}
    managedIdentities:
      - name: payments
        subscriptionId: ` + subA + `
        resourceGroup: payments-rg
        azureRoleAssignments:
          - {role: ` + directory.RoleReader.ID + `, scope: /subscriptions/` + subA + `}
  - id: ` + otherTID + `
    managedIdentities:
      - {name: payments, subscriptionId: ` + subA + `, resourceGroup: payments-rg}
  - id: ` + thirdTID + `
    applications: [{name: third}]
`
	err := apply(t, a, yaml)
	if err == nil || !strings.Contains(err.Error(), "tenant "+otherTID) || !strings.Contains(err.Error(), "belongs to tenant "+tid) || strings.Contains(err.Error(), "tenant "+thirdTID) {
		t.Fatalf("Apply: %v, want the second tenant's failure alone, naming the owner", err)
	}
	if sub, err := s.GetSubscription(ctx, subA); err != nil || sub.TenantID != tid || sub.DisplayName != "Payments" {
		t.Fatalf("subscription: %+v %v", sub, err)
	}
	if _, err := s.GetApplication(ctx, derive(thirdTID, "app", "third")); err != nil {
		t.Fatalf("the tenant after the failing one was not applied: %v", err)
	}
	deployer, _ := s.GetApplication(ctx, derive(tid, "app", "deployer"))
	sp, _ := s.GetServicePrincipalByAppID(ctx, tid, deployer.AppID)
	ras, _ := s.ListPrincipalRoleAssignments(ctx, sp.ObjectID)
	if len(ras) != 1 || ras[0].RoleDefinitionID != directory.RoleManagedIdentityContributor.ID || ras[0].Scope != "/subscriptions/"+subA+"/resourcegroups/payments-rg" || ras[0].ManagedBy != store.ManagedBySeed {
		t.Fatalf("deployer's Azure roles: %+v", ras)
	}
	mi, _ := s.GetManagedIdentity(ctx, directory.ManagedIdentityID(subA, "payments-rg", "payments"))
	if ras, _ := s.ListPrincipalRoleAssignments(ctx, mi.PrincipalID); len(ras) != 1 || ras[0].RoleDefinitionID != directory.RoleReader.ID {
		t.Fatalf("identity's Azure roles: %+v", ras)
	}

	// An assignment made through ARM survives; the seed's own goes when
	// the seed drops it.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.CreateRoleAssignment(ctx, store.RoleAssignment{ID: "5f1e8c2a-0b7d-4e3f-9a61-2c4d6e8f0a1b", TenantID: tid, Scope: "/subscriptions/" + subA,
		RoleDefinitionID: directory.RoleReader.ID, PrincipalID: sp.ObjectID}))
	yaml = strings.Replace(yaml, "        azureRoleAssignments:\n          - {role: Managed Identity Contributor, scope: /subscriptions/"+subA+"/resourceGroups/payments-rg}\n", "", 1)
	_ = apply(t, a, yaml)
	if ras, _ := s.ListPrincipalRoleAssignments(ctx, sp.ObjectID); len(ras) != 1 || ras[0].ManagedBy != "" {
		t.Fatalf("after the seed dropped its assignment: %+v", ras)
	}
}

func TestAzureRoleAssignmentsAreChecked(t *testing.T) {
	for _, tc := range []struct{ name, ra, want string }{
		{"unknown role", "{role: Storage Blob Data Reader, scope: /subscriptions/" + subA + "}", "is not a built-in role"},
		{"bad scope", "{role: Reader, scope: /subscriptions/" + subA + "/providers/Microsoft.Compute/virtualMachines/vm}", "is not /subscriptions/{id}"},
	} {
		_, err := Parse([]byte("tenants:\n  - id: " + tid + "\n    applications:\n      - name: a\n        azureRoleAssignments: [" + tc.ra + "]\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	s := openStore(t)
	a := &Applier{Store: s, ParseExpression: func(string) error { return nil }}
	err := apply(t, a, "tenants:\n  - id: "+tid+"\n    applications:\n      - name: a\n        azureRoleAssignments: [{role: Reader, scope: /subscriptions/"+subA+"}]\n")
	if err == nil || !strings.Contains(err.Error(), "is not one of the tenant's") {
		t.Fatalf("a role in an undeclared subscription: %v", err)
	}
}
