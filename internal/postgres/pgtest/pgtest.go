// Package pgtest gives each test its own throwaway PostgreSQL database on the
// real server, so test packages can run in parallel without sharing rows.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/setlist/setlist/internal/postgres"
)

// ServerURL is the maintenance database used to create and drop test
// databases; SETLIST_TEST_DATABASE_URL overrides it.
func ServerURL() string {
	if v := os.Getenv("SETLIST_TEST_DATABASE_URL"); v != "" {
		return v
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// URL creates an empty database with a unique name, drops it when the test
// ends, and returns its URL. The test fails (never skips) when PostgreSQL is
// unreachable: a silent skip would let a broken CI pass.
func URL(tb testing.TB) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, ServerURL())
	if err != nil {
		tb.Fatalf("PostgreSQL is required for this test and is not reachable at %s: %v\n"+
			"start it (bash .ci/run does) or set SETLIST_TEST_DATABASE_URL", ServerURL(), err)
	}
	defer admin.Close(ctx)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "setlist_test_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("create test database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, ServerURL())
		if err != nil {
			tb.Logf("drop test database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Logf("drop test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(ServerURL())
	if err != nil {
		tb.Fatalf("parse %s: %v", ServerURL(), err)
	}
	u.Path = "/" + name
	return u.String()
}

// DB opens a fresh, migrated database that is closed and dropped when the test
// ends.
func DB(tb testing.TB) *postgres.DB {
	tb.Helper()
	ctx := context.Background()
	db, _, err := postgres.OpenMigrated(ctx, URL(tb))
	if err != nil {
		tb.Fatalf("open and migrate test database: %v", err)
	}
	tb.Cleanup(db.Close)
	return db
}

// DropDatabase drops the database of url (one URL made), so a test sees a
// server without it; URL's cleanup does not mind it gone.
func DropDatabase(tb testing.TB, url string) {
	tb.Helper()
	withAdmin(tb, func(ctx context.Context, admin *pgx.Conn) error {
		_, err := admin.Exec(ctx, "DROP DATABASE "+pgx.Identifier{postgres.DatabaseName(url)}.Sanitize())
		return err
	})
}

// DatabaseExists says whether the database of url exists on the server.
func DatabaseExists(tb testing.TB, url string) bool {
	tb.Helper()
	var ok bool
	withAdmin(tb, func(ctx context.Context, admin *pgx.Conn) error {
		return admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", postgres.DatabaseName(url)).Scan(&ok)
	})
	return ok
}

// withAdmin runs fn on a connection to the maintenance database, failing
// the test on any error.
func withAdmin(tb testing.TB, fn func(ctx context.Context, admin *pgx.Conn) error) {
	tb.Helper()
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, ServerURL())
	if err != nil {
		tb.Fatal(err)
	}
	defer admin.Close(ctx)
	if err := fn(ctx, admin); err != nil {
		tb.Fatal(err)
	}
}
