// Package postgres is the only owner of SQL text against PostgreSQL: schema
// migrations, the CSV import, the streamed training load, the users, songs and
// reactions that serve reads and writes, and the model-run registry.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/setlist/setlist"
	schema "github.com/setlist/setlist/sql"
)

// migrationLockID keys the advisory lock that serialises migrations, so two
// replicas starting at once cannot both apply the same file.
const migrationLockID = 0x5e71157001

// DB is a pool of connections to the setlist database.
type DB struct {
	Pool *pgxpool.Pool
	name string
}

// ErrNoDatabase is Open's error when the database of the URL does not
// exist on its server: only `batch migrate` creates one (CreateDatabase),
// so a mistyped or missing DATABASE_URL fails naming what it reached
// instead of quietly creating and migrating an empty database.
var ErrNoDatabase = errors.New("no such database")

// Open connects to the database named in rawURL and checks that it
// answers. It neither creates (CreateDatabase) nor migrates (Migrate).
func Open(ctx context.Context, rawURL string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	err = pool.Ping(ctx)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "3D000" { // invalid_catalog_name: database missing
		pool.Close()
		return nil, fmt.Errorf("database %q does not exist on the PostgreSQL server at %s: batch migrate creates it (or point --database-url, DATABASE_URL, at another): %w",
			cfg.ConnConfig.Database, Server(rawURL), ErrNoDatabase)
	}
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to postgres at %s: %w: %w", redact(rawURL), setlist.ErrUnavailable, err)
	}
	return &DB{Pool: pool, name: cfg.ConnConfig.Database}, nil
}

// DatabaseName is the database a URL names.
func DatabaseName(rawURL string) string {
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		return "(unparseable url)"
	}
	return cfg.Database
}

// Server is the host and port a database URL reaches, for messages that
// say which server was used (no user name or password).
func Server(rawURL string) string {
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		return "(unparseable url)"
	}
	return net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
}

// Close releases every connection.
func (db *DB) Close() { db.Pool.Close() }

// Name is the database name, as in the URL.
func (db *DB) Name() string { return db.name }

// Ping checks that the database answers, for readiness probes.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.Pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping postgres: %w: %w", setlist.ErrUnavailable, err)
	}
	return nil
}

// CreateDatabase creates the database named in rawURL on its server unless
// it exists (connecting to the server's "postgres" database to do so), and
// says whether it did. batch migrate calls it, and the playground, which
// does batch's work in one process; nothing else creates a database.
func CreateDatabase(ctx context.Context, rawURL string) (created bool, err error) {
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		return false, fmt.Errorf("parse database url: %w", err)
	}
	name := cfg.Database
	u, err := url.Parse(rawURL)
	if err != nil {
		return false, fmt.Errorf("parse database url: %w", err)
	}
	u.Path = "/postgres"
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		return false, fmt.Errorf("connect to postgres at %s to create database %q: %w: %w", Server(rawURL), name, setlist.ErrUnavailable, err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return false, fmt.Errorf("look for database %q: %w", name, err)
	}
	if exists {
		return false, nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database: another process won the race
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("create database %q on %s: %w", name, Server(rawURL), err)
	}
	return true, nil
}

// Migrate applies every embedded migration not yet recorded in
// schema_migrations, each in its own transaction, holding a session advisory
// lock for the whole pass. It returns the names of the files it applied.
func (db *DB) Migrate(ctx context.Context) ([]string, error) {
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: acquire connection: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLockID); err != nil {
		return nil, fmt.Errorf("migrate: take advisory lock: %w", err)
	}
	defer func() {
		// A fresh context: the caller's may be cancelled, and a leaked session
		// lock would block every later migration on this pooled connection.
		unlockCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _ = conn.Exec(unlockCtx, "SELECT pg_advisory_unlock($1)", migrationLockID)
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`); err != nil {
		return nil, fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	names, err := migrationNames()
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	var applied []string
	for _, name := range names {
		path := "postgres/" + name
		var done bool
		if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE name = $1)", name).Scan(&done); err != nil {
			return applied, fmt.Errorf("migrate: check %s: %w", name, err)
		}
		if done {
			continue
		}
		body, err := fs.ReadFile(schema.Postgres, path)
		if err != nil {
			return applied, fmt.Errorf("migrate: read %s: %w", name, err)
		}
		err = pgx.BeginFunc(ctx, conn.Conn(), func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, string(body)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (name) VALUES ($1)", name)
			return err
		})
		if err != nil {
			return applied, fmt.Errorf("migrate: apply %s: %w", name, err)
		}
		applied = append(applied, name)
	}
	return applied, nil
}

// migrationNames lists the embedded migrations in the order they apply.
func migrationNames() ([]string, error) {
	paths, err := fs.Glob(schema.Postgres, "postgres/*.sql")
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	sort.Strings(paths)
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = strings.TrimPrefix(p, "postgres/")
	}
	return names, nil
}

// Pending returns the embedded migrations the database has not applied, in
// order (all of them on a database never migrated). It only reads: serve
// checks the schema with it and leaves applying to batch (docs/deploy.md,
// "Who migrates").
func (db *DB) Pending(ctx context.Context) ([]string, error) {
	names, err := migrationNames()
	if err != nil {
		return nil, fmt.Errorf("pending migrations: %w", err)
	}
	var done []string
	rows, err := db.Pool.Query(ctx, "SELECT name FROM schema_migrations")
	if err == nil {
		done, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table: never migrated
		return names, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pending migrations: %w", err)
	}
	var pending []string
	for _, n := range names {
		if !slices.Contains(done, n) {
			pending = append(pending, n)
		}
	}
	return pending, nil
}

// WaitMigrated returns once no migration is pending, checking every
// interval until ctx ends (then the error names what is still pending and
// who applies it). onWait, if not nil, is told what is pending before each
// wait. Serve's pods start alongside the migrate Job, so they wait for it
// rather than racing it or failing at once.
func (db *DB) WaitMigrated(ctx context.Context, interval time.Duration, onWait func(pending []string)) error {
	// known is the last answer the database gave: the deadline usually
	// cuts a check in flight, and the error must still say what is
	// pending and who applies it, not only that a query timed out.
	var known []string
	for {
		pending, err := db.Pending(ctx)
		if err == nil && len(pending) == 0 {
			return nil
		}
		if err == nil {
			known = pending
			if onWait != nil {
				onWait(pending)
			}
		}
		select {
		case <-time.After(interval):
		case <-ctx.Done():
			if known == nil {
				return fmt.Errorf("check the schema: %w", err)
			}
			return fmt.Errorf("schema not migrated: %s pending; run `batch migrate` (the setlist-migrate Job) first: %w",
				strings.Join(known, ", "), ctx.Err())
		}
	}
}

// redact hides a password in a URL before it reaches a log or an error.
func redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparseable url)"
	}
	return u.Redacted()
}

// OpenMigrated opens the database (which must exist: CreateDatabase) and
// applies the embedded migrations: every batch subcommand does both, so a
// new release needs no separate step. It returns the migrations it
// applied, for the caller's log.
func OpenMigrated(ctx context.Context, rawURL string) (*DB, []string, error) {
	db, err := Open(ctx, rawURL)
	if err != nil {
		return nil, nil, err
	}
	applied, err := db.Migrate(ctx)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, applied, nil
}
