package conformance

import (
	"context"
	"testing"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
)

// testGeneration: every write, through either handle, changes the
// generation both handles report, and reads leave it as it is.
func testGeneration(t *testing.T, a, b store.Store) {
	ctx := context.Background()
	seedTenant(t, a)
	must(t, a.CreateApplication(ctx, app("client", "c1"), nil, nil))
	must(t, a.CreateFederatedCredential(ctx, fic("client", "f", "https://issuer", "sub")))

	// A PostgreSQL cluster may be shared with other writers, whose commits
	// change the generation too: reads pass when one try of several sees
	// no change at all.
	unchanged := false
	for try := 0; try < 50 && !unchanged; try++ {
		before := generation(t, a)
		for _, s := range []store.Store{a, b} {
			_, err := s.GetTenant(ctx, tenantID)
			must(t, err)
			_, err = s.ListFederatedCredentials(ctx, "client")
			must(t, err)
			_, err = s.GetApplicationByAppID(ctx, tenantID, "missing")
			wantErr(t, "a missing app", err, store.ErrNotFound)
		}
		unchanged = generation(t, a) == before && generation(t, b) == before
	}
	if !unchanged {
		t.Error("reads change the generation")
	}

	for _, w := range []struct {
		what  string
		write func() error
	}{
		{"a federated credential deleted through this handle", func() error { return a.DeleteFederatedCredential(ctx, "client", "client/f") }},
		{"an application created through another handle", func() error { return b.CreateApplication(ctx, app("other", "c2"), nil, nil) }},
		{"a secret added through another handle", func() error {
			return b.AddPasswordCredential(ctx, store.PasswordCredential{KeyID: "k", OwnerID: "client", Salt: []byte{1}, Hash: []byte{2}, StartDateTime: at, EndDateTime: at})
		}},
		{"an application deleted through this handle", func() error { return a.DeleteApplication(ctx, "client") }},
	} {
		beforeA, beforeB := generation(t, a), generation(t, b)
		must(t, w.write())
		if generation(t, a) == beforeA || generation(t, b) == beforeB {
			t.Errorf("%s: the generation did not change on both handles", w.what)
		}
	}
}

func generation(t *testing.T, s store.Store) string {
	t.Helper()
	g, err := s.Generation(context.Background())
	must(t, err)
	return g
}
