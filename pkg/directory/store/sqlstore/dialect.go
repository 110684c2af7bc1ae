package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
)

// dialect holds everything that differs between SQLite and PostgreSQL, so
// that the queries are written once, with ? placeholders.
type dialect struct {
	name string
	blob string // the binary column type
	// numbered rewrites ? to $1, $2, ... (PostgreSQL).
	numbered bool
	// forUpdate ends a SELECT that reads a row the transaction will write:
	// PostgreSQL locks the row; SQLite's BEGIN IMMEDIATE holds the whole
	// database already.
	forUpdate string
	// lockOwner serialises writes that check a per-owner limit, or with
	// store.FailIfBusy fails with store.ErrConflict when another holds it.
	// SQLite serialises all writes already (BEGIN IMMEDIATE) and has one
	// process (a lock on its file): Store.owners stands in for it.
	lockOwner func(ctx context.Context, tx *sql.Tx, owner string) error
	// lockMigrations keeps two processes from migrating at once.
	lockMigrations func(ctx context.Context, tx *sql.Tx) error
	// jsonList is a scalar subquery: the JSON array of column over the rows
	// of from (a table and a WHERE clause), in order of their position.
	jsonList func(column, from string) string
}

var sqliteDialect = dialect{
	name:           "sqlite",
	blob:           "BLOB",
	lockOwner:      func(context.Context, *sql.Tx, string) error { return nil },
	lockMigrations: func(context.Context, *sql.Tx) error { return nil },
	jsonList: func(column, from string) string {
		return "(SELECT json_group_array(" + column + " ORDER BY x.position) FROM " + from + ")"
	},
}

var postgresDialect = dialect{
	name:      "postgres",
	blob:      "BYTEA",
	numbered:  true,
	forUpdate: " FOR UPDATE",
	lockOwner: func(ctx context.Context, tx *sql.Tx, owner string) error {
		if store.FailsIfBusy(ctx) {
			var got bool
			if err := tx.QueryRowContext(ctx, "SELECT pg_try_advisory_xact_lock(hashtext($1))", "owner:"+owner).Scan(&got); err != nil {
				return err
			}
			if !got {
				return store.ErrConflict
			}
			return nil
		}
		_, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtext($1))", "owner:"+owner)
		return err
	},
	lockMigrations: func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtext('spiffe-entra-gateway:migrations'))")
		return err
	},
	jsonList: func(column, from string) string {
		return "(SELECT COALESCE(json_agg(" + column + " ORDER BY x.position), '[]')::text FROM " + from + ")"
	},
}

// rebind turns ? placeholders into the dialect's.
func (d dialect) rebind(q string) string {
	if !d.numbered {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// classify maps a driver error to the store's errors: a unique violation is
// ErrAlreadyExists, a missing referenced row ErrNotFound, no row ErrNotFound,
// anything else a failure of the backend, ErrUnavailable.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	var se *schemaError
	if errors.As(err, &se) {
		return err
	}
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrAlreadyExists) || errors.Is(err, store.ErrLimitExceeded) || errors.Is(err, store.ErrConflict) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var le *sqlite.Error
	if errors.As(err, &le) {
		switch le.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return errors.Join(store.ErrAlreadyExists, err)
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return errors.Join(store.ErrNotFound, err)
		}
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505":
			return errors.Join(store.ErrAlreadyExists, err)
		case "23503":
			return errors.Join(store.ErrNotFound, err)
		}
	}
	return errors.Join(store.ErrUnavailable, err)
}
