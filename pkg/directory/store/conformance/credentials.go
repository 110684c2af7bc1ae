package conformance

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
)

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
