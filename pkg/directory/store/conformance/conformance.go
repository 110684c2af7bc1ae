// Package conformance is the behaviour every store.Store backend must have,
// as one suite that each backend's tests run against a fresh, empty store.
package conformance

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
)

// Opener returns a new, empty store and a way to open another handle on
// the same database (as a second replica has), all closed when t ends.
type Opener func(t *testing.T) (s store.Store, another func() store.Store)

// Run runs the whole suite, each test against its own store.
func Run(t *testing.T, open Opener) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, store.Store)
	}{
		{"Tenants", testTenants},
		{"Applications", testApplications},
		{"DeleteApplicationCascades", testDeleteApplication},
		{"ApplicationOwners", testApplicationOwners},
		{"ServicePrincipals", testServicePrincipals},
		{"Secrets", testSecrets},
		{"Certificates", testCertificates},
		{"FederatedCredentials", testFederatedCredentials},
		{"FederatedCredentialLimitUnderRace", testFederatedLimitRace},
		{"AppRoleAssignments", testAppRoleAssignments},
		{"ManagedIdentities", testManagedIdentities},
		{"Subscriptions", testSubscriptions},
		{"RoleAssignments", testRoleAssignments},
		{"Users", testUsers},
		{"SigningKeys", testSigningKeys},
		{"SigningKeyRace", testSigningKeyRace},
		{"Ping", func(t *testing.T, s store.Store) { must(t, s.Ping(context.Background())) }},
		{"UpdateAbortedByItsFunction", testUpdateAborted},
		{"CreateApplicationAtomic", testCreateApplicationAtomic},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := open(t)
			tc.fn(t, s)
		})
	}
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, a, b store.Store)
	}{
		{"ConcurrentApplicationUpdates", testConcurrentApplicationUpdates},
		{"ConcurrentFederatedCredentialUpdates", testConcurrentFederatedUpdates},
		{"ConcurrentTenantAndUserUpdates", testConcurrentTenantAndUserUpdates},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, another := open(t)
			tc.fn(t, a, another())
		})
	}
}

const (
	tenantID = "6f0c2a4e-1b7d-4c55-9f3e-2d8a1b7c9e10"
	otherTID = "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9"
)

// at is a time with millisecond precision, which every backend keeps.
var at = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: got %v, want %v", what, err, want)
	}
}

func same[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}

func seedTenant(t *testing.T, s store.Store) {
	t.Helper()
	must(t, s.CreateTenant(context.Background(), store.Tenant{ID: tenantID, DisplayName: "Contoso", Domains: []string{"contoso.example"}}))
}

func testTenants(t *testing.T, s store.Store) {
	ctx := context.Background()
	tn := store.Tenant{ID: tenantID, DisplayName: "Contoso", Domains: []string{"contoso.example", "contoso.onmicrosoft.example"}, ManagedBy: store.ManagedBySeed}
	must(t, s.CreateTenant(ctx, tn))
	got, err := s.GetTenant(ctx, tenantID)
	must(t, err)
	same(t, "GetTenant", got, tn)
	got, err = s.GetTenantByDomain(ctx, "CONTOSO.example")
	must(t, err)
	same(t, "GetTenantByDomain is case-insensitive", got.ID, tenantID)

	wantErr(t, "duplicate id", s.CreateTenant(ctx, store.Tenant{ID: tenantID}), store.ErrAlreadyExists)
	wantErr(t, "a domain of another tenant", s.CreateTenant(ctx, store.Tenant{ID: otherTID, Domains: []string{"Contoso.Example"}}), store.ErrAlreadyExists)
	if _, err := s.GetTenant(ctx, otherTID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a failed create left a tenant behind: %v", err)
	}
	_, err = s.GetTenantByDomain(ctx, "fabrikam.example")
	wantErr(t, "unknown domain", err, store.ErrNotFound)

	tn.DisplayName, tn.Domains = "Contoso Ltd", []string{"contoso.example"}
	must(t, s.UpdateTenant(ctx, tn.ID, store.Replace(tn)))
	got, err = s.GetTenant(ctx, tenantID)
	must(t, err)
	same(t, "after update", got, tn)
	_, err = s.GetTenantByDomain(ctx, "contoso.onmicrosoft.example")
	wantErr(t, "a removed domain", err, store.ErrNotFound)
	wantErr(t, "update of a missing tenant", s.UpdateTenant(ctx, otherTID, store.Replace(store.Tenant{})), store.ErrNotFound)

	must(t, s.CreateTenant(ctx, store.Tenant{ID: otherTID, DisplayName: "Fabrikam", Domains: []string{}}))
	all, err := s.ListTenants(ctx)
	must(t, err)
	if len(all) != 2 {
		t.Errorf("ListTenants: %d tenants, want 2", len(all))
	}
}

func app(objectID, appID string, uris ...string) store.Application {
	if uris == nil {
		uris = []string{}
	}
	return store.Application{ObjectID: objectID, TenantID: tenantID, AppID: appID, DisplayName: objectID, IdentifierURIs: uris,
		AppRoles: []store.AppRole{}, AccessTokenAcceptedVersion: 2, CreatedAt: at}
}

func testApplications(t *testing.T, s store.Store) {
	ctx := context.Background()
	wantErr(t, "an app in a missing tenant", s.CreateApplication(ctx, app("o1", "c1"), nil, nil), store.ErrNotFound)
	seedTenant(t, s)
	a := app("o1", "c1", "api://payments", "https://payments.contoso.example")
	a.AppRoles = []store.AppRole{{ID: "r1", Value: "Payments.Read", DisplayName: "Read", AllowedMemberTypes: []string{"Application"}, IsEnabled: true}}
	a.PermissionScopes = []store.PermissionScope{{ID: "s1", Value: "Payments.Submit", AdminConsentDisplayName: "Submit payments", IsEnabled: true}}
	must(t, s.CreateApplication(ctx, a, nil, nil))
	for name, get := range map[string]func() (store.Application, error){
		"GetApplication":        func() (store.Application, error) { return s.GetApplication(ctx, "o1") },
		"GetApplicationByAppID": func() (store.Application, error) { return s.GetApplicationByAppID(ctx, tenantID, "c1") },
		"GetApplicationByIdentifierURI": func() (store.Application, error) {
			return s.GetApplicationByIdentifierURI(ctx, tenantID, "api://payments")
		},
	} {
		got, err := get()
		must(t, err)
		same(t, name, got, a)
	}
	_, err := s.GetApplicationByAppID(ctx, otherTID, "c1")
	wantErr(t, "appId in another tenant", err, store.ErrNotFound)
	wantErr(t, "duplicate appId", s.CreateApplication(ctx, app("o2", "c1"), nil, nil), store.ErrAlreadyExists)
	wantErr(t, "duplicate identifier URI", s.CreateApplication(ctx, app("o2", "c2", "api://payments"), nil, nil), store.ErrAlreadyExists)
	if _, err := s.GetApplication(ctx, "o2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a failed create left an application behind: %v", err)
	}

	a.DisplayName, a.IdentifierURIs, a.AccessTokenAcceptedVersion = "payments", []string{"api://payments-v2"}, 1
	must(t, s.UpdateApplication(ctx, a.ObjectID, store.Replace(a)))
	got, err := s.GetApplication(ctx, "o1")
	must(t, err)
	same(t, "after update", got, a)
	_, err = s.GetApplicationByIdentifierURI(ctx, tenantID, "api://payments")
	wantErr(t, "a removed identifier URI", err, store.ErrNotFound)
	wantErr(t, "update of a missing app", s.UpdateApplication(ctx, "o9", store.Replace(app("o9", "c9"))), store.ErrNotFound)

	must(t, s.CreateApplication(ctx, app("o2", "c2", "api://payments"), nil, nil))
	list, err := s.ListApplications(ctx, tenantID)
	must(t, err)
	if len(list) != 2 {
		t.Errorf("ListApplications: %d, want 2", len(list))
	}
}

func testDeleteApplication(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedTenant(t, s)
	must(t, s.CreateApplication(ctx, app("client", "c1"), nil, nil))
	must(t, s.CreateApplication(ctx, app("resource", "r1", "api://r"), nil, nil))
	must(t, s.CreateServicePrincipal(ctx, store.ServicePrincipal{ObjectID: "sp-client", TenantID: tenantID, AppID: "c1"}))
	must(t, s.CreateServicePrincipal(ctx, store.ServicePrincipal{ObjectID: "sp-resource", TenantID: tenantID, AppID: "r1"}))
	must(t, s.AddPasswordCredential(ctx, store.PasswordCredential{KeyID: "k", OwnerID: "client", Salt: []byte{1}, Hash: []byte{2}, StartDateTime: at, EndDateTime: at}))
	must(t, s.CreateFederatedCredential(ctx, fic("client", "f", "https://issuer", "sub")))
	must(t, s.CreateAppRoleAssignment(ctx, store.AppRoleAssignment{ID: "ra", PrincipalID: "sp-client", ResourceID: "sp-resource", AppRoleID: "role"}))

	must(t, s.DeleteApplication(ctx, "client"))
	_, err := s.GetApplication(ctx, "client")
	wantErr(t, "deleted app", err, store.ErrNotFound)
	_, err = s.GetServicePrincipal(ctx, "sp-client")
	wantErr(t, "its service principal", err, store.ErrNotFound)
	if l, _ := s.ListPasswordCredentials(ctx, "client"); len(l) != 0 {
		t.Errorf("secrets survived: %v", l)
	}
	if l, _ := s.FindFederatedCredentials(ctx, "https://issuer", "sub"); len(l) != 0 {
		t.Errorf("federated credentials survived: %v", l)
	}
	if l, _ := s.ListAppRoleAssignments(ctx, "sp-client"); len(l) != 0 {
		t.Errorf("role assignments survived: %v", l)
	}
	if _, err := s.GetApplication(ctx, "resource"); err != nil {
		t.Errorf("another app went with it: %v", err)
	}
	wantErr(t, "deleting it again", s.DeleteApplication(ctx, "client"), store.ErrNotFound)
	// The app id is free again.
	must(t, s.CreateApplication(ctx, app("client2", "c1"), nil, nil))
}

func testServicePrincipals(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedTenant(t, s)
	sp := store.ServicePrincipal{ObjectID: "sp1", TenantID: tenantID, AppID: "c1", DisplayName: "worker", ManagedBy: store.ManagedBySeed}
	must(t, s.CreateServicePrincipal(ctx, sp))
	got, err := s.GetServicePrincipalByAppID(ctx, tenantID, "c1")
	must(t, err)
	same(t, "GetServicePrincipalByAppID", got, sp)
	got, err = s.GetServicePrincipal(ctx, "sp1")
	must(t, err)
	same(t, "GetServicePrincipal", got, sp)
	wantErr(t, "second service principal for one appId", s.CreateServicePrincipal(ctx, store.ServicePrincipal{ObjectID: "sp2", TenantID: tenantID, AppID: "c1"}), store.ErrAlreadyExists)
	list, err := s.ListServicePrincipals(ctx, tenantID)
	must(t, err)
	same(t, "ListServicePrincipals", list, []store.ServicePrincipal{sp})
}

func testSecrets(t *testing.T, s store.Store) {
	ctx := context.Background()
	c := store.PasswordCredential{KeyID: "k1", OwnerID: "o1", DisplayName: "ci", Hint: "abc", Salt: []byte("salt"), Hash: []byte("hash"),
		StartDateTime: at, EndDateTime: at.Add(24 * time.Hour), ManagedBy: store.ManagedBySeed}
	must(t, s.AddPasswordCredential(ctx, c))
	wantErr(t, "duplicate key id", s.AddPasswordCredential(ctx, c), store.ErrAlreadyExists)
	list, err := s.ListPasswordCredentials(ctx, "o1")
	must(t, err)
	same(t, "ListPasswordCredentials", list, []store.PasswordCredential{c})
	must(t, s.DeletePasswordCredential(ctx, "o1", "k1"))
	wantErr(t, "deleting it again", s.DeletePasswordCredential(ctx, "o1", "k1"), store.ErrNotFound)
	list, err = s.ListPasswordCredentials(ctx, "o1")
	must(t, err)
	if list == nil || len(list) != 0 {
		t.Errorf("an empty list must be empty and non-nil: %#v", list)
	}
}

func testCertificates(t *testing.T, s store.Store) {
	ctx := context.Background()
	c := store.KeyCredential{KeyID: "k1", OwnerID: "o1", DisplayName: "cert", CertDER: []byte{0x30, 0x82}, ThumbprintSHA1: make([]byte, 20),
		ThumbprintSHA256: make([]byte, 32), StartDateTime: at, EndDateTime: at.Add(time.Hour)}
	must(t, s.AddKeyCredential(ctx, c))
	wantErr(t, "duplicate key id", s.AddKeyCredential(ctx, c), store.ErrAlreadyExists)
	list, err := s.ListKeyCredentials(ctx, "o1")
	must(t, err)
	same(t, "ListKeyCredentials", list, []store.KeyCredential{c})
	must(t, s.DeleteKeyCredential(ctx, "o1", "k1"))
	wantErr(t, "deleting it again", s.DeleteKeyCredential(ctx, "o1", "k1"), store.ErrNotFound)
}

func fic(owner, name, issuer, subject string) store.FederatedCredential {
	return store.FederatedCredential{ID: owner + "/" + name, OwnerID: owner, Name: name, Issuer: issuer, Subject: subject,
		Audiences: []string{"api://AzureADTokenExchange"}, CreatedAt: at}
}

func testFederatedCredentials(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := fic("o1", "b-worker", "https://oidc.example.org", "spiffe://example.org/worker")
	a.Description = "the worker"
	must(t, s.CreateFederatedCredential(ctx, a))
	for _, key := range []string{a.ID, a.Name} {
		got, err := s.GetFederatedCredential(ctx, "o1", key)
		must(t, err)
		same(t, "GetFederatedCredential by "+key, got, a)
	}
	_, err := s.GetFederatedCredential(ctx, "o2", a.Name)
	wantErr(t, "another owner's credential", err, store.ErrNotFound)

	wantErr(t, "same name", s.CreateFederatedCredential(ctx, fic("o1", "b-worker", "https://x", "y")), store.ErrAlreadyExists)
	dup := fic("o1", "other", a.Issuer, a.Subject)
	wantErr(t, "same issuer and subject on one owner", s.CreateFederatedCredential(ctx, dup), store.ErrAlreadyExists)
	// Case matters: Entra compares byte for byte.
	must(t, s.CreateFederatedCredential(ctx, fic("o1", "a-upper", a.Issuer, "spiffe://example.org/Worker")))
	// The same issuer and subject on another owner is fine.
	must(t, s.CreateFederatedCredential(ctx, fic("o2", "worker", a.Issuer, a.Subject)))
	// Flexible credentials have no subject; several may share an issuer.
	for _, name := range []string{"flex-1", "flex-2"} {
		f := fic("o1", name, "https://token.actions.githubusercontent.com", "")
		f.ClaimsMatchingExpression = "claims['sub'] matches 'repo:contoso/" + name + ":*'"
		must(t, s.CreateFederatedCredential(ctx, f))
	}

	list, err := s.ListFederatedCredentials(ctx, "o1")
	must(t, err)
	var names []string
	for _, c := range list {
		names = append(names, c.Name)
	}
	same(t, "ListFederatedCredentials ordered by name", names, []string{"a-upper", "b-worker", "flex-1", "flex-2"})
	if list[2].ClaimsMatchingExpression == "" || list[2].Subject != "" {
		t.Errorf("flexible credential read back as %+v", list[2])
	}

	found, err := s.FindFederatedCredentials(ctx, a.Issuer, a.Subject)
	must(t, err)
	if len(found) != 2 || found[0].OwnerID != "o1" || found[1].OwnerID != "o2" {
		t.Errorf("FindFederatedCredentials: %+v", found)
	}
	found, err = s.FindFederatedCredentials(ctx, a.Issuer+"/", a.Subject)
	must(t, err)
	same(t, "no match for another issuer", len(found), 0)
	for iss, want := range map[string]bool{a.Issuer: true, "https://token.actions.githubusercontent.com": true, "https://attacker.example": false} {
		got, err := s.HasFederatedIssuer(ctx, iss)
		must(t, err)
		same(t, "HasFederatedIssuer "+iss, got, want)
	}

	a.Subject, a.Description, a.Audiences = "spiffe://example.org/worker-v2", "moved", []string{"api://other"}
	must(t, s.UpdateFederatedCredential(ctx, a.OwnerID, a.ID, store.Replace(a)))
	got, err := s.GetFederatedCredential(ctx, "o1", a.ID)
	must(t, err)
	same(t, "after update", got, a)
	wantErr(t, "update of a missing credential", s.UpdateFederatedCredential(ctx, "o1", "none", store.Replace(fic("o1", "none", "i", "s"))), store.ErrNotFound)
	clash := a
	clash.Subject = "spiffe://example.org/Worker"
	wantErr(t, "update onto another credential's issuer and subject", s.UpdateFederatedCredential(ctx, clash.OwnerID, clash.ID, store.Replace(clash)), store.ErrAlreadyExists)

	must(t, s.DeleteFederatedCredential(ctx, "o1", a.ID))
	wantErr(t, "deleting it again", s.DeleteFederatedCredential(ctx, "o1", a.ID), store.ErrNotFound)
	wantErr(t, "deleting another owner's", s.DeleteFederatedCredential(ctx, "o9", "o2/worker"), store.ErrNotFound)
}

// testFederatedLimitRace creates far more than the limit from many
// goroutines at once: exactly MaxFederatedCredentials must land.
func testFederatedLimitRace(t *testing.T, s store.Store) {
	ctx := context.Background()
	const tries = 3 * store.MaxFederatedCredentials
	var wg sync.WaitGroup
	errs := make(chan error, tries)
	for i := range tries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.CreateFederatedCredential(ctx, fic("o1", fmt.Sprintf("c-%02d", i), "https://oidc.example.org", fmt.Sprint("s", i)))
		}()
	}
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, store.ErrLimitExceeded):
			t.Errorf("unexpected error: %v", err)
		}
	}
	list, err := s.ListFederatedCredentials(ctx, "o1")
	must(t, err)
	if ok != store.MaxFederatedCredentials || len(list) != store.MaxFederatedCredentials {
		t.Errorf("%d creates succeeded and %d are stored; want %d", ok, len(list), store.MaxFederatedCredentials)
	}
}

func testAppRoleAssignments(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := store.AppRoleAssignment{ID: "ra1", PrincipalID: "sp-client", ResourceID: "sp-res", AppRoleID: "role-1", ManagedBy: store.ManagedBySeed}
	must(t, s.CreateAppRoleAssignment(ctx, a))
	wantErr(t, "duplicate id", s.CreateAppRoleAssignment(ctx, a), store.ErrAlreadyExists)
	list, err := s.ListAppRoleAssignments(ctx, "sp-client")
	must(t, err)
	same(t, "ListAppRoleAssignments", list, []store.AppRoleAssignment{a})
	must(t, s.DeleteAppRoleAssignment(ctx, "ra1"))
	wantErr(t, "deleting it again", s.DeleteAppRoleAssignment(ctx, "ra1"), store.ErrNotFound)
}

func testManagedIdentities(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedTenant(t, s)
	mi := store.ManagedIdentity{ID: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/batch",
		TenantID: tenantID, SubscriptionID: "s", ResourceGroup: "rg", Name: "batch", Location: "westeurope", ClientID: "mi-client", PrincipalID: "mi-principal"}
	must(t, s.CreateManagedIdentity(ctx, mi))
	got, err := s.GetManagedIdentityByClientID(ctx, tenantID, "mi-client")
	must(t, err)
	same(t, "GetManagedIdentityByClientID", got, mi)
	got, err = s.GetManagedIdentity(ctx, mi.ID)
	must(t, err)
	same(t, "GetManagedIdentity", got, mi)
	other := mi
	other.ID, other.PrincipalID = mi.ID+"2", "p2"
	wantErr(t, "duplicate client id", s.CreateManagedIdentity(ctx, other), store.ErrAlreadyExists)
	list, err := s.ListManagedIdentities(ctx, tenantID)
	must(t, err)
	same(t, "ListManagedIdentities", list, []store.ManagedIdentity{mi})

	must(t, s.CreateFederatedCredential(ctx, fic(mi.PrincipalID, "k8s", "https://kubernetes.default.svc", "system:serviceaccount:batch:runner")))
	must(t, s.CreateAppRoleAssignment(ctx, store.AppRoleAssignment{ID: "ra", PrincipalID: mi.PrincipalID, ResourceID: "r", AppRoleID: "x"}))
	must(t, s.DeleteManagedIdentity(ctx, mi.ID))
	if l, _ := s.ListFederatedCredentials(ctx, mi.PrincipalID); len(l) != 0 {
		t.Errorf("federated credentials survived the identity: %v", l)
	}
	if l, _ := s.ListAppRoleAssignments(ctx, mi.PrincipalID); len(l) != 0 {
		t.Errorf("role assignments survived the identity: %v", l)
	}
	wantErr(t, "deleting it again", s.DeleteManagedIdentity(ctx, mi.ID), store.ErrNotFound)
}

func testUsers(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedTenant(t, s)
	u := store.User{ObjectID: "u1", TenantID: tenantID, UserPrincipalName: "alice@contoso.example", DisplayName: "Alice", PasswordHash: "$argon2id$..."}
	must(t, s.CreateUser(ctx, u))
	got, err := s.GetUserByUPN(ctx, tenantID, "Alice@Contoso.example")
	must(t, err)
	same(t, "GetUserByUPN is case-insensitive", got, u)
	dup := u
	dup.ObjectID = "u2"
	wantErr(t, "duplicate UPN", s.CreateUser(ctx, dup), store.ErrAlreadyExists)
	u.PasswordHash = "$argon2id$new"
	must(t, s.UpdateUser(ctx, u.ObjectID, store.Replace(u)))
	got, err = s.GetUserByUPN(ctx, tenantID, u.UserPrincipalName)
	must(t, err)
	same(t, "after update", got, u)
	wantErr(t, "update of a missing user", s.UpdateUser(ctx, "nobody", store.Replace(store.User{})), store.ErrNotFound)
}

func signingKey(id string, notBefore time.Time) store.SigningKey {
	return store.SigningKey{ID: id, PrivateKeyDER: []byte("private " + id), CertDER: []byte("cert " + id),
		NotBefore: notBefore, NotAfter: notBefore.Add(30 * 24 * time.Hour), CreatedAt: at}
}

func testSigningKeys(t *testing.T, s store.Store) {
	ctx := context.Background()
	later, earlier := signingKey("k2", at.Add(30*24*time.Hour)), signingKey("k1", at)
	must(t, s.CreateSigningKey(ctx, later))
	must(t, s.CreateSigningKey(ctx, earlier))
	wantErr(t, "a second key for one window", s.CreateSigningKey(ctx, signingKey("k3", at)), store.ErrAlreadyExists)
	list, err := s.ListSigningKeys(ctx)
	must(t, err)
	same(t, "ListSigningKeys ordered by NotBefore", list, []store.SigningKey{earlier, later})
	must(t, s.DeleteSigningKey(ctx, "k1"))
	wantErr(t, "deleting it again", s.DeleteSigningKey(ctx, "k1"), store.ErrNotFound)
}

// testSigningKeyRace is two (here eight) replicas starting at once: one key.
func testSigningKeyRace(t *testing.T, s store.Store) {
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := 0
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.CreateSigningKey(ctx, signingKey(fmt.Sprint("racer-", i), at))
			if err != nil && !errors.Is(err, store.ErrAlreadyExists) {
				t.Errorf("racer %d: %v", i, err)
			}
			if err == nil {
				mu.Lock()
				created++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	list, err := s.ListSigningKeys(ctx)
	must(t, err)
	if created != 1 || len(list) != 1 {
		t.Errorf("%d creates succeeded, %d keys stored; want 1", created, len(list))
	}
}

func testApplicationOwners(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedTenant(t, s)
	must(t, s.CreateApplication(ctx, app("o1", "c1"), nil, nil))
	must(t, s.CreateApplication(ctx, app("o2", "c2"), nil, nil))
	must(t, s.AddApplicationOwner(ctx, "o1", "sp-b"))
	must(t, s.AddApplicationOwner(ctx, "o1", "sp-a"))
	must(t, s.AddApplicationOwner(ctx, "o1", "sp-a")) // again: no error, no duplicate
	must(t, s.AddApplicationOwner(ctx, "o2", "sp-a"))
	owners, err := s.ListApplicationOwners(ctx, "o1")
	must(t, err)
	if len(owners) != 2 || owners[0] != "sp-a" || owners[1] != "sp-b" {
		t.Fatalf("owners of o1: %v", owners)
	}
	wantErr(t, "an owner of a missing app", s.AddApplicationOwner(ctx, "missing", "sp-a"), store.ErrNotFound)
	must(t, s.DeleteApplication(ctx, "o1"))
	if owners, _ := s.ListApplicationOwners(ctx, "o1"); len(owners) != 0 {
		t.Fatalf("owners survived their application: %v", owners)
	}
	if owners, _ := s.ListApplicationOwners(ctx, "o2"); len(owners) != 1 {
		t.Fatalf("deleting o1 touched o2's owners: %v", owners)
	}
}
