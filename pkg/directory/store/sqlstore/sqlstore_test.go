package sqlstore_test

import (
	"context"
	"path/filepath"
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
