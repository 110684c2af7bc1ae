package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// The gateway's answers to what az 2.45 asks (test/az runs az itself in
// make e2e): the ADFS-shaped authority, Graph tokens for the gateway's own
// address, the subscription list and resource groups, and the Graph filters
// behind az ad.

func TestADFSShapedAuthority(t *testing.T) {
	a := newAPI(t)
	for _, path := range []string{"/adfs/.well-known/openid-configuration", "/adfs/v2.0/.well-known/openid-configuration", "/ADFS/.well-known/openid-configuration"} {
		status, doc, _ := a.do("GET", path, "", nil)
		want := a.info.AuthorityHost + "/" + a.info.TenantID + "/oauth2/v2.0/token"
		if status != 200 || doc["token_endpoint"] != want || doc["authorization_endpoint"] == nil || doc["issuer"] != a.info.AuthorityHost+"/"+a.info.TenantID+"/v2.0" {
			t.Errorf("%s: %d %v, want the default tenant's v2.0 endpoints", path, status, doc)
		}
	}
	// The tenant's own v1 document is still v1.
	if _, doc, _ := a.do("GET", "/"+a.info.TenantID+"/.well-known/openid-configuration", "", nil); !strings.HasSuffix(doc["token_endpoint"].(string), "/oauth2/token") {
		t.Errorf("v1 discovery: %v", doc)
	}
}

func TestGraphTokenForTheGatewaysAddress(t *testing.T) {
	a := newAPI(t)
	for scope, aud := range map[string]string{
		a.info.AuthorityHost + "//.default": "https://graph.microsoft.com", a.info.AuthorityHost + "/.default": "https://graph.microsoft.com",
		// Entra keeps the resource as asked.
		"https://graph.microsoft.com//.default": "https://graph.microsoft.com/",
	} {
		tok := a.mustToken(a.info.ClientID, a.info.ClientSecret, scope)
		if got := claimOf(t, tok, "aud"); got != aud {
			t.Errorf("%s: aud %v, want %s", scope, got, aud)
		}
		if status, body, _ := a.do("GET", "/v1.0/applications?$top=1", tok, nil); status != 200 {
			t.Errorf("%s: Graph refused the token: %d %v", scope, status, body)
		}
	}
}

func claimOf(t *testing.T, token, name string) any {
	t.Helper()
	parts := strings.Split(token, ".")
	raw, err := decodeSegment(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	return claims[name]
}

func TestARMSubscriptionsAndResourceGroups(t *testing.T) {
	a := newAPI(t)
	arm := a.mustToken(a.info.ClientID, a.info.ClientSecret, "https://management.core.windows.net//.default")

	// The exact path az asks, with no redirect to /subscriptions/.
	a.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	status, body, _ := a.do("GET", "/subscriptions?api-version=2019-11-01", arm, nil)
	subs, _ := body["value"].([]any)
	if status != 200 || len(subs) != 1 {
		t.Fatalf("GET /subscriptions: %d %v", status, body)
	}
	sub := subs[0].(map[string]any)
	if sub["subscriptionId"] != a.info.SubscriptionID || sub["tenantId"] != a.info.TenantID || sub["state"] != "Enabled" || sub["id"] != "/subscriptions/"+a.info.SubscriptionID {
		t.Errorf("subscription %v", sub)
	}
	status, body, _ = a.do("GET", "/subscriptions?api-version=2030-01-01", arm, nil)
	armError(t, "unknown api-version", status, body, 400, "InvalidApiVersionParameter", "2019-11-01")
	status, body, _ = a.do("GET", "/subscriptions?api-version=2019-11-01", "", nil)
	armError(t, "no token", status, body, 401, "AuthenticationFailed", "Authorization")
	status, body, _ = a.do("POST", "/subscriptions?api-version=2019-11-01", arm, nil)
	armError(t, "POST", status, body, 405, "MethodNotAllowed", "not allowed")

	status, body, _ = a.do("GET", "/tenants?api-version=2020-01-01", arm, nil)
	tenants, _ := body["value"].([]any)
	if status != 200 || len(tenants) != 1 || tenants[0].(map[string]any)["tenantId"] != a.info.TenantID {
		t.Errorf("GET /tenants: %d %v", status, body)
	}

	// A principal with no role sees no subscription and no group.
	graph := a.graphToken()
	_, app, _ := a.do("POST", "/v1.0/applications", graph, map[string]any{"displayName": "no-azure-role"})
	a.do("POST", "/v1.0/servicePrincipals", graph, map[string]any{"appId": app["appId"]})
	_, secret, _ := a.do("POST", "/v1.0/applications/"+app["id"].(string)+"/addPassword", graph, map[string]any{})
	other := a.mustToken(app["appId"].(string), secret["secretText"].(string), "https://management.core.windows.net//.default")
	if status, body, _ := a.do("GET", "/subscriptions?api-version=2019-11-01", other, nil); status != 200 || len(body["value"].([]any)) != 0 {
		t.Errorf("GET /subscriptions with no role: %d %v", status, body)
	}

	rg := "/subscriptions/" + a.info.SubscriptionID + "/resourcegroups/az-rg?api-version=2021-04-01"
	status, body, _ = a.do("GET", rg, arm, nil)
	if status != 200 || body["name"] != "az-rg" || body["location"] != "westus" || body["id"] != "/subscriptions/"+a.info.SubscriptionID+"/resourceGroups/az-rg" {
		t.Errorf("GET resource group: %d %v", status, body)
	}
	status, body, _ = a.do("GET", rg, other, nil)
	armError(t, "resource group with no role", status, body, 403, "AuthorizationFailed", "resourceGroups/read")
	status, body, _ = a.do("GET", "/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/x?api-version=2021-04-01", arm, nil)
	armError(t, "unknown subscription", status, body, 404, "SubscriptionNotFound", "could not be found")

	// az's identity api-version.
	mi := "/subscriptions/" + a.info.SubscriptionID + "/resourceGroups/az-rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/az?api-version=2022-01-31-preview"
	if status, body, _ := a.do("PUT", mi, arm, map[string]any{"location": "westus"}); status != 201 {
		t.Errorf("PUT identity with 2022-01-31-preview: %d %v", status, body)
	}

	// Where az cloud register finds the login endpoint.
	status, body, _ = a.do("GET", "/metadata/endpoints?api-version=2015-01-01", "", nil)
	auth, _ := body["authentication"].(map[string]any)
	if status != 200 || auth["loginEndpoint"] != a.info.AuthorityHost+"/adfs" || body["graphEndpoint"] != a.info.AuthorityHost+"/" {
		t.Errorf("GET /metadata/endpoints: %d %v", status, body)
	}
}

func TestGraphFiltersAzUses(t *testing.T) {
	a := newAPI(t)
	tok := a.graphToken()
	_, app, _ := a.do("POST", "/v1.0/applications", tok, map[string]any{"displayName": "Az-Filtered app"})
	a.do("POST", "/v1.0/applications", tok, map[string]any{"displayName": "other"})
	list := func(path string) []any {
		t.Helper()
		status, body, _ := a.do("GET", path, tok, nil)
		if status != 200 {
			t.Fatalf("GET %s: %d %v", path, status, body)
		}
		return body["value"].([]any)
	}
	q := func(f string) string { return url.QueryEscape(f) }
	if got := list("/v1.0/applications?$filter=" + q("startswith(displayName,'az-filtered')")); len(got) != 1 || got[0].(map[string]any)["appId"] != app["appId"] {
		t.Errorf("startswith(displayName): %v", got)
	}
	if got := list("/v1.0/applications?$filter=" + q("startswith(displayName,'nothing')")); len(got) != 0 {
		t.Errorf("startswith with no match: %v", got)
	}
	for _, bad := range []string{"startswith(appId,'x')", "startswith(displayName,'x'", "startswith(displayName,x)"} {
		status, body, _ := a.do("GET", "/v1.0/applications?$filter="+q(bad), tok, nil)
		graphError(t, bad, status, body, 400, "Request_UnsupportedQuery", "Unsupported or invalid query filter")
	}

	status, sp, _ := a.do("POST", "/v1.0/servicePrincipals", tok, map[string]any{"appId": app["appId"], "accountEnabled": true})
	if status != 201 || sp["accountEnabled"] != true {
		t.Fatalf("POST servicePrincipals with accountEnabled: %d %v", status, sp)
	}
	names, _ := sp["servicePrincipalNames"].([]any)
	if len(names) == 0 || names[0] != app["appId"] {
		t.Errorf("servicePrincipalNames %v", names)
	}
	if got := list("/v1.0/servicePrincipals?$filter=" + q("servicePrincipalNames/any(c:c eq '"+app["appId"].(string)+"')")); len(got) != 1 || got[0].(map[string]any)["id"] != sp["id"] {
		t.Errorf("servicePrincipalNames/any: %v", got)
	}
	if got := list("/v1.0/servicePrincipals?$filter=" + q("servicePrincipalNames/any(c:c eq 'https://graph.microsoft.com')")); len(got) != 1 || got[0].(map[string]any)["displayName"] != "Microsoft Graph" {
		t.Errorf("servicePrincipalNames/any on an identifier URI: %v", got)
	}
	status, body, _ := a.do("GET", "/v1.0/servicePrincipals?$filter="+q("tags/any(c:c eq 'x')"), tok, nil)
	graphError(t, "tags/any", status, body, 400, "Request_UnsupportedQuery", "'tags'")

	_, other, _ := a.do("POST", "/v1.0/applications", tok, map[string]any{"displayName": "disabled"})
	status, body, _ = a.do("POST", "/v1.0/servicePrincipals", tok, map[string]any{"appId": other["appId"], "accountEnabled": false})
	graphError(t, "accountEnabled false", status, body, 400, "Request_BadRequest", "accountEnabled")
}
