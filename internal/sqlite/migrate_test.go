package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	_ "modernc.org/sqlite" // the driver internal/sqlite uses

	"github.com/setlist/setlist/internal/sqlite"
	"github.com/setlist/setlist/internal/store"
	schema "github.com/setlist/setlist/sql"
)

// TestMigration0003KeepsRunsAndIDs: 0003 rebuilds model_runs (SQLite cannot
// change a CHECK); on a database made by 0001 alone, whose newest run was
// deleted, every run survives as it was and the next run id is still past
// the deleted one (a run id is a model version: never reused).
func TestMigration0003KeepsRunsAndIDs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	raw, err := sql.Open("sqlite", "file:"+filepath.Join(dir, sqlite.FileName)+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	init, err := schema.SQLite.ReadFile("sqlite/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		string(init),
		`CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)`,
		`INSERT INTO schema_migrations VALUES ('0001_init.sql', 1)`,
		`INSERT INTO model_runs (status, params, version, started_at, published_at) VALUES ('published', '{"k": 5}', 1, 10, 20)`,
		`INSERT INTO model_runs (status, reason, started_at) VALUES ('rejected', 'worse', 30)`,
		`INSERT INTO model_runs (status, started_at) VALUES ('failed', 40)`,
		`DELETE FROM model_runs WHERE id = 3`,
	} {
		if _, err := raw.ExecContext(ctx, q); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	applied, err := db.Migrate(ctx)
	if err != nil || !slices.Contains(applied, "0003_tuning_trials.sql") {
		t.Fatalf("migrate: applied %v, %v", applied, err)
	}
	runs, err := db.Runs(ctx, 10)
	if err != nil || len(runs) != 2 || runs[0].ID != 2 || runs[0].Reason != "worse" || runs[1].Status != store.RunPublished ||
		string(runs[1].Params) != `{"k": 5}` || runs[1].Version == nil || *runs[1].Version != 1 || runs[1].PublishedAt == nil {
		t.Fatalf("runs after 0003: %+v, %v", runs, err)
	}
	id, err := db.StartRun(ctx, "")
	if err != nil || id != 4 {
		t.Errorf("next run id %d, %v; want 4 (3 was used, then deleted)", id, err)
	}
	if err := db.UpdateRun(ctx, id, store.RunUpdate{Status: store.RunTuned}); err != nil {
		t.Errorf("status tuned after 0003: %v", err)
	}
}

// TestFoldInReadIsIndexOrdered: after migration 0008 the capped fold-in
// read (UserReactions' statement, ordered by store.FoldInOrder) walks the
// reactions_foldin_order index, so its LIMIT stops the read; without it
// SQLite sorts the user's whole history in a temporary B-tree first.
func TestFoldInReadIsIndexOrdered(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	db.Close()
	raw, err := sql.Open("sqlite", "file:"+filepath.Join(dir, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	plan := func() string {
		rows, err := raw.QueryContext(ctx, `EXPLAIN QUERY PLAN SELECT song_id, kind, weight, updated_at FROM reactions
			WHERE user_id = ? ORDER BY `+store.FoldInOrder+` LIMIT ?`, 1, 1000)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			out = append(out, detail)
		}
		return strings.Join(out, "; ")
	}
	if p := plan(); !strings.Contains(p, "reactions_foldin_order") || strings.Contains(p, "TEMP B-TREE") {
		t.Errorf("capped fold-in read plan %q: want a walk of reactions_foldin_order with no sort", p)
	}
	if _, err := raw.ExecContext(ctx, `DROP INDEX reactions_foldin_order`); err != nil {
		t.Fatal(err)
	}
	if p := plan(); !strings.Contains(p, "TEMP B-TREE") {
		t.Errorf("without the index the plan %q should sort; the test no longer tells the index's effect", p)
	}
}
