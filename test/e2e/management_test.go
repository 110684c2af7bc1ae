package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/dev/devtenant"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/gateway"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/devgw"
)

// api is a client of the gateway's token endpoint and management APIs.
type api struct {
	t      *testing.T
	info   gateway.DevInfo
	client *http.Client
}

func newAPI(t *testing.T) *api {
	info, client := devgw.Start(t)
	return &api{t: t, info: info, client: client}
}

// token gets an app-only token with a client secret, or with a JWT-SVID
// when secret is empty.
func (a *api) token(clientID, secret, scope string) (int, map[string]any) {
	a.t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "scope": {scope}}
	if secret != "" {
		form.Set("client_secret", secret)
	} else {
		svid, err := fetchSVID(context.Background(), a.info.WorkloadSocket)
		if err != nil {
			a.t.Fatal(err)
		}
		form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
		form.Set("client_assertion", svid)
	}
	resp, err := a.client.PostForm(a.info.AuthorityHost+"/"+a.info.TenantID+"/oauth2/v2.0/token", form)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func (a *api) mustToken(clientID, secret, scope string) string {
	a.t.Helper()
	status, body := a.token(clientID, secret, scope)
	if status != 200 {
		a.t.Fatalf("token for %s: %d %v", scope, status, body)
	}
	return body["access_token"].(string)
}

// do calls path with token and an optional JSON body; it returns the
// status, the decoded body (nil when empty) and the response headers.
func (a *api) do(method, path, token string, body any, header ...string) (int, map[string]any, http.Header) {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, a.info.AuthorityHost+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := a.client.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			a.t.Fatalf("%s %s: not JSON: %s", method, path, raw)
		}
	}
	return resp.StatusCode, out, resp.Header
}

func (a *api) graphToken() string {
	return a.mustToken(a.info.ClientID, a.info.ClientSecret, directory.GraphResource+"/.default")
}

// graphError checks Graph's error body: code, message and innerError.
func graphError(t *testing.T, what string, status int, body map[string]any, wantStatus int, wantCode, wantMessage string) {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("%s: status %d, want %d: %v", what, status, wantStatus, body)
	}
	e, _ := body["error"].(map[string]any)
	if e["code"] != wantCode || !strings.Contains(fmt.Sprint(e["message"]), wantMessage) {
		t.Fatalf("%s: error %v, want %s containing %q", what, e, wantCode, wantMessage)
	}
	inner, _ := e["innerError"].(map[string]any)
	if inner["date"] == nil || inner["request-id"] == "" || inner["client-request-id"] == nil {
		t.Fatalf("%s: innerError %v", what, inner)
	}
}

func TestGraphAuthorization(t *testing.T) {
	a := newAPI(t)
	status, body, _ := a.do("GET", "/v1.0/applications", "", nil, "client-request-id", "c-1")
	graphError(t, "no token", status, body, 401, "InvalidAuthenticationToken", "Access token is empty.")
	if body["error"].(map[string]any)["innerError"].(map[string]any)["client-request-id"] != "c-1" {
		t.Error("client-request-id not echoed")
	}
	status, body, _ = a.do("GET", "/v1.0/applications", "not.a.token", nil)
	graphError(t, "garbage", status, body, 401, "InvalidAuthenticationToken", "Access token validation failure.")
	other := a.mustToken(a.info.ClientID, a.info.ClientSecret, a.info.Scope)
	status, body, _ = a.do("GET", "/v1.0/applications", other, nil)
	graphError(t, "token for another API", status, body, 401, "InvalidAuthenticationToken", "Invalid audience.")

	// An app without Application.ReadWrite.All gets 403.
	tok := a.graphToken()
	_, app, _ := a.do("POST", "/v1.0/applications", tok, map[string]any{"displayName": "unprivileged"})
	a.do("POST", "/v1.0/servicePrincipals", tok, map[string]any{"appId": app["appId"]})
	_, pw, _ := a.do("POST", "/v1.0/applications/"+app["id"].(string)+"/addPassword", tok, map[string]any{"passwordCredential": map[string]any{"displayName": "s"}})
	weak := a.mustToken(app["appId"].(string), pw["secretText"].(string), directory.GraphResource+"/.default")
	status, body, _ = a.do("GET", "/v1.0/applications", weak, nil)
	graphError(t, "no role", status, body, 403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")

	// Application.ReadWrite.OwnedBy: the apps it creates, and no others.
	_, graphSP, _ := a.do("GET", "/v1.0/servicePrincipals(appId='"+directory.GraphAppID+"')", tok, nil)
	_, sp, _ := a.do("GET", "/v1.0/servicePrincipals(appId='"+app["appId"].(string)+"')", tok, nil)
	if status, body, _ := a.do("POST", "/v1.0/servicePrincipals/"+sp["id"].(string)+"/appRoleAssignments", tok, map[string]any{
		"principalId": sp["id"], "resourceId": graphSP["id"], "appRoleId": directory.GraphApplicationReadWriteOwnedByID}); status != 201 {
		t.Fatalf("grant OwnedBy: %d %v", status, body)
	}
	owner := a.mustToken(app["appId"].(string), pw["secretText"].(string), directory.GraphResource+"/.default")
	status, mine, _ := a.do("POST", "/v1.0/applications", owner, map[string]any{"displayName": "owned"})
	if status != 201 {
		t.Fatalf("OwnedBy creates: %d %v", status, mine)
	}
	if status, list, _ := a.do("GET", "/v1.0/applications", owner, nil); status != 200 || len(list["value"].([]any)) != 1 || list["value"].([]any)[0].(map[string]any)["id"] != mine["id"] {
		t.Fatalf("OwnedBy lists: %d %v", status, list)
	}
	if status, _, _ := a.do("POST", "/v1.0/applications/"+mine["id"].(string)+"/federatedIdentityCredentials", owner,
		map[string]any{"name": "owned-fic", "issuer": "https://i.example", "subject": "s", "audiences": []string{"a"}}); status != 201 {
		t.Fatalf("OwnedBy manages its app's credentials: %d", status)
	}
	status, body, _ = a.do("GET", "/v1.0/applications(appId='"+a.info.ClientID+"')", owner, nil)
	graphError(t, "OwnedBy on another's app", status, body, 403, "Authorization_RequestDenied", "Insufficient privileges")
	status, body, _ = a.do("POST", "/v1.0/servicePrincipals/"+sp["id"].(string)+"/appRoleAssignments", owner, map[string]any{})
	graphError(t, "OwnedBy granting roles", status, body, 403, "Authorization_RequestDenied", "Insufficient privileges")
}

func TestGraphApplicationsAndFederatedCredentials(t *testing.T) {
	a := newAPI(t)
	tok := a.graphToken()

	status, app, _ := a.do("POST", "/v1.0/applications", tok, map[string]any{"displayName": "payments-worker"})
	if status != 201 || app["id"] == "" || app["appId"] == "" || !strings.HasSuffix(fmt.Sprint(app["@odata.context"]), "/v1.0/$metadata#applications/$entity") {
		t.Fatalf("create: %d %v", status, app)
	}
	id, appID := app["id"].(string), app["appId"].(string)
	for _, path := range []string{"/v1.0/applications/" + id, "/v1.0/applications(appId='" + appID + "')"} {
		if status, got, _ := a.do("GET", path, tok, nil); status != 200 || got["id"] != id || got["displayName"] != "payments-worker" {
			t.Fatalf("GET %s: %d %v", path, status, got)
		}
	}
	status, list, _ := a.do("GET", "/v1.0/applications?$filter="+url.QueryEscape("appId eq '"+appID+"'"), tok, nil)
	if status != 200 || len(list["value"].([]any)) != 1 {
		t.Fatalf("filter: %d %v", status, list)
	}
	status, page, _ := a.do("GET", "/v1.0/applications?$top=1", tok, nil)
	next, _ := page["@odata.nextLink"].(string)
	if status != 200 || len(page["value"].([]any)) != 1 || next == "" {
		t.Fatalf("paging: %d %v", status, page)
	}
	if status, _, _ := a.do("PATCH", "/v1.0/applications/"+id, tok, map[string]any{"displayName": "payments-worker-2"}); status != 204 {
		t.Fatalf("PATCH: %d", status)
	}
	status, body, _ := a.do("PATCH", "/v1.0/applications/"+id, tok, map[string]any{"displayNam": "x"})
	graphError(t, "unknown property", status, body, 400, "Request_BadRequest", "Property 'displayNam' does not exist")

	// A secret is shown once.
	status, pw, _ := a.do("POST", "/v1.0/applications/"+id+"/addPassword", tok, map[string]any{"passwordCredential": map[string]any{"displayName": "ci"}})
	if status != 200 || len(fmt.Sprint(pw["secretText"])) < 30 {
		t.Fatalf("addPassword: %d %v", status, pw)
	}
	_, got, _ := a.do("GET", "/v1.0/applications/"+id, tok, nil)
	creds := got["passwordCredentials"].([]any)
	if len(creds) != 1 || creds[0].(map[string]any)["secretText"] != nil || creds[0].(map[string]any)["hint"] != fmt.Sprint(pw["secretText"])[:3] {
		t.Fatalf("password credentials after creation: %v", creds)
	}

	// Federated credentials.
	ficPath := "/v1.0/applications/" + id + "/federatedIdentityCredentials"
	fic := map[string]any{"name": "spiffe-worker", "issuer": a.info.Issuer, "subject": a.info.SPIFFEID, "audiences": []string{"api://AzureADTokenExchange"}}
	status, created, _ := a.do("POST", ficPath, tok, fic)
	if status != 201 || created["id"] == "" || created["description"] != nil ||
		created["@odata.context"] != strings.TrimSuffix(a.info.AuthorityHost, "/")+"/v1.0/$metadata#applications('"+id+"')/federatedIdentityCredentials/$entity" {
		t.Fatalf("create FIC: %d %v", status, created)
	}
	for _, ref := range []string{created["id"].(string), "spiffe-worker"} {
		if status, got, _ := a.do("GET", ficPath+"/"+ref, tok, nil); status != 200 || got["subject"] != a.info.SPIFFEID {
			t.Fatalf("GET FIC %s: %d %v", ref, status, got)
		}
	}
	if status, _, _ := a.do("PATCH", ficPath+"/spiffe-worker", tok, map[string]any{"description": "the worker"}); status != 204 {
		t.Fatalf("PATCH FIC: %d", status)
	}
	// The workload exchanges its JWT-SVID for the new app at once, once the
	// app has a service principal.
	if status, _ := a.token(appID, "", a.info.Scope); status != 400 && status != 401 {
		t.Fatalf("exchange without a service principal: %d", status)
	}
	if status, sp, _ := a.do("POST", "/v1.0/servicePrincipals", tok, map[string]any{"appId": appID}); status != 201 || sp["appId"] != appID {
		t.Fatalf("create service principal: %d %v", status, sp)
	}
	if status, body := a.token(appID, "", a.info.Scope); status != 200 {
		t.Fatalf("exchange for the new app: %d %v", status, body)
	}

	// Upsert by name.
	upsert := ficPath + "(name='upserted')"
	status, created, _ = a.do("PATCH", upsert, tok, map[string]any{"issuer": "https://token.actions.githubusercontent.com", "subject": "repo:o/r:ref:refs/heads/main", "audiences": []string{"api://AzureADTokenExchange"}}, "Prefer", "create-if-missing")
	if status != 201 || created["name"] != "upserted" {
		t.Fatalf("upsert create: %d %v", status, created)
	}
	if status, _, _ := a.do("PATCH", upsert, tok, map[string]any{"description": "again"}, "Prefer", "create-if-missing"); status != 204 {
		t.Fatalf("upsert update: %d", status)
	}
	status, body, _ = a.do("PATCH", ficPath+"(name='absent')", tok, map[string]any{"description": "x"})
	graphError(t, "PATCH of a missing credential without Prefer", status, body, 404, "Request_ResourceNotFound", "absent")

	// Every rule, in Graph's words: the exact message.
	long := strings.Repeat("a", 601)
	const objectType = ", objectType: Microsoft.Online.DirectoryServices.Application"
	for _, tc := range []struct {
		name string
		body map[string]any
		want string
	}{
		{"bad name", map[string]any{"name": "-bad", "issuer": "https://i.example", "subject": "s", "audiences": []string{"a"}},
			`The name of a federated identity credential must be within 3 and 120 characters, only contain letters (A-Z, a-z), numbers, hyphens and underscores, and start with a letter or a number; "-bad" is not. paramName: FederatedIdentityCredential.Name, paramValue: -bad` + objectType},
		{"name with slash", map[string]any{"name": "a/b", "issuer": "https://i.example", "subject": "s", "audiences": []string{"a"}},
			`The name of a federated identity credential must be within 3 and 120 characters, only contain letters (A-Z, a-z), numbers, hyphens and underscores, and start with a letter or a number; "a/b" is not. paramName: FederatedIdentityCredential.Name, paramValue: a/b` + objectType},
		{"no issuer", map[string]any{"name": "no-issuer", "subject": "s", "audiences": []string{"a"}},
			"The federated identity credential's issuer is required. paramName: FederatedIdentityCredential.Issuer, paramValue: " + objectType},
		{"long subject", map[string]any{"name": "long-subject", "issuer": "https://i.example", "subject": long, "audiences": []string{"a"}},
			"The federated identity credential's subject must be at most 600 characters; it has 601. paramName: FederatedIdentityCredential.Subject, paramValue: " + long + objectType},
		{"two audiences", map[string]any{"name": "two-aud", "issuer": "https://i.example", "subject": "s", "audiences": []string{"a", "b"}},
			"Federated identity credentials must have exactly 1 audience; 2 given. paramName: FederatedIdentityCredential.Audiences, paramValue: [a b]" + objectType},
		{"no subject", map[string]any{"name": "no-subject", "issuer": "https://i.example", "audiences": []string{"a"}},
			"A federated identity credential needs a subject or a claimsMatchingExpression. paramName: FederatedIdentityCredential.Subject, paramValue: " + objectType},
		{"subject and expression", map[string]any{"name": "both", "issuer": "https://token.actions.githubusercontent.com", "subject": "s", "audiences": []string{"a"},
			"claimsMatchingExpression": map[string]any{"value": "claims['sub'] eq 'x'", "languageVersion": 1}},
			"A federated identity credential has either a subject or a claimsMatchingExpression, not both. paramName: FederatedIdentityCredential.Subject, paramValue: s" + objectType},
		{"same issuer and subject", map[string]any{"name": "duplicate", "issuer": a.info.Issuer, "subject": a.info.SPIFFEID, "audiences": []string{"a"}},
			"The combination of issuer and subject must be unique for the application. Issuer " + a.info.Issuer + " and Subject: " + a.info.SPIFFEID + " already exist. paramName: FederatedIdentityCredential.Subject, paramValue: " + a.info.SPIFFEID + objectType},
		{"same name", map[string]any{"name": "spiffe-worker", "issuer": "https://other.example", "subject": "s", "audiences": []string{"a"}},
			"A federated identity credential named spiffe-worker already exists on the application. paramName: FederatedIdentityCredential.Name, paramValue: spiffe-worker" + objectType},
	} {
		status, body, _ := a.do("POST", ficPath, tok, tc.body)
		graphError(t, tc.name, status, body, 400, "InvalidFederatedIdentityCredentialValue", "")
		if got := body["error"].(map[string]any)["message"]; got != tc.want {
			t.Errorf("%s: message\n%q\nwant\n%q", tc.name, got, tc.want)
		}
	}
	status, body, _ = a.do("PATCH", ficPath+"/spiffe-worker", tok, map[string]any{"name": "renamed"})
	graphError(t, "rename", status, body, 400, "InvalidFederatedIdentityCredentialValue", "cannot be changed")
	// The 21st credential.
	for i := 3; i <= 20; i++ {
		if status, body, _ := a.do("POST", ficPath, tok, map[string]any{"name": fmt.Sprintf("fic-%02d", i), "issuer": "https://i.example", "subject": fmt.Sprint(i), "audiences": []string{"a"}}); status != 201 {
			t.Fatalf("credential %d: %d %v", i, status, body)
		}
	}
	status, body, _ = a.do("POST", ficPath, tok, map[string]any{"name": "fic-21", "issuer": "https://i.example", "subject": "21", "audiences": []string{"a"}})
	graphError(t, "21st credential", status, body, 400, "Request_BadRequest", "Maximum of 20 objects can be added to an application")

	if status, _, _ := a.do("DELETE", ficPath+"/spiffe-worker", tok, nil); status != 204 {
		t.Fatalf("DELETE FIC: %d", status)
	}
	if status, _ := a.token(appID, "", a.info.Scope); status == 200 {
		t.Fatal("the deleted credential still exchanges")
	}
	if status, _, _ := a.do("DELETE", "/v1.0/applications/"+id, tok, nil); status != 204 {
		t.Fatalf("DELETE app: %d", status)
	}
	status, body, _ = a.do("GET", "/v1.0/applications/"+id, tok, nil)
	graphError(t, "deleted app", status, body, 404, "Request_ResourceNotFound", id)
}

func TestGraphAppRoleAssignments(t *testing.T) {
	a := newAPI(t)
	tok := a.graphToken()
	_, app, _ := a.do("POST", "/v1.0/applications", tok, map[string]any{"displayName": "client"})
	_, sp, _ := a.do("POST", "/v1.0/servicePrincipals", tok, map[string]any{"appId": app["appId"]})
	_, pw, _ := a.do("POST", "/v1.0/applications/"+app["id"].(string)+"/addPassword", tok, map[string]any{"passwordCredential": map[string]any{}})
	status, res, _ := a.do("GET", "/v1.0/servicePrincipals(appId='"+a.info.ResourceAppID+"')", tok, nil)
	if status != 200 {
		t.Fatalf("resource SP: %d %v", status, res)
	}
	roleID := res["appRoles"].([]any)[0].(map[string]any)["id"]
	path := "/v1.0/servicePrincipals/" + sp["id"].(string) + "/appRoleAssignments"
	status, as, _ := a.do("POST", path, tok, map[string]any{"principalId": sp["id"], "resourceId": res["id"], "appRoleId": roleID})
	if status != 201 {
		t.Fatalf("assign: %d %v", status, as)
	}
	claims := struct {
		Roles []string `json:"roles"`
	}{}
	token := a.mustToken(app["appId"].(string), pw["secretText"].(string), a.info.Scope)
	payload, _ := decodeSegment(strings.Split(token, ".")[1])
	_ = json.Unmarshal(payload, &claims)
	if len(claims.Roles) != 1 || claims.Roles[0] != devtenant.Role {
		t.Fatalf("roles in the token: %v", claims.Roles)
	}
	status, body, _ := a.do("POST", path, tok, map[string]any{"principalId": sp["id"], "resourceId": res["id"], "appRoleId": "00000000-0000-0000-0000-000000000001"})
	graphError(t, "unknown role", status, body, 400, "Request_BadRequest", "Permission being assigned was not found")
	if status, _, _ := a.do("DELETE", path+"/"+as["id"].(string), tok, nil); status != 204 {
		t.Fatalf("unassign: %d", status)
	}
}
