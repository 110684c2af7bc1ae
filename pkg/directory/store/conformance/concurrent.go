package conformance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
)

// writers and rounds size the concurrent-update tests: every writer of
// both handles updates the same object rounds times.
const (
	writers = 8
	rounds  = 4
)

// race runs write(handle, writer, round) from writers goroutines on each of
// the two handles at once and fails t on any error.
func race(t *testing.T, a, b store.Store, write func(s store.Store, w, r int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 2*writers*rounds)
	for w := range 2 * writers {
		s := a
		if w%2 == 1 {
			s = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				if err := write(s, w, r); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// testConcurrentApplicationUpdates appends identifier URIs and app roles to
// one application from many goroutines on two handles: every append must
// survive, as with two replicas handling PATCHes at once.
func testConcurrentApplicationUpdates(t *testing.T, a, b store.Store) {
	ctx := context.Background()
	seedTenant(t, a)
	must(t, a.CreateApplication(ctx, app("o1", "c1"), nil, nil))
	race(t, a, b, func(s store.Store, w, r int) error {
		return s.UpdateApplication(ctx, "o1", func(old store.Application) (store.Application, error) {
			old.IdentifierURIs = append(old.IdentifierURIs, fmt.Sprintf("api://w%d/r%d", w, r))
			old.AppRoles = append(old.AppRoles, store.AppRole{ID: fmt.Sprintf("w%d-r%d", w, r), Value: "v", AllowedMemberTypes: []string{}})
			return old, nil
		})
	})
	got, err := b.GetApplication(ctx, "o1")
	must(t, err)
	if want := 2 * writers * rounds; len(got.IdentifierURIs) != want || len(got.AppRoles) != want {
		t.Errorf("%d identifier URIs and %d app roles after %d appends: updates were lost", len(got.IdentifierURIs), len(got.AppRoles), want)
	}
}

// testConcurrentFederatedUpdates appends audiences to one credential from
// both handles at once.
func testConcurrentFederatedUpdates(t *testing.T, a, b store.Store) {
	ctx := context.Background()
	c := fic("mi", "worker", "https://oidc.example.org", "spiffe://example.org/worker")
	c.Audiences = []string{}
	must(t, a.CreateFederatedCredential(ctx, c))
	race(t, a, b, func(s store.Store, w, r int) error {
		return s.UpdateFederatedCredential(ctx, c.OwnerID, c.ID, func(old store.FederatedCredential) (store.FederatedCredential, error) {
			old.Audiences = append(old.Audiences, fmt.Sprintf("api://w%d/r%d", w, r))
			return old, nil
		})
	})
	got, err := a.GetFederatedCredential(ctx, c.OwnerID, c.ID)
	must(t, err)
	if want := 2 * writers * rounds; len(got.Audiences) != want {
		t.Errorf("%d audiences after %d appends: updates were lost", len(got.Audiences), want)
	}
}

// testConcurrentTenantAndUserUpdates appends domains to a tenant and
// characters to a user's display name from both handles at once.
func testConcurrentTenantAndUserUpdates(t *testing.T, a, b store.Store) {
	ctx := context.Background()
	seedTenant(t, a)
	must(t, a.CreateUser(ctx, store.User{ObjectID: "u1", TenantID: tenantID, UserPrincipalName: "alice@contoso.example"}))
	race(t, a, b, func(s store.Store, w, r int) error {
		err := s.UpdateTenant(ctx, tenantID, func(old store.Tenant) (store.Tenant, error) {
			old.Domains = append(old.Domains, fmt.Sprintf("w%d-r%d.contoso.example", w, r))
			return old, nil
		})
		if err != nil {
			return err
		}
		return s.UpdateUser(ctx, "u1", func(old store.User) (store.User, error) {
			old.DisplayName += "x"
			return old, nil
		})
	})
	tn, err := b.GetTenant(ctx, tenantID)
	must(t, err)
	u, err := b.GetUserByUPN(ctx, tenantID, "alice@contoso.example")
	must(t, err)
	if want := 2 * writers * rounds; len(tn.Domains) != want+1 || len(u.DisplayName) != want {
		t.Errorf("%d domains (want %d) and a display name of %d characters (want %d): updates were lost", len(tn.Domains), want+1, len(u.DisplayName), want)
	}
}

// testUpdateAborted checks that an error of the update function is
// returned as it is and leaves the object unchanged.
func testUpdateAborted(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedTenant(t, s)
	must(t, s.CreateApplication(ctx, app("o1", "c1", "api://one"), nil, nil))
	refused := errors.New("refused by the caller")
	err := s.UpdateApplication(ctx, "o1", func(old store.Application) (store.Application, error) {
		old.DisplayName, old.IdentifierURIs = "changed", []string{"api://two"}
		return old, refused
	})
	if !errors.Is(err, refused) {
		t.Errorf("the function's error came back as %v", err)
	}
	got, err := s.GetApplication(ctx, "o1")
	must(t, err)
	if got.DisplayName != "o1" || !slices.Equal(got.IdentifierURIs, []string{"api://one"}) {
		t.Errorf("an aborted update changed the application: %+v", got)
	}
	// The object id, tenant and creation time stay whatever fn returns.
	must(t, s.UpdateApplication(ctx, "o1", func(old store.Application) (store.Application, error) {
		old.ObjectID, old.TenantID, old.CreatedAt = "other", otherTID, old.CreatedAt.AddDate(1, 0, 0)
		return old, nil
	}))
	got, err = s.GetApplication(ctx, "o1")
	must(t, err)
	same(t, "identity kept", []any{got.ObjectID, got.TenantID, got.CreatedAt}, []any{"o1", tenantID, at})
}

// testCreateApplicationAtomic creates an application with owners and
// certificates in one call: a failing certificate leaves nothing behind.
func testCreateApplicationAtomic(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedTenant(t, s)
	key := func(id string) store.KeyCredential {
		return store.KeyCredential{KeyID: id, OwnerID: "o1", CertDER: []byte{1}, ThumbprintSHA1: []byte{2}, ThumbprintSHA256: []byte{3}, StartDateTime: at, EndDateTime: at}
	}
	err := s.CreateApplication(ctx, app("o1", "c1", "api://one"), []string{"sp-a"}, []store.KeyCredential{key("k1"), key("k1")})
	wantErr(t, "two certificates with one key id", err, store.ErrAlreadyExists)
	_, err = s.GetApplication(ctx, "o1")
	wantErr(t, "the application of a failed create", err, store.ErrNotFound)
	if owners, _ := s.ListApplicationOwners(ctx, "o1"); len(owners) != 0 {
		t.Errorf("a failed create left owners: %v", owners)
	}
	if _, err := s.GetApplicationByIdentifierURI(ctx, tenantID, "api://one"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a failed create left its identifier URI: %v", err)
	}

	must(t, s.CreateApplication(ctx, app("o1", "c1", "api://one"), []string{"sp-b", "sp-a"}, []store.KeyCredential{key("k1"), key("k2")}))
	owners, err := s.ListApplicationOwners(ctx, "o1")
	must(t, err)
	same(t, "owners", owners, []string{"sp-a", "sp-b"})
	keys, err := s.ListKeyCredentials(ctx, "o1")
	must(t, err)
	same(t, "certificates", len(keys), 2)
}

// holdOwner starts a FailIfBusy update of c that stays in its transaction
// until release is closed; it returns once the update holds the owner.
func holdOwner(t *testing.T, s store.Store, c store.FederatedCredential) (release func()) {
	t.Helper()
	entered, wait, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- s.UpdateFederatedCredential(store.FailIfBusy(context.Background()), c.OwnerID, c.ID, func(old store.FederatedCredential) (store.FederatedCredential, error) {
			close(entered)
			<-wait
			old.Description = "held"
			return old, nil
		})
	}()
	<-entered
	return func() {
		close(wait)
		must(t, <-done)
	}
}

// testFailIfBusy: while one FailIfBusy write holds an owner, another fails
// with ErrConflict at once; once it ends, the next succeeds.
func testFailIfBusy(t *testing.T, s store.Store) {
	ctx := context.Background()
	c := fic("mi", "first", "https://oidc.example.org", "spiffe://example.org/a")
	must(t, s.CreateFederatedCredential(ctx, c))
	release := holdOwner(t, s, c)
	second := fic("mi", "second", "https://oidc.example.org", "spiffe://example.org/b")
	wantErr(t, "a second write under the same owner", s.CreateFederatedCredential(store.FailIfBusy(ctx), second), store.ErrConflict)
	release()
	must(t, s.CreateFederatedCredential(store.FailIfBusy(ctx), second))
}

// HoldOwner is holdOwner for backend-specific tests of FailIfBusy across
// store handles.
func HoldOwner(t *testing.T, s store.Store, c store.FederatedCredential) (release func()) {
	return holdOwner(t, s, c)
}
