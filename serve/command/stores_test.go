package command

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/setlist/setlist/internal/postgres"
	"github.com/setlist/setlist/internal/postgres/pgtest"
)

// TestServeLeavesMigrationsToBatch: serve in production does not change
// the schema of an unmigrated database and fails naming batch migrate once
// its start deadline passes (the playground migrates:
// serve/internal/playground).
func TestServeLeavesMigrationsToBatch(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	cfg := Config{}
	cfg.Stores.DatabaseURL = url
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	_, err := openPostgres(short, cfg, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "batch migrate") {
		t.Fatalf("serve on an unmigrated database: %v; want an error naming batch migrate", err)
	}
	check, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer check.Close()
	before, err := check.Pending(ctx)
	if err != nil || len(before) == 0 {
		t.Fatalf("serve migrated the database: pending %v, %v", before, err)
	}

}

// TestServeWaitsForTheDatabase: serve does not create a missing database;
// it waits for batch migrate and, once its deadline passes, fails naming
// the database and batch migrate (issue 26 item 14).
func TestServeWaitsForTheDatabase(t *testing.T) {
	ctx := context.Background()
	u := pgtest.URL(t)
	name := postgres.DatabaseName(u)
	pgtest.DropDatabase(t, u)
	cfg := Config{}
	cfg.Stores.DatabaseURL = u
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	_, err := openPostgres(short, cfg, slog.New(slog.DiscardHandler))
	if !errors.Is(err, postgres.ErrNoDatabase) || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "batch migrate") {
		t.Fatalf("serve on a missing database: %v; want ErrNoDatabase naming it and batch migrate", err)
	}
	if pgtest.DatabaseExists(t, u) {
		t.Fatal("serve created the database")
	}
}
