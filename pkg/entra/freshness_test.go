package entra_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/aadsts"
)

// TestRemovalsRefusedOnTheNextExchange: the directory's lookups are kept
// in memory, yet what is removed through another handle on the database
// (another replica on PostgreSQL) is gone from the very next exchange,
// after exchanges that had it in memory.
func TestRemovalsRefusedOnTheNextExchange(t *testing.T) {
	const other = "7e9c4a5d-bf71-4cad-84a2-8b5fad2c3e67" // the seed's no-credentials app, with a secret
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			s, another := stores[name](t)
			f := startFixtureOn(t, s, &fakeVerifier{}, "https://oidc.example.org")
			replica := another()
			ctx := context.Background()
			secretForm, federated, otherForm := ccForm(), ccForm(federatedForm...), ccForm("client_id", other)
			exchange := func(form url.Values) (int, map[string]any) {
				resp, body := f.post(t, "/"+tenantID+"/oauth2/v2.0/token", form, nil)
				return resp.StatusCode, body
			}
			roles := func(form url.Values) []any {
				t.Helper()
				status, body := exchange(form)
				if status != http.StatusOK {
					t.Fatalf("%d %v", status, body)
				}
				_, claims := claimsOf(t, f, body["access_token"].(string))
				r, _ := claims["roles"].([]any)
				return r
			}
			refused := func(what string, form url.Values, code int) {
				t.Helper()
				status, body := exchange(form)
				codes, _ := body["error_codes"].([]any)
				if status == http.StatusOK || len(codes) != 1 || codes[0] != float64(code) {
					t.Errorf("%s: the next exchange got %d %v %v, want AADSTS%d", what, status, body["error"], codes, code)
				}
			}
			// Twice each, so that the second is answered from memory.
			for range 2 {
				for _, form := range []url.Values{secretForm, federated, otherForm} {
					if status, body := exchange(form); status != http.StatusOK {
						t.Fatalf("%d %v", status, body)
					}
				}
			}
			if r := roles(secretForm); !slices.Contains(r, any("Payments.Read")) {
				t.Fatalf("roles %v, want Payments.Read", r)
			}

			worker, workerSP, err := replica.GetApplicationWithPrincipalByAppID(ctx, tenantID, clientID)
			must(t, err)
			_, paymentsSP, err := replica.GetApplicationWithPrincipalByAppID(ctx, tenantID, apiAppID)
			must(t, err)
			assignments, err := replica.ListAppRoleAssignments(ctx, workerSP.ObjectID)
			must(t, err)
			for _, a := range assignments {
				if a.ResourceID == paymentsSP.ObjectID {
					must(t, replica.DeleteAppRoleAssignment(ctx, a.ID))
				}
			}
			if r := roles(secretForm); len(r) != 0 {
				t.Errorf("roles %v after the role assignment was removed, want none", r)
			}

			secrets, err := replica.ListPasswordCredentials(ctx, worker.ObjectID)
			must(t, err)
			for _, c := range secrets {
				must(t, replica.DeletePasswordCredential(ctx, worker.ObjectID, c.KeyID))
			}
			refused("secret removed", secretForm, aadsts.InvalidClientSecret)
			if status, body := exchange(federated); status != http.StatusOK {
				t.Errorf("the federated credential was refused with the secret: %d %v", status, body)
			}

			feds, err := replica.ListFederatedCredentials(ctx, worker.ObjectID)
			must(t, err)
			for _, c := range feds {
				must(t, replica.DeleteFederatedCredential(ctx, worker.ObjectID, c.ID))
			}
			refused("federated credential removed", federated, aadsts.NoMatchingSubject) // the stand-in verifier's refusal of no credential

			app, _, err := replica.GetApplicationWithPrincipalByAppID(ctx, tenantID, other)
			must(t, err)
			must(t, replica.DeleteApplication(ctx, app.ObjectID))
			refused("application deleted", otherForm, aadsts.ApplicationNotFound)
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
