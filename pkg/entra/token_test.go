package entra_test

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra"
)

func TestTokenEndpointErrors(t *testing.T) {
	f := newFixture(t)
	v2 := "/" + tenantID + "/oauth2/v2.0/token"
	aud := f.srv.URL + v2
	certForm := func(assertion string) url.Values {
		return ccForm("client_secret", "", "client_assertion", assertion, "client_assertion_type", jwtBearer)
	}
	sha1Sum := sha1.Sum(strangerCert.cert.Raw)
	for _, tc := range []struct {
		name   string
		path   string
		form   url.Values
		edit   func(*http.Request)
		status int
		oauth  string
		code   int
		says   string
	}{
		// invalid_tenant: captured 2023-06 (microsoftgraph/windowsupdates-webapplication-sample#6) and
		// 2025-08 (james-gould/azure-keyvault-emulator#324); a 2020 capture
		// (microsoft/azure-tools-for-java#3900) had invalid_request, the most recent wins.
		{"unknown tenant", "/" + "00000000-0000-0000-0000-0000000000aa" + "/oauth2/v2.0/token", ccForm(), nil, 400, "invalid_tenant", 90002, "Tenant '00000000-0000-0000-0000-0000000000aa' not found"},
		{"unknown domain", "/nowhere.example/oauth2/v2.0/token", ccForm(), nil, 400, "invalid_tenant", 90002, "Tenant 'nowhere.example' not found"},
		{"no grant_type", v2, ccForm("grant_type", ""), nil, 400, "invalid_request", 900144, "parameter: 'grant_type'"},
		{"JSON body", v2, ccForm(), func(r *http.Request) { r.Header.Set("Content-Type", "application/json") }, 400, "invalid_request", 900144, "'grant_type'"},
		{"unsupported grant", v2, ccForm("grant_type", "magic"), nil, 400, "unsupported_grant_type", 70003, "unsupported grant type 'magic'"},
		{"no client_id", v2, ccForm("client_id", ""), nil, 400, "invalid_request", 900144, "parameter: 'client_id'"},
		// Captured 2024-11 (mullerpeter/databricks-grafana#99) and 2026-07
		// (MyPureCloud/terraform-provider-genesyscloud#2443).
		{"no scope", v2, ccForm("scope", ""), nil, 400, "invalid_request", 90014, "The required field 'scope' is missing from the credential. Ensure that you have all the necessary parameters for the login request."},
		{"scope without .default", v2, ccForm("scope", "api://payments/Payments.Read"), nil, 400, "invalid_scope", 1002012, "scope api://payments/Payments.Read is not valid"},
		{"only OIDC scopes", v2, ccForm("scope", "openid profile"), nil, 400, "invalid_scope", 1002012, "/.default suffixed"},
		{"two resources", v2, ccForm("scope", "api://payments/.default https://legacy.contoso.example/.default"), nil, 400, "invalid_scope", 700022, "single resource"},
		{"unknown client", v2, ccForm("client_id", "00000000-0000-0000-0000-000000000001"), nil, 400, "unauthorized_client", 700016, "Application with identifier '00000000-0000-0000-0000-000000000001' was not found in the directory 'Contoso'"},
		{"no credential", v2, ccForm("client_secret", ""), nil, 401, "invalid_client", 7000216, "'client_assertion', 'client_secret' or 'request' is required"},
		{"wrong secret", v2, ccForm("client_secret", "nope"), nil, 401, "invalid_client", 7000215, "for a secret added to app '" + clientID + "'"},
		{"wrong secret in Basic", v2, ccForm("client_secret", "", "client_id", ""), func(r *http.Request) { r.SetBasicAuth(clientID, "nope") }, 401, "invalid_client", 7000215, "Invalid client secret"},
		{"secret for a managed identity", v2, ccForm("client_id", miClient), nil, 401, "invalid_client", 7000215, "Invalid client secret"},
		{"assertion without type", v2, ccForm("client_secret", "", "client_assertion", "good"), nil, 400, "invalid_request", 900144, "'client_assertion_type'"},
		{"assertion of another type", v2, ccForm("client_secret", "", "client_assertion", "good", "client_assertion_type", "urn:x"), nil, 401, "invalid_client", 70002, "'urn:x' is not supported"},
		{"assertion refused", v2, ccForm("client_secret", "", "client_assertion", "bad", "client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"), nil, 401, "invalid_client", 700213, "No matching federated identity record"},
		{"unknown resource", v2, ccForm("scope", "api://unknown/.default"), nil, 400, "invalid_resource", 500011, "The resource principal named api://unknown was not found in the tenant named Contoso"},
		{"v1 without resource", "/" + tenantID + "/oauth2/token", ccForm("scope", ""), nil, 400, "invalid_request", 900144, "parameter: 'resource'"},
		{"huge body", v2, ccForm("client_assertion", strings.Repeat("a", 70<<10)), nil, 400, "invalid_request", 900143, "larger than"},
		{"duplicate parameter", v2, func() url.Values { v := ccForm(); v.Add("scope", "api://payments/.default"); return v }(), nil, 400, "invalid_request", 9000411, "The parameter 'scope' is duplicated"},
		{"certificate not registered", v2, certForm(strangerCert.assertion(t, aud, nil)), nil, 401, "invalid_client", 700027, "is not registered on application. [Reason - The key was not found."},
		{"certificate named by x5t only, not registered", v2, certForm(strangerCert.assertion(t, aud, nil, "x5t", base64.RawURLEncoding.EncodeToString(sha1Sum[:]))), nil, 401, "invalid_client", 700027, strings.ToUpper(hex.EncodeToString(sha1Sum[:]))},
		{"certificate assertion named by an unknown kid only", v2, certForm(testCert.assertion(t, aud, nil, "kid", "k")), nil, 401, "invalid_client", 700027, "[Reason - The key was not found."},
		// Captured 2023-12 in MSAL.NET's test fixtures (MockHelpers.BadCredMissingSha1Error5002723).
		{"certificate assertion naming no key", v2, certForm(testCert.assertion(t, aud, nil, "typ", "JWT")), nil, 401, "invalid_client", 5002723, "Invalid JWT token. No certificate SHA-1 thumbprint, certificate SHA-256 thumbprint, nor keyId specified in token header."},
		// Captured 2023-12 in MSAL.NET's test fixtures (MockHelpers.InvalidTenantError900023) and
		// 2023-01 in microsoft/Analysis-Services#194.
		{"tenant neither a GUID nor a domain", "/invalid_tenant/oauth2/v2.0/token", ccForm(), nil, 400, "invalid_request", 900023, "Specified tenant identifier 'invalid_tenant' is neither a valid DNS name, nor a valid external domain."},
		{"tenant without a dot", "/authorize/oauth2/v2.0/token", ccForm(), nil, 400, "invalid_request", 900023, "Specified tenant identifier 'authorize'"},
		{"certificate assertion signed by another key", v2, certForm(func() string {
			a := testCert.assertion(t, aud, nil)
			b := strangerCert.assertion(t, aud, nil)
			return a[:strings.LastIndex(a, ".")] + b[strings.LastIndex(b, "."):]
		}()), nil, 401, "invalid_client", 700027, "failed signature validation"},
		{"certificate assertion for another client", v2, certForm(testCert.assertion(t, aud, func(c map[string]any) { c["sub"] = apiAppID })), nil, 401, "invalid_client", 700021, "doesn't match 'client_id'"},
		{"certificate assertion for another endpoint", v2, certForm(testCert.assertion(t, "https://login.microsoftonline.com/"+tenantID+"/oauth2/v2.0/token", nil)), nil, 401, "invalid_client", 700027, "is not the token endpoint"},
		{"expired certificate assertion", v2, certForm(testCert.assertion(t, aud, func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() })), nil, 401, "invalid_client", 700024, "not within its valid time range"},
		{"password: no username", v2, ropcForm("username", ""), nil, 400, "invalid_request", 900144, "parameter: 'username'"},
		{"password: no password", v2, ropcForm("password", ""), nil, 400, "invalid_request", 900144, "parameter: 'password'"},
		{"password: unknown user", v2, ropcForm("username", "grace@contoso.example"), nil, 400, "invalid_grant", 50034, "does not exist in the " + tenantID + " directory"},
		{"password: wrong password", v2, ropcForm("password", "Tr0ub4dor&3"), nil, 400, "invalid_grant", 50126, "invalid username or password"},
		{"password: unpublished scope", v2, ropcForm("scope", "api://payments/Payments.Delete"), nil, 400, "invalid_scope", 70011, "The scope api://payments/Payments.Delete isn't valid"},
		{"password: only OIDC scopes", v2, ropcForm("scope", "openid profile"), nil, 400, "invalid_scope", 70011, "isn't valid"},
		{"password: two resources", v2, ropcForm("scope", "api://payments/Payments.Submit https://legacy.contoso.example/Legacy.Read"), nil, 400, "invalid_scope", 700022, "several resources"},
		{"password: wrong client secret", v2, ropcForm("client_id", clientID, "client_secret", "nope"), nil, 401, "invalid_client", 7000215, "Invalid client secret"},
		// Only applications marked as public clients may use the password
		// grant without authenticating. Captured 2024-12 (secureworks/TokenMan#1,
		// with error_uri) and 2019-02 (MicrosoftDocs/azure-docs#25959).
		{"password: confidential client without a secret", v2, ropcForm("client_id", clientID), nil, 401, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."},
		// Captured 2019-10 (pnp/cli-microsoft365#948) and 2022-02 (Dielee/teamsPresenceBridge#1).
		{"password: public client with a secret", v2, ropcForm("client_secret", secret), nil, 401, "invalid_client", 700025, "Client is public so neither 'client_assertion' nor 'client_secret' should be presented."},
		// One client authentication per request (RFC 6749, section 2.3). No
		// capture of Entra's answer to both was found (searched: Entra's
		// issues and pages, entra.md); 70002 is the code Entra reuses for
		// client authentication failures (Azure-Samples/active-directory-dotnet-native-headless#22:
		// "AADSTS70002: The request body must contain the following parameter: 'client_secret or client_assertion'").
		{"a secret and an assertion", v2, ccForm("client_assertion", "good", "client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"), nil, 401, "invalid_client", 70002, "only one of the following parameters: 'client_assertion' or 'client_secret'"},
		{"password: managed identity", v2, ropcForm("client_id", miClient), nil, 400, "unauthorized_client", 700016, "was not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := f.post(t, tc.path, tc.form, tc.edit)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			codes, _ := body["error_codes"].([]any)
			if body["error"] != tc.oauth || len(codes) != 1 || codes[0] != float64(tc.code) {
				t.Errorf("error %v codes %v, want %s [%d]", body["error"], body["error_codes"], tc.oauth, tc.code)
			}
			desc, _ := body["error_description"].(string)
			if !strings.HasPrefix(desc, "AADSTS") || !strings.Contains(desc, tc.says) || !strings.Contains(desc, "Trace ID: ") {
				t.Errorf("error_description %q does not say %q", desc, tc.says)
			}
			for _, k := range []string{"timestamp", "trace_id", "correlation_id"} {
				if s, _ := body[k].(string); s == "" {
					t.Errorf("%s missing", k)
				}
			}
		})
	}
}

func TestTokenShapes(t *testing.T) {
	f := newFixture(t)
	sp, err := f.store.GetServicePrincipalByAppID(context.Background(), tenantID, clientID)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("v2 token from the v2 endpoint by domain, with MSAL's extra scopes", func(t *testing.T) {
		resp, body := f.post(t, "/contoso.example/oauth2/v2.0/token?client-request-id=x",
			ccForm("scope", "api://payments/.default openid offline_access profile", "client_info", "1", "x-client-SKU", "MSAL.Go"), nil)
		if resp.StatusCode != 200 || body["token_type"] != "Bearer" || body["expires_in"] != float64(3599) || body["ext_expires_in"] != float64(3599) {
			t.Fatalf("status %d body %v", resp.StatusCode, body)
		}
		if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
			t.Errorf("Cache-Control %q", cc)
		}
		h, c := claimsOf(t, f, body["access_token"].(string))
		if h.ExtraHeaders["typ"] != "JWT" || h.ExtraHeaders["x5t"] != nil {
			t.Errorf("header %v: want typ JWT and no x5t on v2", h.ExtraHeaders)
		}
		want := map[string]any{"aud": apiAppID, "iss": "https://" + resp.Request.URL.Host + "/" + tenantID + "/v2.0", "azp": clientID, "azpacr": "1",
			"oid": sp.ObjectID, "sub": sp.ObjectID, "tid": tenantID, "ver": "2.0"}
		for k, v := range want {
			if c[k] != v {
				t.Errorf("%s = %v, want %v", k, c[k], v)
			}
		}
		if roles, _ := c["roles"].([]any); len(roles) != 1 || roles[0] != "Payments.Read" {
			t.Errorf("roles %v, want [Payments.Read] only", c["roles"])
		}
		if c["iat"] != c["nbf"] || c["exp"].(float64)-c["iat"].(float64) != 3900 {
			t.Errorf("iat %v nbf %v exp %v: want iat = nbf, back-dated 5 minutes", c["iat"], c["nbf"], c["exp"])
		}
		// Entra's opaque claims: random, each its own bytes.
		for k, pattern := range map[string]string{"aio": `^[A-Za-z0-9_-]{64}$`, "rh": `^0\.[A-Za-z0-9_-]{64}\.$`, "uti": `^[A-Za-z0-9_-]{22}$`} {
			if v, _ := c[k].(string); !regexp.MustCompile(pattern).MatchString(v) {
				t.Errorf("%s %q does not match %s", k, v, pattern)
			}
		}
		aio, _ := c["aio"].(string)
		rh, _ := c["rh"].(string)
		uti, _ := c["uti"].(string)
		if len(rh) > 2 && (aio == rh[2:len(rh)-1] || strings.HasPrefix(aio, uti) || strings.HasPrefix(rh[2:], uti)) {
			t.Errorf("aio %s, rh %s and uti %s share their random bytes", aio, rh, uti)
		}
		for _, absent := range []string{"appid", "appidacr", "idtyp"} {
			if _, ok := c[absent]; ok {
				t.Errorf("v2 token carries %s", absent)
			}
		}
	})

	t.Run("v1 token for a resource without accessTokenAcceptedVersion, from the v1 endpoint", func(t *testing.T) {
		form := ccForm("scope", "", "resource", "https://legacy.contoso.example")
		resp, body := f.post(t, "/"+tenantID+"/oauth2/token", form, nil)
		if resp.StatusCode != 200 || body["expires_in"] != "3599" || body["resource"] != "https://legacy.contoso.example" {
			t.Fatalf("status %d body %v", resp.StatusCode, body)
		}
		for _, k := range []string{"ext_expires_in", "expires_on", "not_before"} {
			if _, ok := body[k].(string); !ok {
				t.Errorf("%s is not a string: %v", k, body[k])
			}
		}
		h, c := claimsOf(t, f, body["access_token"].(string))
		if h.ExtraHeaders["x5t"] != h.KeyID {
			t.Errorf("x5t %v, want the kid %s on v1", h.ExtraHeaders["x5t"], h.KeyID)
		}
		want := map[string]any{"aud": "https://legacy.contoso.example", "iss": "https://sts.windows.net/" + tenantID + "/", "appid": clientID,
			"appidacr": "1", "idp": "https://sts.windows.net/" + tenantID + "/", "idtyp": "app", "ver": "1.0"}
		for k, v := range want {
			if c[k] != v {
				t.Errorf("%s = %v, want %v", k, c[k], v)
			}
		}
	})

	t.Run("federated assertion for a managed identity: acr 2, no roles", func(t *testing.T) {
		form := ccForm("client_id", miClient, "client_secret", "", "client_assertion", "good",
			"client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", "scope", apiAppID+"/.default")
		resp, body := f.post(t, "/"+tenantID+"/oauth2/v2.0/token", form, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d body %v", resp.StatusCode, body)
		}
		if len(f.verifier.creds) != 1 || f.verifier.creds[0].Name != "k8s" {
			t.Errorf("the verifier saw %v, want the identity's credential", f.verifier.creds)
		}
		_, c := claimsOf(t, f, body["access_token"].(string))
		if c["azpacr"] != "2" || c["azp"] != miClient || c["roles"] != nil {
			t.Errorf("azp %v azpacr %v roles %v", c["azp"], c["azpacr"], c["roles"])
		}
	})
}

// TestResourceForms asks for Entra's first-party and registered resources
// in every form the Azure SDKs and az send: application ID URI or appId,
// with or without a trailing slash (azure-mgmt-* asks for
// https://management.azure.com/.default, azidentity and az for
// https://management.azure.com//.default). The v1 token's aud is the
// resource as requested.
func TestResourceForms(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct{ scope, aud string }{
		{"https://management.azure.com/.default", "https://management.azure.com"},
		{"https://management.azure.com//.default", "https://management.azure.com/"},
		{"https://management.core.windows.net//.default", "https://management.core.windows.net/"},
		{"797f4846-ba00-4fd7-ba43-dac1f8f63013/.default", "797f4846-ba00-4fd7-ba43-dac1f8f63013"},
		{"https://graph.microsoft.com/.default", "https://graph.microsoft.com"},
		{"https://graph.microsoft.com//.default", "https://graph.microsoft.com/"},
		{"https://legacy.contoso.example/.default", "https://legacy.contoso.example"},
		{"https://legacy.contoso.example//.default", "https://legacy.contoso.example/"},
		{"api://payments/.default", apiAppID},
		{"api://payments//.default", apiAppID},
		{apiAppID + "/.default", apiAppID},
		{"api://" + apiAppID + "/.default", apiAppID},
		{apiAppID + "//.default", apiAppID},
		{strings.ToUpper(apiAppID) + "/.default", apiAppID},
	} {
		resp, body := f.post(t, "/"+tenantID+"/oauth2/v2.0/token", ccForm("scope", tc.scope), nil)
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d %v", tc.scope, resp.StatusCode, body["error_description"])
			continue
		}
		if _, c := claimsOf(t, f, body["access_token"].(string)); c["aud"] != tc.aud {
			t.Errorf("%s: aud %v, want %s", tc.scope, c["aud"], tc.aud)
		}
	}
	for _, res := range []string{"https://management.azure.com", "https://management.azure.com/"} {
		if resp, body := f.post(t, "/"+tenantID+"/oauth2/token", ccForm("scope", "", "resource", res), nil); resp.StatusCode != 200 || body["resource"] != res {
			t.Errorf("v1 resource %s: %d %v", res, resp.StatusCode, body)
		}
	}
	for _, scope := range []string{"https://management.azure.com///.default", "https://management.azure.com/x/.default", "api://payment/.default"} {
		resp, body := f.post(t, "/"+tenantID+"/oauth2/v2.0/token", ccForm("scope", scope), nil)
		if codes, _ := body["error_codes"].([]any); resp.StatusCode != 400 || len(codes) != 1 || codes[0] != float64(500011) {
			t.Errorf("%s: %d %v, want AADSTS500011", scope, resp.StatusCode, body)
		}
	}
}

// TestClientWithoutServicePrincipal is the most common mistake of real
// set-ups: an application created through Graph without POST
// /servicePrincipals. Entra's answer was captured in 2025-06
// (Azure/Commercial-Marketplace-SaaS-Accelerator#830).
func TestClientWithoutServicePrincipal(t *testing.T) {
	f := newFixture(t)
	const lonely = "6e9d4b5c-0f1a-4b2c-8d3e-4f5a6b7c8d9e"
	if err := f.store.CreateApplication(context.Background(), store.Application{ObjectID: "lonely", TenantID: tenantID, AppID: lonely}, nil, nil); err != nil {
		t.Fatal(err)
	}
	for _, form := range []url.Values{ccForm("client_id", lonely), ropcForm("client_id", lonely)} {
		resp, body := f.post(t, "/"+tenantID+"/oauth2/v2.0/token", form, nil)
		desc, _ := body["error_description"].(string)
		want := "AADSTS7000229: The client application " + lonely + " is missing service principal in the tenant " + tenantID + ". See instructions here: https://go.microsoft.com/fwlink/?linkid=2225119 Trace ID: "
		if resp.StatusCode != 401 || body["error"] != "invalid_client" || !strings.HasPrefix(desc, want) {
			t.Errorf("%s: %d %v %q, want 401 invalid_client %q", form.Get("grant_type"), resp.StatusCode, body["error"], desc, want)
		}
	}
}

func TestTokenLifetimeOption(t *testing.T) {
	f := newFixture(t)
	short := httptest.NewTLSServer(entra.New(f.store, f.verifier, f.signer, entra.WithTokenLifetime(10*time.Minute)).Handler())
	defer short.Close()
	f.srv = short
	resp, body := f.post(t, "/"+tenantID+"/oauth2/v2.0/token", ccForm(), nil)
	if resp.StatusCode != 200 || body["expires_in"] != float64(599) {
		t.Errorf("status %d expires_in %v, want 599", resp.StatusCode, body["expires_in"])
	}
}
