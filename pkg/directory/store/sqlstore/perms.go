package sqlstore

import (
	"errors"
	"fmt"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/filemode"
	"io/fs"
	"log/slog"
	"os"
)

// SQLiteOption configures OpenSQLite.
type SQLiteOption func(*sqliteOptions)

type sqliteOptions struct {
	logger *slog.Logger
}

// WithLogger reports the permissions OpenSQLite tightens.
func WithLogger(l *slog.Logger) SQLiteOption { return func(o *sqliteOptions) { o.logger = l } }

// privateFile creates path empty with mode 0600 if missing, so that SQLite
// does not create it from the process's umask (its default is 0644: any
// local user could copy the directory's secrets and keys).
func privateFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sqlite %s: %w", path, err)
	}
	return f.Close()
}

// tighten makes the database and its -wal and -shm files readable by their
// owner only (0600), whatever the umask and whatever existed before, and
// logs each file it changed. SQLite gives the -wal and -shm files the
// database's mode, so they are checked again once they exist.
func tighten(path string, logger *slog.Logger) error {
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := filemode.Tighten(p, 0o600, logger); err != nil {
			return fmt.Errorf("sqlite %s: %w", path, err)
		}
	}
	return nil
}
