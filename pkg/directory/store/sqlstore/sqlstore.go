// Package sqlstore implements store.Store once, over database/sql, for two
// dialects: SQLite through the pure-Go modernc.org/sqlite driver (the
// embedded default) and PostgreSQL through pgx (for several replicas).
package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // the "sqlite" database/sql driver

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is a store.Store over a SQL database.
type Store struct {
	db   *sql.DB
	d    dialect
	name string // for errors: "sqlite PATH", "postgres DSN-without-password"

	// migrated is set once the schema is current. A PostgreSQL store may
	// be opened while the server is down; it migrates on first use.
	migrated  atomic.Bool
	migrateMu sync.Mutex

	// stmts are the read statements outside transactions, prepared once:
	// SQLite otherwise parses the SQL of every lookup on the token path.
	stmts sync.Map // query → *sql.Stmt

	reads atomic.Int64 // statements run by one and QueryContext

	// commits counts the transactions tried on the SQLite file, by every
	// handle of this process on it: the file's generation (Generation).
	commits *atomic.Uint64

	// owners are the owners with a federated-credential write in flight
	// under store.FailIfBusy.
	owners sync.Map // owner id → struct{}
}

// Reads returns how many read statements the store has sent outside
// transactions since it was opened: each is a round trip to PostgreSQL and
// a read transaction in SQLite, so tests and benchmarks count what a
// request costs with it.
func (s *Store) Reads() int64 { return s.reads.Load() }

// prepared returns q prepared for reads outside a transaction. database/sql
// prepares it again on each connection as needed, so it survives a
// reconnect.
func (s *Store) prepared(ctx context.Context, q string) (*sql.Stmt, error) {
	if st, ok := s.stmts.Load(q); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := s.db.PrepareContext(ctx, s.d.rebind(q))
	if err != nil {
		return nil, err
	}
	if prev, loaded := s.stmts.LoadOrStore(q, st); loaded {
		_ = st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

var _ store.Store = (*Store)(nil)

// OpenSQLite opens (creating if missing) the SQLite database at path, in WAL
// mode with foreign keys on, and applies pending migrations. Writes take the
// database lock when they begin (BEGIN IMMEDIATE) and wait for it, so
// concurrent writers queue instead of failing with SQLITE_BUSY. The
// database and its -wal and -shm files are kept 0600.
func OpenSQLite(path string, opts ...SQLiteOption) (*Store, error) {
	var o sqliteOptions
	for _, opt := range opts {
		opt(&o)
	}
	if dir := filepath.Dir(path); dir != "" {
		if _, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("sqlite %s: %w", path, err)
		}
	}
	if err := checkSQLiteFile(path); err != nil {
		return nil, err
	}
	if err := privateFile(path); err != nil {
		return nil, err
	}
	if err := tighten(path, o.logger); err != nil {
		return nil, err
	}
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "foreign_keys(1)", "synchronous(NORMAL)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	// One connection: SQLite has one writer anyway, and a single
	// connection keeps every transaction's view consistent without
	// SQLITE_BUSY surprises between readers and the writer.
	db.SetMaxOpenConns(1)
	s := &Store{db: db, d: sqliteDialect, name: "sqlite " + path, commits: commitCounter(path)}
	if err := s.ready(context.Background()); err != nil {
		db.Close()
		return nil, err
	}
	if err := tighten(path, o.logger); err != nil { // the -wal and -shm files exist now
		db.Close()
		return nil, err
	}
	return s, nil
}

// sqliteCommits holds a commit counter per SQLite file, shared by the
// handles this process opens on it; no other process writes to the file
// while the gateway has it (statelock).
var sqliteCommits sync.Map // absolute path → *atomic.Uint64

func commitCounter(path string) *atomic.Uint64 {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	c, _ := sqliteCommits.LoadOrStore(path, new(atomic.Uint64))
	return c.(*atomic.Uint64)
}

// sqliteHeader starts every SQLite database file.
const sqliteHeader = "SQLite format 3\x00"

// checkSQLiteFile refuses, naming what is wrong, a path that holds
// something other than a SQLite database; a missing or empty file is
// created as a new database.
func checkSQLiteFile(path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("sqlite %s: %w", path, err)
	case fi.IsDir():
		return fmt.Errorf("sqlite %s is a directory, not a database file: remove it, or name a file that does not exist yet", path)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("sqlite %s is not a regular file (%s): name a file that does not exist yet", path, fi.Mode().Type())
	case fi.Size() == 0:
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("sqlite %s cannot be read: %w", path, err)
	}
	defer f.Close()
	head := make([]byte, len(sqliteHeader))
	if n, _ := io.ReadFull(f, head); n < len(head) || string(head) != sqliteHeader {
		return fmt.Errorf("sqlite %s is not a SQLite database (a %d-byte file that does not start with SQLite's header): move it away, or name another file", path, fi.Size())
	}
	return nil
}

// OpenPostgres returns a store over the PostgreSQL database at dsn, which
// several gateways may share. It does not wait for the server: the schema
// is migrated on first use, and until the server answers every call fails
// with store.ErrUnavailable, so that a gateway started before its database
// serves 503s and recovers without a restart. Ping reports the state.
func OpenPostgres(ctx context.Context, dsn string) (*Store, error) {
	if _, err := pgx.ParseConfig(dsn); err != nil {
		return nil, fmt.Errorf("postgres: the DSN is not valid: %w", err)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres %s: %w", redact(dsn), err)
	}
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(10)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s := &Store{db: db, d: postgresDialect, name: "postgres " + redact(dsn), commits: new(atomic.Uint64)}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.ready(pingCtx); err != nil && !errors.Is(err, store.ErrUnavailable) {
		db.Close()
		return nil, err
	}
	return s, nil
}

// redact drops the password from a DSN for error messages.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return "(dsn)"
	}
	u.User = url.User(u.User.Username())
	return u.String()
}

// ready migrates the schema unless that is done.
func (s *Store) ready(ctx context.Context) error {
	if s.migrated.Load() {
		return nil
	}
	s.migrateMu.Lock()
	defer s.migrateMu.Unlock()
	if s.migrated.Load() {
		return nil
	}
	if err := s.migrate(ctx); err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	s.migrated.Store(true)
	return nil
}

// migrate applies, in one transaction, the embedded migrations newer than
// the recorded version. Migrations only go forward.
func (s *Store) migrate(ctx context.Context) error {
	names, err := migrations.ReadDir("migrations")
	if err != nil {
		return err
	}
	sort.Slice(names, func(i, j int) bool { return names[i].Name() < names[j].Name() })
	return s.rawTx(ctx, func(tx *sql.Tx) error {
		if err := s.d.lockMigrations(ctx, tx); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)"); err != nil {
			return fmt.Errorf("not a usable database: %w", err)
		}
		var current int
		if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&current); err != nil {
			return err
		}
		for i, entry := range names {
			version := i + 1
			if version <= current {
				continue
			}
			body, err := migrations.ReadFile("migrations/" + entry.Name())
			if err != nil {
				return err
			}
			for _, stmt := range strings.Split(stripComments(strings.ReplaceAll(string(body), "{{BLOB}}", s.d.blob)), ";") {
				if strings.TrimSpace(stmt) == "" {
					continue
				}
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return &schemaError{fmt.Errorf("migration %s: %w", entry.Name(), err)}
				}
			}
			if _, err := tx.ExecContext(ctx, s.d.rebind("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"),
				version, entry.Name(), time.Now().UnixMilli()); err != nil {
				return err
			}
		}
		if current > len(names) {
			return &schemaError{fmt.Errorf("the database is at schema version %d, newer than this gateway's %d: upgrade the gateway", current, len(names))}
		}
		return nil
	})
}

// schemaError is a migration that cannot succeed by retrying.
type schemaError struct{ err error }

func (e *schemaError) Error() string { return e.err.Error() }
func (e *schemaError) Unwrap() error { return e.err }

// stripComments drops -- comment lines, so that statements can be split on
// semicolons.
func stripComments(stmt string) string {
	var b strings.Builder
	for _, line := range strings.Split(stmt, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "--") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// tx runs fn in a transaction, committing when it returns nil.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	return s.rawTx(ctx, fn)
}

func (s *Store) rawTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return classify(err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		var ce *callerError
		if errors.As(err, &ce) {
			return ce.err
		}
		return classify(err)
	}
	err = tx.Commit()
	// Counted whatever Commit returned, since a failed commit may still
	// have been applied, and before the write's caller hears of it: a
	// reader that starts after the write returns sees a new generation.
	s.commits.Add(1)
	return classify(err)
}

// Generation names the directory's state (store.Store). SQLite's is the
// count of commits on the file and costs no statement: every write goes
// through rawTx, and only this process writes to the file.
//
// PostgreSQL's is the cluster's current snapshot (xmin:xmax:xids in
// progress) over 64-bit xids, which never wrap. It changes whenever a
// transaction ends and never comes back: xmax, one past the latest xid to
// end, only grows, and xids below it in progress only finish. So two equal
// snapshots mean that no transaction ended in between, in this database or
// any other: nothing read between them can have changed. A commit by any replica changes it,
// and so do writes to other databases of the cluster (a needless miss,
// never a stale answer). Reads take no xid and leave it as it is.
func (s *Store) Generation(ctx context.Context) (string, error) {
	if s.d.name == sqliteDialect.name {
		return strconv.FormatUint(s.commits.Load(), 10), nil
	}
	return one(ctx, s, scanString, "SELECT pg_current_snapshot()::text")
}

// callerError is an error of an Update function, returned to the caller
// as it is rather than classified as a failure of the database.
type callerError struct{ err error }

func (e *callerError) Error() string { return e.err.Error() }

// apply runs an Update function inside a transaction.
func apply[T any](fn store.Update[T], old T) (T, error) {
	v, err := fn(old)
	if err != nil {
		return v, &callerError{err}
	}
	return v, nil
}

// exec runs one statement in its own transaction and reports ErrNotFound
// when it touched no row and mustTouch is set.
func (s *Store) exec(ctx context.Context, mustTouch bool, q string, args ...any) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.d.rebind(q), args...)
		if err != nil {
			return err
		}
		if mustTouch {
			if n, err := res.RowsAffected(); err == nil && n == 0 {
				return store.ErrNotFound
			}
		}
		return nil
	})
}

// scanner is *sql.Row or *sql.Rows.
type scanner interface{ Scan(...any) error }

// one reads a single row with scan.
func one[T any](ctx context.Context, s *Store, scan func(scanner) (T, error), q string, args ...any) (T, error) {
	if err := s.ready(ctx); err != nil {
		var zero T
		return zero, err
	}
	st, err := s.prepared(ctx, q)
	if err != nil {
		var zero T
		return zero, classify(err)
	}
	s.reads.Add(1)
	v, err := scan(st.QueryRowContext(ctx, args...))
	return v, classify(err)
}

// many reads every row with scan; the result is never nil.
func many[T any](ctx context.Context, q queryer, d dialect, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, d.rebind(query), args...)
	if err != nil {
		return nil, classify(err)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, classify(err)
		}
		out = append(out, v)
	}
	return out, classify(rows.Err())
}

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// QueryContext queries the database once the schema is current.
func (s *Store) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	st, err := s.prepared(ctx, query)
	if err != nil {
		return nil, err
	}
	s.reads.Add(1)
	return st.QueryContext(ctx, args...)
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

// Ping checks that the database answers and its schema is current.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	return classify(s.db.PingContext(ctx))
}

// Close closes the database.
func (s *Store) Close() error {
	s.stmts.Range(func(_, st any) bool { _ = st.(*sql.Stmt).Close(); return true })
	return s.db.Close()
}
