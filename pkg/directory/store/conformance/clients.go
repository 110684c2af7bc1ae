package conformance

import (
	"context"
	"testing"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
)

// testPublicClients: whether an application is a public client is kept
// through create and update.
func testPublicClients(t *testing.T, s store.Store) {
	ctx := context.Background()
	seedTenant(t, s)
	a := app("public-1", "22222222-2222-2222-2222-222222222222")
	a.PublicClient = true
	must(t, s.CreateApplication(ctx, a, nil, nil))
	got, err := s.GetApplication(ctx, a.ObjectID)
	must(t, err)
	if !got.PublicClient {
		t.Error("a public client is stored as a confidential one")
	}
	must(t, s.UpdateApplication(ctx, a.ObjectID, func(old store.Application) (store.Application, error) {
		old.PublicClient = false
		return old, nil
	}))
	got, err = s.GetApplication(ctx, a.ObjectID)
	must(t, err)
	if got.PublicClient {
		t.Error("the update to a confidential client was lost")
	}
}
