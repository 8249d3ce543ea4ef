// Package sqlite is the embedded backend's system of record: the same users,
// songs, reactions and model-run registry as internal/postgres, in one SQLite
// file (pure Go, no cgo, no server), for the playground (`make run`,
// --store embedded). It implements every method the consumers' interfaces
// name (api.DB, recs.History, pipeline.Source/Registry/Locker) with the
// semantics of the postgres package; internal/storetest runs one contract
// suite against both.
//
// Concurrency: the file is opened in WAL mode through two pools, a single
// writer connection (BEGIN IMMEDIATE, so a transaction never has to upgrade
// a read lock and fail with SQLITE_BUSY) and several readers, which WAL lets
// run beside the writer; busy_timeout absorbs another process's writes (a
// `batch` command beside a running serve).
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	sqlitedrv "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/setlist/setlist"
	schema "github.com/setlist/setlist/sql"
)

// FileName is the database file inside a data directory.
const FileName = "setlist.db"

// busyTimeout is how long a statement waits for another connection's (or
// process's) write lock before failing with SQLITE_BUSY.
const busyTimeout = 10 * time.Second

// DB is a SQLite database opened for one process.
type DB struct {
	w, r *sql.DB
	path string
	dir  string
}

// Open opens (creating if missing) the database in dir and checks that it
// answers. It does not migrate; call Migrate.
func Open(ctx context.Context, dir string) (*DB, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open sqlite: create data dir: %w", err)
	}
	path := filepath.Join(dir, FileName)
	pragmas := url.Values{}
	for _, p := range []string{
		fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()),
		"journal_mode(WAL)",
		"foreign_keys(1)",
		"synchronous(NORMAL)", // WAL + NORMAL: durable against a process crash, not a power cut
	} {
		pragmas.Add("_pragma", p)
	}
	open := func(txlock string, conns int) (*sql.DB, error) {
		q := pragmas.Encode() + "&_txlock=" + txlock
		db, err := sql.Open("sqlite", "file:"+path+"?"+q)
		if err != nil {
			return nil, err
		}
		db.SetMaxOpenConns(conns)
		db.SetMaxIdleConns(conns)
		db.SetConnMaxIdleTime(0)
		return db, nil
	}
	w, err := open("immediate", 1)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	// The writer connects first, so journal_mode=WAL is set before a reader
	// could open the file in rollback mode.
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, classify("connect", err))
	}
	r, err := open("deferred", max(4, runtime.GOMAXPROCS(0)))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	return &DB{w: w, r: r, path: path, dir: dir}, nil
}

// Close closes both pools.
func (db *DB) Close() {
	_ = db.r.Close()
	_ = db.w.Close()
}

// Path is the database file.
func (db *DB) Path() string { return db.path }

// Ping checks that the database answers, for readiness probes.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.r.PingContext(ctx); err != nil {
		return fmt.Errorf("ping sqlite: %w: %w", setlist.ErrUnavailable, err)
	}
	return nil
}

// Migrate applies every embedded SQLite migration not yet recorded in
// schema_migrations, each in its own (immediate, so exclusive of other
// writers) transaction, and returns the names it applied.
func (db *DB) Migrate(ctx context.Context) ([]string, error) {
	if _, err := db.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return nil, fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	names, err := fs.Glob(schema.SQLite, "sqlite/*.sql")
	if err != nil {
		return nil, fmt.Errorf("migrate: list migrations: %w", err)
	}
	sort.Strings(names)
	var applied []string
	for _, path := range names {
		name := strings.TrimPrefix(path, "sqlite/")
		body, err := fs.ReadFile(schema.SQLite, path)
		if err != nil {
			return applied, fmt.Errorf("migrate: read %s: %w", name, err)
		}
		done := false
		err = db.writeTx(ctx, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE name = ?`, name).Scan(&n); err != nil {
				return err
			}
			if done = n > 0; done {
				return nil
			}
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)`, name, micros(time.Now()))
			return err
		})
		if err != nil {
			return applied, fmt.Errorf("migrate: apply %s: %w", name, err)
		}
		if !done {
			applied = append(applied, name)
		}
	}
	return applied, nil
}

// writeTx runs fn in a write transaction on the single writer connection,
// committing if it returns nil and rolling back otherwise.
func (db *DB) writeTx(ctx context.Context, fn func(*sql.Tx) error) error {
	return inTx(ctx, db.w, nil, fn)
}

func inTx(ctx context.Context, pool *sql.DB, opts *sql.TxOptions, fn func(*sql.Tx) error) error {
	tx, err := pool.BeginTx(ctx, opts)
	if err != nil {
		return classify("begin", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return classify("commit", err)
	}
	return nil
}

// micros and fromMicros convert between times and the schema's INTEGER
// microseconds.
func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us) }

// nullTime reads a nullable time column.
func nullTime(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := fromMicros(n.Int64)
	return &t
}

// classify wraps err with op, adding setlist.ErrUnavailable when SQLite gave
// up for a reason the caller cannot fix (the database is locked by another
// writer past busy_timeout, the deadline passed), so the HTTP edge answers
// 503 and the client retries.
func classify(op string, err error) error {
	if isUnavailable(err) {
		return fmt.Errorf("%s: %w: %w", op, setlist.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

func isUnavailable(err error) bool {
	if errors.Is(err, setlist.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, sql.ErrConnDone) {
		return true
	}
	var se *sqlitedrv.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff { // the primary result code
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN:
			return true
		}
	}
	return false
}

// isUnique reports a UNIQUE or PRIMARY KEY constraint violation.
func isUnique(err error) bool {
	var se *sqlitedrv.Error
	return errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
}

// wrapTx adds op to an error from a transaction, keeping a sentinel it
// already carries and classifying the rest.
func wrapTx(op string, err error) error {
	if errors.Is(err, setlist.ErrInvalid) || errors.Is(err, setlist.ErrNotFound) ||
		errors.Is(err, setlist.ErrConflict) || errors.Is(err, setlist.ErrUnavailable) {
		return fmt.Errorf("%s: %w", op, err)
	}
	return classify(op, err)
}
