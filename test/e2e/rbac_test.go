package e2e

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/gateway"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/devgw"
)

// newClient registers an application with a service principal and a
// secret through Graph and returns its app id, service principal id and
// secret.
func (a *api) newClient(name string) (appID, spID, secret string) {
	a.t.Helper()
	tok := a.graphToken()
	_, app, _ := a.do("POST", "/v1.0/applications", tok, map[string]any{"displayName": name})
	_, sp, _ := a.do("POST", "/v1.0/servicePrincipals", tok, map[string]any{"appId": app["appId"]})
	_, pw, _ := a.do("POST", "/v1.0/applications/"+app["id"].(string)+"/addPassword", tok, map[string]any{"passwordCredential": map[string]any{"displayName": "s"}})
	return app["appId"].(string), sp["id"].(string), pw["secretText"].(string)
}

const armScope = "https://management.core.windows.net//.default"

// TestARMRoleBasedAccess: a client of the tenant without an Azure role
// cannot touch a managed identity (it used to be able to add a federated
// credential and become the identity); roles granted through
// Microsoft.Authorization/roleAssignments at identity, resource group or
// subscription scope allow what the built-in role allows, and no more.
func TestARMRoleBasedAccess(t *testing.T) {
	a := newAPI(t)
	owner := a.mustToken(a.info.ClientID, a.info.ClientSecret, armScope)
	const v = "?api-version=2024-11-30"
	const rav = "?api-version=2022-04-01"
	sub := "/subscriptions/" + a.info.SubscriptionID
	rg := sub + "/resourceGroups/payments-rg"
	mi := rg + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/payments"
	fic := mi + "/federatedIdentityCredentials/intruder"
	if status, body, _ := a.do("PUT", mi+v, owner, map[string]any{"location": "westeurope"}); status != 201 {
		t.Fatalf("the owner creates the identity: %d %v", status, body)
	}

	appID, spID, secret := a.newClient("intruder")
	tok := a.mustToken(appID, secret, armScope)
	good := map[string]any{"properties": map[string]any{"issuer": a.info.Issuer, "subject": "spiffe://example.org/intruder", "audiences": []string{"api://AzureADTokenExchange"}}}
	status, body, _ := a.do("PUT", fic+v, tok, good)
	armError(t, "a credential without a role", status, body, 403, "AuthorizationFailed",
		"The client '"+appID+"' with object id '"+spID+"' does not have authorization to perform action 'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write' over scope '"+fic+"' or the scope is invalid.")
	for _, tc := range []struct{ method, path, action string }{
		{"GET", mi + v, "userAssignedIdentities/read"},
		{"PUT", rg + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/mine" + v, "userAssignedIdentities/write"},
		{"DELETE", mi + v, "userAssignedIdentities/delete"},
		{"GET", rg + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities" + v, "userAssignedIdentities/read"},
		{"GET", sub + "/providers/Microsoft.Authorization/roleAssignments" + rav, "roleAssignments/read"},
	} {
		status, body, _ := a.do(tc.method, tc.path, tok, map[string]any{"location": "westeurope"})
		armError(t, tc.method+" "+tc.path+" without a role", status, body, 403, "AuthorizationFailed", tc.action)
	}

	assign := func(who, scope, role, principal string) (int, map[string]any) {
		t.Helper()
		status, body, _ := a.do("PUT", scope+"/providers/Microsoft.Authorization/roleAssignments/"+uuid.NewString()+rav, who, map[string]any{
			"properties": map[string]any{"roleDefinitionId": sub + "/providers/Microsoft.Authorization/roleDefinitions/" + role, "principalId": principal}})
		return status, body
	}
	// Managed Identity Operator on the identity: read, not write.
	status, operator := assign(owner, mi, directory.RoleManagedIdentityOperator.ID, spID)
	props, _ := operator["properties"].(map[string]any)
	if status != 201 || operator["type"] != "Microsoft.Authorization/roleAssignments" || props["principalId"] != spID ||
		!strings.EqualFold(props["scope"].(string), mi) || !strings.HasSuffix(props["roleDefinitionId"].(string), directory.RoleManagedIdentityOperator.ID) {
		t.Fatalf("assign Managed Identity Operator: %d %v", status, operator)
	}
	if status, body, _ := a.do("GET", mi+v, tok, nil); status != 200 {
		t.Fatalf("an operator reads the identity: %d %v", status, body)
	}
	status, body, _ = a.do("PUT", fic+v, tok, good)
	armError(t, "an operator writes a credential", status, body, 403, "AuthorizationFailed", "federatedIdentityCredentials/write")

	// Managed Identity Contributor on the resource group: credentials, not roles.
	if status, body := assign(owner, rg, directory.RoleManagedIdentityContributor.ID, spID); status != 201 {
		t.Fatalf("assign Managed Identity Contributor: %d %v", status, body)
	}
	if status, body, _ := a.do("PUT", fic+v, tok, good); status != 201 {
		t.Fatalf("a contributor writes a credential: %d %v", status, body)
	}
	status, body = assign(tok, mi, directory.RoleOwner.ID, spID)
	armError(t, "a contributor makes itself owner", status, body, 403, "AuthorizationFailed", "Microsoft.Authorization/roleAssignments/write")

	// ARM's errors for role assignments.
	status, body = assign(owner, rg, directory.RoleManagedIdentityContributor.ID, spID)
	armError(t, "the same role again", status, body, 409, "RoleAssignmentExists", "The role assignment already exists.")
	status, body = assign(owner, rg, "00000000-0000-0000-0000-000000000001", spID)
	armError(t, "an unknown role", status, body, 400, "RoleDefinitionDoesNotExist", "does not exist")
	status, body = assign(owner, rg, directory.RoleReader.ID, uuid.NewString())
	armError(t, "an unknown principal", status, body, 400, "PrincipalNotFound", "does not exist in the directory "+a.info.TenantID)
	status, body, _ = a.do("PUT", rg+"/providers/Microsoft.Authorization/roleAssignments/not-a-guid"+rav, owner, map[string]any{})
	armError(t, "a name that is not a GUID", status, body, 400, "InvalidRoleAssignmentId", "must be a GUID")
	status, body, _ = a.do("GET", rg+"/providers/Microsoft.Authorization/roleAssignments"+v, owner, nil)
	armError(t, "the identities' api-version", status, body, 400, "InvalidApiVersionParameter", "2022-04-01")

	// Listing at the identity: the owner's assignment above it and the operator's at it.
	status, list, _ := a.do("GET", mi+"/providers/Microsoft.Authorization/roleAssignments"+rav+"&$filter=principalId%20eq%20'"+spID+"'", owner, nil)
	if status != 200 || len(list["value"].([]any)) != 2 {
		t.Fatalf("list at the identity for the intruder: %d %v", status, list)
	}
	status, list, _ = a.do("GET", mi+"/providers/Microsoft.Authorization/roleAssignments"+rav+"&$filter=atScope()", owner, nil)
	if status != 200 || len(list["value"].([]any)) != 3 {
		t.Fatalf("list at the identity: %d %v", status, list)
	}

	// Revoked, the role is gone at once.
	_, all, _ := a.do("GET", rg+"/providers/Microsoft.Authorization/roleAssignments"+rav+"&$filter=principalId%20eq%20'"+spID+"'", owner, nil)
	for _, ra := range all["value"].([]any) {
		id := ra.(map[string]any)["id"].(string)
		if status, body, _ := a.do("DELETE", id+rav, owner, nil); status != 200 {
			t.Fatalf("delete %s: %d %v", id, status, body)
		}
		if status, _, _ := a.do("DELETE", id+rav, owner, nil); status != 204 {
			t.Fatalf("delete %s again: %d", id, status)
		}
	}
	status, body, _ = a.do("DELETE", fic+v, tok, nil)
	armError(t, "after the revocation", status, body, 403, "AuthorizationFailed", "federatedIdentityCredentials/delete")

	// Built-in role definitions, looked up by name as az does.
	status, defs, _ := a.do("GET", sub+"/providers/Microsoft.Authorization/roleDefinitions"+rav+"&$filter=roleName%20eq%20'Managed%20Identity%20Contributor'", tok, nil)
	if status != 200 || len(defs["value"].([]any)) != 1 || defs["value"].([]any)[0].(map[string]any)["name"] != directory.RoleManagedIdentityContributor.ID {
		t.Fatalf("role definitions: %d %v", status, defs)
	}
}

// TestARMSubscriptionsBelongToOneTenant: a subscription the gateway does not
// know is ARM's 404, and another tenant's subscription is ARM's 401 naming
// its tenant, whatever roles the caller holds in its own: a client of one
// tenant can no longer squat an identity path another tenant uses.
func TestARMSubscriptionsBelongToOneTenant(t *testing.T) {
	const (
		fabrikam = "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9"
		subB     = "7d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6"
		opsAppID = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f"
		secret   = "fabrikam-ops-secret-chosen-by-a-person"
	)
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	seedFile := filepath.Join(dir, "seed.yaml")
	if err := os.WriteFile(secretFile, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(seedFile, []byte(`
tenants:
  - id: `+fabrikam+`
    subscriptions: [{id: `+subB+`}]
    applications:
      - name: fabrikam-ops
        appId: `+opsAppID+`
        clientSecretFiles: [`+secretFile+`]
        azureRoleAssignments: [{role: Owner, scope: /subscriptions/`+subB+`}]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	info, client := devgw.Start(t, func(o *gateway.DevOptions) { o.SeedFile = seedFile })
	a := &api{t: t, info: info, client: client}
	owner := a.mustToken(a.info.ClientID, a.info.ClientSecret, armScope)
	resp, err := client.PostForm(info.AuthorityHost+"/"+fabrikam+"/oauth2/v2.0/token", url.Values{"grant_type": {"client_credentials"},
		"client_id": {opsAppID}, "client_secret": {secret}, "scope": {armScope}})
	if err != nil {
		t.Fatal(err)
	}
	var tb map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&tb)
	resp.Body.Close()
	ops, _ := tb["access_token"].(string)
	if ops == "" {
		t.Fatalf("Fabrikam's token: %v", tb)
	}

	const v = "?api-version=2024-11-30"
	mi := func(sub string) string {
		return "/subscriptions/" + sub + "/resourceGroups/payments-rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/payments-mi"
	}
	if status, body, _ := a.do("PUT", mi(subB)+v, ops, map[string]any{"location": "westeurope"}); status != 201 {
		t.Fatalf("Fabrikam in its own subscription: %d %v", status, body)
	}
	status, body, _ := a.do("PUT", mi(a.info.SubscriptionID)+v, ops, map[string]any{"location": "westeurope"})
	armError(t, "Fabrikam in the development subscription", status, body, 401, "InvalidAuthenticationTokenTenant",
		"It must match the tenant 'https://sts.windows.net/"+a.info.TenantID+"/' associated with this subscription.")
	status, body, _ = a.do("PUT", mi(subB)+v, owner, map[string]any{"location": "westeurope"})
	armError(t, "the development tenant in Fabrikam's subscription", status, body, 401, "InvalidAuthenticationTokenTenant", fabrikam)
	status, body, _ = a.do("GET", "/subscriptions/"+uuid.NewString()+"/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/x"+v, owner, nil)
	armError(t, "an unknown subscription", status, body, 404, "SubscriptionNotFound", "could not be found")
}
