package e2e

import (
	"testing"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory"
)

// grant gives the service principal spID one of Graph's app roles with the
// development client's token and returns the assignment's id.
func (a *api) grant(spID, roleID string) string {
	a.t.Helper()
	tok := a.graphToken()
	_, graphSP, _ := a.do("GET", "/v1.0/servicePrincipals(appId='"+directory.GraphAppID+"')", tok, nil)
	status, as, _ := a.do("POST", "/v1.0/servicePrincipals/"+spID+"/appRoleAssignments", tok, map[string]any{
		"principalId": spID, "resourceId": graphSP["id"], "appRoleId": roleID})
	if status != 201 {
		a.t.Fatalf("grant %s: %d %v", roleID, status, as)
	}
	return as["id"].(string)
}

// TestTokensDoNotOutliveTheirCaller: a management token is only as good as
// the directory behind it now — a deleted application's token and a revoked
// role stop working (within the few seconds the gateway caches what it
// read; each token here is used first after the change).
func TestTokensDoNotOutliveTheirCaller(t *testing.T) {
	a := newAPI(t)
	admin := a.graphToken()

	appID, spID, secret := a.newClient("short-lived")
	assignment := a.grant(spID, directory.GraphApplicationReadWriteAllID)
	revoked := a.mustToken(appID, secret, directory.GraphResource+"/.default")
	if status, body, _ := a.do("DELETE", "/v1.0/servicePrincipals/"+spID+"/appRoleAssignments/"+assignment, admin, nil); status != 204 {
		t.Fatalf("revoke: %d %v", status, body)
	}
	status, body, _ := a.do("POST", "/v1.0/applications", revoked, map[string]any{"displayName": "after the revocation"})
	graphError(t, "a token whose role was revoked", status, body, 403, "Authorization_RequestDenied", "Insufficient privileges")

	// Another client: the first one's state is cached for a few seconds.
	appID, spID, secret = a.newClient("deleted")
	a.grant(spID, directory.GraphApplicationReadWriteAllID)
	orphan := a.mustToken(appID, secret, directory.GraphResource+"/.default")
	armOrphan := a.mustToken(appID, secret, armScope)
	if status, body, _ := a.do("DELETE", "/v1.0/applications(appId='"+appID+"')", admin, nil); status != 204 {
		t.Fatalf("delete the application: %d %v", status, body)
	}
	status, body, _ = a.do("POST", "/v1.0/applications", orphan, map[string]any{"displayName": "after the deletion"})
	graphError(t, "a deleted application's Graph token", status, body, 401, "InvalidAuthenticationToken", "Access token validation failure.")
	status, body, _ = a.do("GET", "/subscriptions/"+a.info.SubscriptionID+"/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities?api-version=2024-11-30", armOrphan, nil)
	armError(t, "a deleted application's ARM token", status, body, 401, "InvalidAuthenticationToken", "The access token is invalid.")
}

// TestMicrosoftApplicationsAreNotTheTenants: Graph and ARM are registered in
// Microsoft's tenant; through Graph a tenant sees their service principals
// only, and cannot change, delete or add credentials to them.
func TestMicrosoftApplicationsAreNotTheTenants(t *testing.T) {
	a := newAPI(t)
	tok := a.graphToken()
	for _, appID := range []string{directory.GraphAppID, directory.ARMAppID} {
		ref := "/v1.0/applications(appId='" + appID + "')"
		for _, tc := range []struct {
			method, path string
			body         map[string]any
		}{
			{"GET", ref, nil},
			{"DELETE", ref, nil},
			{"PATCH", ref, map[string]any{"displayName": "mine now"}},
			{"POST", ref + "/addPassword", map[string]any{"passwordCredential": map[string]any{"displayName": "x"}}},
			{"POST", ref + "/federatedIdentityCredentials", map[string]any{"name": "x-1", "issuer": "https://i.example", "subject": "s", "audiences": []string{"a"}}},
		} {
			status, body, _ := a.do(tc.method, tc.path, tok, tc.body)
			graphError(t, tc.method+" "+tc.path, status, body, 404, "Request_ResourceNotFound", "does not exist")
		}
	}
	_, list, _ := a.do("GET", "/v1.0/applications?$top=999", tok, nil)
	for _, app := range list["value"].([]any) {
		if id := app.(map[string]any)["appId"]; id == directory.GraphAppID || id == directory.ARMAppID {
			t.Errorf("Microsoft's application %s is listed as the tenant's", id)
		}
	}
	if status, sp, _ := a.do("GET", "/v1.0/servicePrincipals(appId='"+directory.GraphAppID+"')", tok, nil); status != 200 || sp["appId"] != directory.GraphAppID {
		t.Fatalf("Graph's service principal: %d %v", status, sp)
	}
	// Still working after all of that.
	if status, _, _ := a.do("GET", "/v1.0/applications", a.graphToken(), nil); status != 200 {
		t.Fatalf("Graph after the attempts: %d", status)
	}
}

// TestOwnedBySeesOnlyWhatItOwns: Application.ReadWrite.OwnedBy lists and
// reads the service principals of the applications it owns, and no one
// else's, nor their role assignments.
func TestOwnedBySeesOnlyWhatItOwns(t *testing.T) {
	a := newAPI(t)
	appID, spID, secret := a.newClient("owner-only")
	a.grant(spID, directory.GraphApplicationReadWriteOwnedByID)
	owner := a.mustToken(appID, secret, directory.GraphResource+"/.default")
	_, mine, _ := a.do("POST", "/v1.0/applications", owner, map[string]any{"displayName": "owned"})
	_, mySP, _ := a.do("POST", "/v1.0/servicePrincipals", owner, map[string]any{"appId": mine["appId"]})

	status, list, _ := a.do("GET", "/v1.0/servicePrincipals", owner, nil)
	if status != 200 || len(list["value"].([]any)) != 1 || list["value"].([]any)[0].(map[string]any)["id"] != mySP["id"] {
		t.Fatalf("OwnedBy lists service principals: %d %v", status, list)
	}
	_, admin, _ := a.do("GET", "/v1.0/servicePrincipals(appId='"+a.info.ClientID+"')", a.graphToken(), nil)
	for _, path := range []string{
		"/v1.0/servicePrincipals/" + admin["id"].(string),
		"/v1.0/servicePrincipals(appId='" + a.info.ClientID + "')",
		"/v1.0/servicePrincipals/" + admin["id"].(string) + "/appRoleAssignments",
	} {
		status, body, _ := a.do("GET", path, owner, nil)
		graphError(t, "OwnedBy reads "+path, status, body, 403, "Authorization_RequestDenied", "Insufficient privileges")
	}
	if status, body, _ := a.do("GET", "/v1.0/servicePrincipals/"+mySP["id"].(string)+"/appRoleAssignments", owner, nil); status != 200 {
		t.Fatalf("OwnedBy reads its own service principal's assignments: %d %v", status, body)
	}
}

// TestARMAcceptsOnlyItsOwnAudiences: an application of the tenant that
// registers an identifier URI ARM does not hold gets tokens for itself, not
// for ARM; ARM refuses them even when they name a Microsoft host.
func TestARMAcceptsOnlyItsOwnAudiences(t *testing.T) {
	a := newAPI(t)
	tok := a.graphToken()
	appID, spID, secret := a.newClient("impostor")
	_ = spID
	_, app, _ := a.do("GET", "/v1.0/applications(appId='"+appID+"')", tok, nil)
	if status, body, _ := a.do("PATCH", "/v1.0/applications/"+app["id"].(string), tok, map[string]any{"identifierUris": []string{"https://management.azure.com"}}); status != 204 {
		t.Fatalf("register the identifier URI: %d %v", status, body)
	}
	impostor := a.mustToken(appID, secret, "https://management.azure.com/.default")
	status, body, _ := a.do("GET", "/subscriptions/"+a.info.SubscriptionID+"/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities?api-version=2024-11-30", impostor, nil)
	armError(t, "a token for another application's https://management.azure.com", status, body, 401, "InvalidAuthenticationToken", "The access token is invalid.")
}
