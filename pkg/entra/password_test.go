package entra_test

import (
	"context"
	"testing"
)

func TestPasswordGrant(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	user, err := f.store.GetUserByUPN(ctx, tenantID, "ada@contoso.example")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("public client, named scope, v2", func(t *testing.T) {
		resp, body := f.post(t, "/"+tenantID+"/oauth2/v2.0/token", ropcForm("username", "ADA@Contoso.Example"), nil)
		if resp.StatusCode != 200 || body["scope"] != "api://payments/Payments.Submit" {
			t.Fatalf("status %d body %v", resp.StatusCode, body)
		}
		_, c := claimsOf(t, f, body["access_token"].(string))
		want := map[string]any{"aud": apiAppID, "azp": publicClientID, "azpacr": "0", "oid": user.ObjectID, "name": "Ada Lovelace",
			"preferred_username": "ada@contoso.example", "scp": "Payments.Submit", "tid": tenantID, "ver": "2.0"}
		for k, v := range want {
			if c[k] != v {
				t.Errorf("%s = %v, want %v", k, c[k], v)
			}
		}
		if sub, _ := c["sub"].(string); sub == "" || sub == user.ObjectID {
			t.Errorf("sub %q: want a pairwise subject, not the object id", sub)
		}
		if c["roles"] != nil || c["idtyp"] != nil {
			t.Errorf("roles %v idtyp %v on a user token", c["roles"], c["idtyp"])
		}
	})

	t.Run("confidential client, .default, v2", func(t *testing.T) {
		resp, body := f.post(t, "/"+tenantID+"/oauth2/v2.0/token", ropcForm("scope", "api://payments/.default", "client_id", clientID, "client_secret", secret), nil)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d body %v", resp.StatusCode, body)
		}
		_, c := claimsOf(t, f, body["access_token"].(string))
		if c["azpacr"] != "1" || c["scp"] != "Payments.Submit Payments.View" {
			t.Errorf("azpacr %v scp %v, want 1 and every published scope", c["azpacr"], c["scp"])
		}
	})

	t.Run("v1 endpoint with resource", func(t *testing.T) {
		resp, body := f.post(t, "/"+tenantID+"/oauth2/token", ropcForm("scope", "", "resource", "api://payments"), nil)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d body %v", resp.StatusCode, body)
		}
		_, c := claimsOf(t, f, body["access_token"].(string))
		if c["scp"] != "Payments.Submit Payments.View" || c["ver"] != "2.0" {
			t.Errorf("scp %v ver %v: want every scope, in the resource's token version", c["scp"], c["ver"])
		}
	})

	t.Run("v1 token: upn, unique_name, amr", func(t *testing.T) {
		resp, body := f.post(t, "/"+tenantID+"/oauth2/v2.0/token", ropcForm("scope", "https://legacy.contoso.example/.default"), nil)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d body %v", resp.StatusCode, body)
		}
		_, c := claimsOf(t, f, body["access_token"].(string))
		want := map[string]any{"aud": "https://legacy.contoso.example", "appid": publicClientID, "appidacr": "0", "upn": "ada@contoso.example",
			"unique_name": "ada@contoso.example", "scp": "Legacy.Use", "oid": user.ObjectID, "ver": "1.0"}
		for k, v := range want {
			if c[k] != v {
				t.Errorf("%s = %v, want %v", k, c[k], v)
			}
		}
		if amr, _ := c["amr"].([]any); len(amr) != 1 || amr[0] != "pwd" {
			t.Errorf("amr %v, want [pwd]", c["amr"])
		}
		if c["idtyp"] != nil || c["idp"] != nil {
			t.Errorf("idtyp %v idp %v on a home-tenant user token", c["idtyp"], c["idp"])
		}
	})
}
