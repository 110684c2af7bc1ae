package entra_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestDiscoveryAndKeys(t *testing.T) {
	f := newFixture(t)
	get := func(path string) (*http.Response, map[string]any) {
		resp, err := f.srv.Client().Get(f.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp, m
	}
	base := f.srv.URL + "/" + tenantID
	resp, doc := get("/contoso.example/v2.0/.well-known/openid-configuration")
	if resp.StatusCode != 200 || doc["issuer"] != base+"/v2.0" || doc["token_endpoint"] != base+"/oauth2/v2.0/token" ||
		doc["jwks_uri"] != base+"/discovery/v2.0/keys" || doc["authorization_endpoint"] != base+"/oauth2/v2.0/authorize" {
		t.Errorf("v2 discovery: %d %v", resp.StatusCode, doc)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "max-age=86400, private" {
		t.Errorf("Cache-Control %q", cc)
	}
	_, doc = get("/" + tenantID + "/.well-known/openid-configuration")
	if doc["issuer"] != "https://sts.windows.net/"+tenantID+"/" || doc["token_endpoint"] != base+"/oauth2/token" {
		t.Errorf("v1 discovery: %v", doc)
	}
	_, doc = get("/common/v2.0/.well-known/openid-configuration")
	if doc["issuer"] != f.srv.URL+"/{tenantid}/v2.0" {
		t.Errorf("common discovery issuer %v", doc["issuer"])
	}
	resp, doc = get("/nowhere.example/v2.0/.well-known/openid-configuration")
	// invalid_tenant, as captured from Entra's discovery endpoint in 2025-08
	// (james-gould/azure-keyvault-emulator#324).
	if resp.StatusCode != 400 || doc["error"] != "invalid_tenant" || doc["error_codes"].([]any)[0] != float64(90002) {
		t.Errorf("unknown tenant discovery: %d %v", resp.StatusCode, doc)
	}
	for _, path := range []string{"/" + tenantID + "/discovery/v2.0/keys", "/" + tenantID + "/discovery/keys", "/common/discovery/keys"} {
		resp, doc = get(path)
		keys, _ := doc["keys"].([]any)
		if resp.StatusCode != 200 || len(keys) < 2 {
			t.Fatalf("%s: %d %v: want the current and the next key", path, resp.StatusCode, doc)
		}
		for _, k := range keys {
			k := k.(map[string]any)
			x5c, _ := k["x5c"].([]any)
			if k["kty"] != "RSA" || k["use"] != "sig" || k["kid"] != k["x5t"] || k["n"] == nil || k["e"] != "AQAB" || len(x5c) != 1 || k["d"] != nil {
				t.Errorf("%s: key %v", path, k)
			}
			wantIssuer := map[string]any{
				"/" + tenantID + "/discovery/v2.0/keys": f.srv.URL + "/" + tenantID + "/v2.0",
				"/common/discovery/keys":                nil,
				"/" + tenantID + "/discovery/keys":      nil,
			}[path]
			if k["issuer"] != wantIssuer {
				t.Errorf("%s: issuer %v, want %v", path, k["issuer"], wantIssuer)
			}
			der, _ := base64.StdEncoding.DecodeString(x5c[0].(string))
			if len(der) == 0 {
				t.Errorf("x5c is not base64 DER")
			}
		}
	}
}

func TestInstanceDiscovery(t *testing.T) {
	f := newFixture(t)
	host := strings.TrimPrefix(f.srv.URL, "https://")
	q := url.Values{"api-version": {"1.1"}, "authorization_endpoint": {"https://" + host + "/" + tenantID + "/oauth2/v2.0/authorize"}}
	resp, err := f.srv.Client().Get(f.srv.URL + "/common/discovery/instance?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		TenantDiscoveryEndpoint string `json:"tenant_discovery_endpoint"`
		APIVersion              string `json:"api-version"`
		Metadata                []struct {
			PreferredNetwork string   `json:"preferred_network"`
			PreferredCache   string   `json:"preferred_cache"`
			Aliases          []string `json:"aliases"`
		} `json:"metadata"`
	}
	json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if doc.TenantDiscoveryEndpoint != "https://"+host+"/"+tenantID+"/v2.0/.well-known/openid-configuration" || doc.APIVersion != "1.1" ||
		len(doc.Metadata) != 1 || doc.Metadata[0].PreferredNetwork != host || len(doc.Metadata[0].Aliases) != 1 {
		t.Errorf("instance discovery: %+v", doc)
	}
	q.Set("authorization_endpoint", "https://login.evil.example/"+tenantID+"/oauth2/v2.0/authorize")
	resp, err = f.srv.Client().Get(f.srv.URL + "/common/discovery/instance?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	var e map[string]any
	json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != 400 || e["error"] != "invalid_instance" {
		t.Errorf("foreign host: %d %v", resp.StatusCode, e)
	}
}
