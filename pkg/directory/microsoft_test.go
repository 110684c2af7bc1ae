package directory_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store/sqlstore"
)

func TestMicrosoftResourcesAreCreatedOnceAndKeptCurrent(t *testing.T) {
	s, err := sqlstore.OpenSQLite(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	const tid = "6f0c2a4e-1b7d-4c55-9f3e-2d8a1b7c9e10"
	if err := s.CreateTenant(ctx, store.Tenant{ID: tid}); err != nil {
		t.Fatal(err)
	}
	// A directory of an earlier version: Graph with its first role only.
	old := store.Application{ObjectID: directory.MicrosoftObjectID(tid, "graph"), TenantID: tid, AppID: directory.GraphAppID,
		DisplayName: "Microsoft Graph", IdentifierURIs: []string{directory.GraphResource}, ManagedBy: directory.ManagedByMicrosoft,
		AppRoles: []store.AppRole{{ID: directory.GraphApplicationReadWriteAllID, Value: directory.GraphApplicationReadWriteAll}}}
	if err := s.CreateApplication(ctx, old, nil, nil); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := directory.EnsureMicrosoftResources(ctx, s, tid, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	graph, err := s.GetApplicationByIdentifierURI(ctx, tid, directory.GraphResource)
	if err != nil || len(graph.AppRoles) != 2 || graph.AppRoles[1].Value != directory.GraphApplicationReadWriteOwnedBy {
		t.Fatalf("Graph: %+v %v", graph.AppRoles, err)
	}
	for _, appID := range []string{directory.GraphAppID, directory.ARMAppID} {
		if _, err := s.GetServicePrincipalByAppID(ctx, tid, appID); err != nil {
			t.Errorf("service principal of %s: %v", appID, err)
		}
	}
	apps, _ := s.ListApplications(ctx, tid)
	if len(apps) != 2 {
		t.Fatalf("%d applications after two runs, want Graph and ARM once", len(apps))
	}
}
