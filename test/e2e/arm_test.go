package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory"
)

// armError checks ARM's CloudError body.
func armError(t *testing.T, what string, status int, body map[string]any, wantStatus int, wantCode, wantMessage string) {
	t.Helper()
	e, _ := body["error"].(map[string]any)
	if status != wantStatus || e["code"] != wantCode || !strings.Contains(fmt.Sprint(e["message"]), wantMessage) {
		t.Fatalf("%s: %d %v, want %d %s containing %q", what, status, body, wantStatus, wantCode, wantMessage)
	}
}

func TestARMManagedIdentities(t *testing.T) {
	a := newAPI(t)
	tok := a.mustToken(a.info.ClientID, a.info.ClientSecret, "https://management.core.windows.net//.default")
	const v = "?api-version=2024-11-30"
	sub := a.info.SubscriptionID
	mi := "/subscriptions/" + sub + "/resourceGroups/batch-rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/batch"

	status, body, _ := a.do("GET", mi+v, "", nil)
	armError(t, "no token", status, body, 401, "AuthenticationFailed", "The 'Authorization' header is missing.")
	graphTok := a.graphToken()
	status, body, _ = a.do("GET", mi+v, graphTok, nil)
	armError(t, "Graph token", status, body, 401, "InvalidAuthenticationToken", "The access token is invalid.")
	status, body, _ = a.do("GET", mi, tok, nil)
	armError(t, "no api-version", status, body, 400, "MissingApiVersionParameter", "api-version query parameter")
	status, body, _ = a.do("GET", mi+"?api-version=2018-11-30", tok, nil)
	armError(t, "old api-version", status, body, 400, "InvalidApiVersionParameter", "The supported versions are '2022-01-31-preview,2023-01-31,2024-11-30'")
	status, body, _ = a.do("GET", mi+v, tok, nil)
	armError(t, "absent identity", status, body, 404, "ResourceNotFound", "userAssignedIdentities/batch' under resource group 'batch-rg' was not found")

	status, created, _ := a.do("PUT", mi+v, tok, map[string]any{"location": "westeurope"})
	props, _ := created["properties"].(map[string]any)
	if status != 201 || created["type"] != "Microsoft.ManagedIdentity/userAssignedIdentities" || props["clientId"] == "" || props["principalId"] == "" || props["tenantId"] != a.info.TenantID {
		t.Fatalf("PUT identity: %d %v", status, created)
	}
	if status, again, _ := a.do("PUT", mi+v, tok, map[string]any{"location": "westeurope"}); status != 200 || again["properties"].(map[string]any)["clientId"] != props["clientId"] {
		t.Fatalf("PUT again: %d %v", status, again)
	}
	status, list, _ := a.do("GET", "/subscriptions/"+sub+"/resourceGroups/batch-rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities"+v, tok, nil)
	if status != 200 || len(list["value"].([]any)) != 1 {
		t.Fatalf("list: %d %v", status, list)
	}

	fic := mi + "/federatedIdentityCredentials/spiffe-batch"
	good := map[string]any{"properties": map[string]any{"issuer": a.info.Issuer, "subject": a.info.SPIFFEID, "audiences": []string{"api://AzureADTokenExchange"}}}
	for _, tc := range []struct {
		name, path string
		body       map[string]any
		status     int
		code, msg  string
	}{
		{"empty properties", fic, map[string]any{}, 400, "BadRequest", "Federated Identity Credential from HTTP body has empty properties."},
		{"two audiences", fic, map[string]any{"properties": map[string]any{"issuer": "https://i.example", "subject": "s", "audiences": []string{"a", "b"}}}, 400, "InvalidFederatedIdentityCredentialsAudienceLength", "Federated identity credentials must have exactly 1 audience."},
		{"no subject", fic, map[string]any{"properties": map[string]any{"issuer": "https://i.example", "audiences": []string{"a"}}}, 400, "BadRequest", "Federated Identity Credential must specify 'issuer', 'subject' and 'audience'."},
		{"bad name", mi + "/federatedIdentityCredentials/_x", good, 400, "BadRequest", "Federated Identity Credential name '_x' is invalid."},
		{"absent parent", strings.Replace(fic, "/batch/", "/nobody/", 1), good, 404, "ParentResourceNotFound", "The parent user-assigned identity doesn't exist."},
	} {
		status, body, _ := a.do("PUT", tc.path+v, tok, tc.body)
		armError(t, tc.name, status, body, tc.status, tc.code, tc.msg)
	}
	status, got, _ := a.do("PUT", fic+v, tok, good)
	if status != 201 || got["id"] != directory.ManagedIdentityID(sub, "batch-rg", "batch")+"/federatedIdentityCredentials/spiffe-batch" ||
		got["type"] != "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials" {
		t.Fatalf("PUT credential: %d %v", status, got)
	}
	status, body, _ = a.do("PUT", mi+"/federatedIdentityCredentials/second"+v, tok, good)
	armError(t, "same issuer and subject", status, body, 400, "BadRequest", "Issuer and subject combination already exists for this Managed Identity.")

	// The identity's client id exchanges a JWT-SVID at once.
	if status, body := a.token(props["clientId"].(string), "", a.info.Scope); status != 200 {
		t.Fatalf("exchange as the identity: %d %v", status, body)
	}
	if status, list, _ := a.do("GET", mi+"/federatedIdentityCredentials"+v, tok, nil); status != 200 || len(list["value"].([]any)) != 1 {
		t.Fatalf("list credentials: %d %v", status, list)
	}
	if status, _, _ := a.do("DELETE", fic+v, tok, nil); status != 200 {
		t.Fatalf("DELETE credential: %d", status)
	}
	if status, _ := a.token(props["clientId"].(string), "", a.info.Scope); status == 200 {
		t.Fatal("the deleted credential still exchanges")
	}
	if status, _, _ := a.do("DELETE", mi+v, tok, nil); status != 200 {
		t.Fatalf("DELETE identity: %d", status)
	}
	if status, _, _ := a.do("DELETE", mi+v, tok, nil); status != 204 {
		t.Fatalf("DELETE of an absent identity: %d", status)
	}
}
