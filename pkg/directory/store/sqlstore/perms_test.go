package sqlstore_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store/sqlstore"
)

// TestStateIsPrivate: the database and its -wal and -shm files are 0600
// whatever the umask; a database, or a data directory, readable by others
// is tightened, with a log line naming it.
func TestStateIsPrivate(t *testing.T) {
	old := syscall.Umask(0) // the loosest: SQLite would create 0644 files
	defer syscall.Umask(old)
	dir := t.TempDir()
	mode := func(p string) os.FileMode {
		t.Helper()
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode().Perm()
	}

	fresh := filepath.Join(dir, "fresh.db")
	s, err := sqlstore.OpenSQLite(fresh)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTenant(context.Background(), store.Tenant{ID: "6f0c2a4e-1b7d-4c55-9f3e-2d8a1b7c9e10"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{fresh, fresh + "-wal", fresh + "-shm"} {
		if m := mode(p); m != 0o600 {
			t.Errorf("%s: %v, want -rw-------", filepath.Base(p), m)
		}
	}
	s.Close()

	loose := filepath.Join(dir, "loose.db")
	if err := os.WriteFile(loose, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	s, err = sqlstore.OpenSQLite(loose, sqlstore.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if m := mode(loose); m != 0o600 || !strings.Contains(logs.String(), "tightened") || !strings.Contains(logs.String(), loose) {
		t.Errorf("a database readable by others: %v, log:\n%s", m, logs.String())
	}
}
