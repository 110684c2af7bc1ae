package sqlstore_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store/conformance"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store/sqlstore"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/pgtest"
)

func openSQLiteAt(t testing.TB, path string) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openPostgresAt(t testing.TB, dsn string) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.OpenPostgres(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformanceSQLite(t *testing.T) {
	conformance.Run(t, func(t *testing.T) (store.Store, func() store.Store) {
		path := filepath.Join(t.TempDir(), "gateway.db")
		return openSQLiteAt(t, path), func() store.Store { return openSQLiteAt(t, path) }
	})
}

func TestConformancePostgres(t *testing.T) {
	if !pgtest.Available() {
		t.Skip(pgtest.EnvDSN + " is not set")
	}
	conformance.Run(t, func(t *testing.T) (store.Store, func() store.Store) {
		dsn := pgtest.DSN(t)
		return openPostgresAt(t, dsn), func() store.Store { return openPostgresAt(t, dsn) }
	})
}

// TestOpenSQLiteRefusesWhatIsNotADatabase names the path, what is wrong
// with it and the fix, instead of failing deep in the driver.
func TestOpenSQLiteRefusesWhatIsNotADatabase(t *testing.T) {
	dir := t.TempDir()
	asDir := filepath.Join(dir, "dir.db")
	text := filepath.Join(dir, "text.db")
	if err := os.Mkdir(asDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(text, []byte("not a database\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		asDir: "is a directory, not a database file: remove it, or name a file that does not exist yet",
		text:  "is not a SQLite database (a 15-byte file that does not start with SQLite's header): move it away, or name another file",
	} {
		s, err := sqlstore.OpenSQLite(path)
		if err == nil {
			s.Close()
			t.Fatalf("%s opened", path)
		}
		if s != nil || !strings.Contains(err.Error(), path+" "+want) {
			t.Errorf("%s: %v (store %v)", path, err, s)
		}
	}
	// An empty file is a new database.
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := sqlstore.OpenSQLite(empty)
	if err != nil {
		t.Fatalf("an empty file: %v", err)
	}
	s.Close()
}

// TestFailIfBusyAcrossReplicas: a FailIfBusy write through one PostgreSQL
// store handle (a replica) makes the same through another fail with
// ErrConflict: the database holds the owner's lock, not a process.
func TestFailIfBusyAcrossReplicas(t *testing.T) {
	if !pgtest.Available() {
		t.Skip(pgtest.EnvDSN + " is not set")
	}
	dsn := pgtest.DSN(t)
	a, b := openPostgresAt(t, dsn), openPostgresAt(t, dsn)
	ctx := context.Background()
	c := store.FederatedCredential{ID: "mi/first", OwnerID: "mi", Name: "first", Issuer: "https://oidc.example.org", Subject: "a", Audiences: []string{"api://AzureADTokenExchange"}}
	if err := a.CreateFederatedCredential(ctx, c); err != nil {
		t.Fatal(err)
	}
	release := conformance.HoldOwner(t, a, c)
	second := c
	second.ID, second.Name, second.Subject = "mi/second", "second", "b"
	if err := b.CreateFederatedCredential(store.FailIfBusy(ctx), second); !errors.Is(err, store.ErrConflict) {
		t.Errorf("a write through the other replica: %v, want ErrConflict", err)
	}
	release()
	if err := b.CreateFederatedCredential(store.FailIfBusy(ctx), second); err != nil {
		t.Fatal(err)
	}
}
