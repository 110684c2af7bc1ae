package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// contract checks every exchange with a documented route against
// api/openapi.yaml and remembers which operations answered with success.
type contract struct {
	t      *testing.T
	base   http.RoundTripper
	router routers.Router
	mu     sync.Mutex
	ok     map[string]bool
}

func (c *contract) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		reqBody, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	resp, err := c.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	route, params, rerr := c.router.FindRoute(req)
	if rerr != nil {
		return resp, nil // the token endpoint: not part of this description
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	check := req.Clone(context.Background())
	check.Body = io.NopCloser(bytes.NewReader(reqBody))
	in := &openapi3filter.RequestValidationInput{Request: check, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true}}
	if resp.StatusCode < 400 {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			c.t.Errorf("%s %s: the request does not match the description: %v", req.Method, req.URL.Path, err)
		}
	}
	if err := openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header, Body: io.NopCloser(bytes.NewReader(body)),
		Options: in.Options,
	}); err != nil {
		c.t.Errorf("%s %s → %d: the answer does not match the description: %v\n%s", req.Method, req.URL.Path, resp.StatusCode, err, body)
	}
	if resp.StatusCode < 300 {
		c.mu.Lock()
		c.ok[route.Operation.OperationID] = true
		c.mu.Unlock()
	}
	return resp, nil
}

// TestOpenAPIDescription drives every documented operation through the
// running handlers and checks each request and answer against the
// description; every operation must answer with success at least once.
func TestOpenAPIDescription(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromFile("../../api/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("api/openapi.yaml is not a valid OpenAPI 3 description: %v", err)
	}
	a := newAPI(t)
	doc.Servers = openapi3.Servers{{URL: a.info.AuthorityHost}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	c := &contract{t: t, base: a.client.Transport, router: router, ok: map[string]bool{}}
	a.client = &http.Client{Transport: c, Timeout: a.client.Timeout}

	g := a.graphToken()
	_, app, _ := a.do("POST", "/v1.0/applications", g, map[string]any{"displayName": "contract",
		"appRoles": []any{map[string]any{"value": "Data.Write", "allowedMemberTypes": []string{"Application"}}}, "identifierUris": []string{"api://contract"}})
	appPath := "/v1.0/applications/" + app["id"].(string)
	a.do("GET", "/v1.0/applications", g, nil)
	a.do("GET", appPath, g, nil)
	a.do("PATCH", appPath, g, map[string]any{"displayName": "contract-2"})
	_, pw, _ := a.do("POST", appPath+"/addPassword", g, map[string]any{"passwordCredential": map[string]any{"displayName": "x"}})
	a.do("POST", appPath+"/removePassword", g, map[string]any{"keyId": pw["keyId"]})
	fic := map[string]any{"name": "contract", "issuer": "https://i.example", "subject": "s", "audiences": []string{"api://AzureADTokenExchange"}}
	a.do("POST", appPath+"/federatedIdentityCredentials", g, fic)
	a.do("GET", appPath+"/federatedIdentityCredentials", g, nil)
	a.do("GET", appPath+"/federatedIdentityCredentials/contract", g, nil)
	a.do("PATCH", appPath+"/federatedIdentityCredentials/contract", g, map[string]any{"description": "d"})
	a.do("POST", appPath+"/federatedIdentityCredentials", g, map[string]any{"name": "-", "issuer": "x", "audiences": []string{}}) // an error answer
	a.do("DELETE", appPath+"/federatedIdentityCredentials/contract", g, nil)
	_, sp, _ := a.do("POST", "/v1.0/servicePrincipals", g, map[string]any{"appId": app["appId"]})
	a.do("GET", "/v1.0/servicePrincipals", g, nil)
	_, sp2, _ := a.do("GET", "/v1.0/servicePrincipals/"+sp["id"].(string), g, nil)
	roleID := sp2["appRoles"].([]any)[0].(map[string]any)["id"]
	asPath := "/v1.0/servicePrincipals/" + sp["id"].(string) + "/appRoleAssignments"
	_, as, _ := a.do("POST", asPath, g, map[string]any{"principalId": sp["id"], "resourceId": sp["id"], "appRoleId": roleID})
	a.do("GET", asPath, g, nil)
	a.do("DELETE", asPath+"/"+fmt.Sprint(as["id"]), g, nil)
	a.do("DELETE", appPath, g, nil)
	a.do("GET", appPath, g, nil) // 404 in Graph's shape

	m := a.mustToken(a.info.ClientID, a.info.ClientSecret, "https://management.core.windows.net//.default")
	const v = "?api-version=2024-11-30"
	rg := "/subscriptions/" + a.info.SubscriptionID + "/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities"
	a.do("PUT", rg+"/id1"+v, m, map[string]any{"location": "westeurope"})
	a.do("GET", rg+v, m, nil)
	a.do("GET", rg+"/id1"+v, m, nil)
	a.do("PUT", rg+"/id1/federatedIdentityCredentials/cred-1"+v, m, map[string]any{"properties": map[string]any{"issuer": "https://i.example", "subject": "s", "audiences": []string{"a"}}})
	a.do("PUT", rg+"/id1/federatedIdentityCredentials/cred-2"+v, m, map[string]any{"properties": map[string]any{"issuer": "https://i.example", "subject": "s", "audiences": []string{"a", "b"}}}) // an error answer
	a.do("GET", rg+"/id1/federatedIdentityCredentials"+v, m, nil)
	a.do("GET", rg+"/id1/federatedIdentityCredentials/cred-1"+v, m, nil)
	a.do("DELETE", rg+"/id1/federatedIdentityCredentials/cred-1"+v, m, nil)
	a.do("DELETE", rg+"/id1"+v, m, nil)

	_, client, _ := a.do("GET", "/v1.0/servicePrincipals(appId='"+a.info.ClientID+"')", g, nil)
	const rav = "?api-version=2022-04-01"
	sub := "/subscriptions/" + a.info.SubscriptionID + "/providers/Microsoft.Authorization/"
	ra := sub + "roleAssignments/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d" + rav
	a.do("PUT", ra, m, map[string]any{"properties": map[string]any{"roleDefinitionId": sub + "roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7", "principalId": client["id"]}})
	a.do("PUT", sub+"roleAssignments/x"+rav, m, map[string]any{}) // an error answer
	a.do("GET", ra, m, nil)
	a.do("GET", sub+"roleAssignments"+rav, m, nil)
	a.do("GET", sub+"roleDefinitions"+rav, m, nil)
	a.do("DELETE", ra, m, nil)

	var missing []string
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			if !c.ok[op.OperationID] {
				missing = append(missing, op.OperationID)
			}
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("documented operations that never answered with success: %v", missing)
	}
}
