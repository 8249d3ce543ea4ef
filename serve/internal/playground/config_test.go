package playground

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/setlist/setlist/internal/config"
	"github.com/setlist/setlist/internal/postgres"
	"github.com/setlist/setlist/internal/postgres/pgtest"
	"github.com/setlist/setlist/serve/command"
)

// TestDefaults: the playground defaults to the embedded store, loopback,
// no authentication and no metrics listener, each overridable by a flag
// or its variable; an unknown --store is refused before anything starts.
func TestDefaults(t *testing.T) {
	t.Setenv("SETLIST_ADMIN_TOKEN", "")
	t.Setenv("SETLIST_STORE", "")
	os.Unsetenv("SETLIST_STORE")
	t.Setenv("SETLIST_ADDR", "")
	os.Unsetenv("SETLIST_ADDR")
	cfg, err := command.Parse(new(Playground).Mode(), []string{"serve-playground"})
	if err != nil || cfg.Addr != "127.0.0.1:8080" || cfg.Server.API.RequireAuth || cfg.MetricsAddr != "" || cfg.Stores.Backend != config.StoreEmbedded {
		t.Fatalf("playground: addr %q, auth %v, metrics %q, store %q, %v; want loopback, off, none, embedded",
			cfg.Addr, cfg.Server.API.RequireAuth, cfg.MetricsAddr, cfg.Stores.Backend, err)
	}
	file := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(file, []byte("read 0123456789abcdef\nadmin fedcba9876543210\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SETLIST_ADDR", "0.0.0.0:9999")
	p := new(Playground)
	cfg, err = command.Parse(p.Mode(), []string{"serve-playground", "--auth", "tokens", "--api-tokens-file", file, "--metrics-addr", "127.0.0.1:9465",
		"--store", "postgres+redis", "--sample", "other.csv"})
	if err != nil || cfg.Addr != "0.0.0.0:9999" || !cfg.Server.API.RequireAuth || cfg.MetricsAddr != "127.0.0.1:9465" ||
		cfg.Stores.Backend != config.StorePostgresRedis || p.Sample != "other.csv" {
		t.Fatalf("playground widened: addr %q, auth %v, metrics %q, store %q, sample %q, %v",
			cfg.Addr, cfg.Server.API.RequireAuth, cfg.MetricsAddr, cfg.Stores.Backend, p.Sample, err)
	}
	if _, err := command.Parse(new(Playground).Mode(), []string{"serve-playground", "--store", "sqlite"}); err == nil || !strings.Contains(err.Error(), "--store") {
		t.Errorf("--store sqlite: %v, want a refusal naming --store", err)
	}
}

// TestMigrates: on PostgreSQL (make run-prod) the playground applies the
// pending migrations itself, as production serve does not
// (serve/command's TestServeLeavesMigrationsToBatch).
func TestMigrates(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	check, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer check.Close()
	before, err := check.Pending(ctx)
	if err != nil || len(before) == 0 {
		t.Fatalf("a fresh database has nothing pending: %v, %v", before, err)
	}
	db, err := openPostgres(ctx, url, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("playground: %v", err)
	}
	defer db.Close()
	if after, err := check.Pending(ctx); err != nil || len(after) != 0 || slices.Equal(after, before) {
		t.Fatalf("the playground left %v pending (%v)", after, err)
	}
}
