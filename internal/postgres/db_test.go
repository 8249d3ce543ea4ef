package postgres_test

import (
	"context"
	"errors"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/setlist/setlist/internal/postgres"
	"github.com/setlist/setlist/internal/postgres/pgtest"
	schema "github.com/setlist/setlist/sql"
)

// migrationNames lists the embedded migrations, the expected result of a
// first Migrate.
func migrationNames(t *testing.T) []string {
	t.Helper()
	paths, err := fs.Glob(schema.Postgres, "postgres/*.sql")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no embedded migrations: %v", err)
	}
	var names []string
	for _, p := range paths {
		names = append(names, strings.TrimPrefix(p, "postgres/"))
	}
	slices.Sort(names)
	return names
}

func openURL(t *testing.T, u string) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}

func TestMigrateFreshThenIdempotent(t *testing.T) {
	ctx := context.Background()
	db := openURL(t, pgtest.URL(t))
	applied, err := db.Migrate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := migrationNames(t); !slices.Equal(applied, want) {
		t.Errorf("first Migrate applied %v, want %v", applied, want)
	}
	again, err := db.Migrate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 0 {
		t.Errorf("second Migrate applied %v, want nothing", again)
	}
	var recorded int
	if err := db.Pool.QueryRow(ctx, "SELECT count(*) FROM schema_migrations").Scan(&recorded); err != nil {
		t.Fatal(err)
	}
	if recorded != len(migrationNames(t)) {
		t.Errorf("schema_migrations has %d rows, want %d", recorded, len(migrationNames(t)))
	}
}

// TestSchemaConstraints checks each table exists and its constraints refuse
// what they are there to refuse.
func TestSchemaConstraints(t *testing.T) {
	ctx := context.Background()
	db := pgtest.DB(t)
	for _, table := range []string{"users", "songs", "reactions", "model_runs", "schema_migrations"} {
		var exists bool
		if err := db.Pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", table).Scan(&exists); err != nil || !exists {
			t.Errorf("table %s missing (err %v)", table, err)
		}
	}
	var uid, sid int64
	if err := db.Pool.QueryRow(ctx, "INSERT INTO users (external_id) VALUES ('u1') RETURNING id").Scan(&uid); err != nil {
		t.Fatal(err)
	}
	if err := db.Pool.QueryRow(ctx, "INSERT INTO songs (artist, track) VALUES ('A', 'T') RETURNING id").Scan(&sid); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, "INSERT INTO reactions (user_id, song_id, kind, weight) VALUES ($1, $2, 'play', 3)", uid, sid); err != nil {
		t.Fatalf("a valid reaction was refused: %v", err)
	}
	tests := []struct {
		name string
		sql  string
		args []any
		code string // SQLSTATE
	}{
		{"unknown reaction kind", "INSERT INTO reactions (user_id, song_id, kind) VALUES ($1, $2, 'foo')", []any{uid, sid}, "23514"},
		{"negative weight", "INSERT INTO reactions (user_id, song_id, kind, weight) VALUES ($1, $2, 'like', -1)", []any{uid, sid}, "23514"},
		{"duplicate reaction", "INSERT INTO reactions (user_id, song_id, kind) VALUES ($1, $2, 'play')", []any{uid, sid}, "23505"},
		{"reaction of unknown user", "INSERT INTO reactions (user_id, song_id, kind) VALUES ($1, $2, 'like')", []any{uid + 1000, sid}, "23503"},
		{"reaction to unknown song", "INSERT INTO reactions (user_id, song_id, kind) VALUES ($1, $2, 'like')", []any{uid, sid + 1000}, "23503"},
		{"duplicate song", "INSERT INTO songs (artist, track) VALUES ('A', 'T')", nil, "23505"},
		{"empty artist", "INSERT INTO songs (artist, track) VALUES ('', 'T2')", nil, "23514"},
		{"duplicate user", "INSERT INTO users (external_id) VALUES ('u1')", nil, "23505"},
		{"empty user id", "INSERT INTO users (external_id) VALUES ('')", nil, "23514"},
		{"unknown run status", "INSERT INTO model_runs (status) VALUES ('done')", nil, "23514"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := db.Pool.Exec(ctx, tt.sql, tt.args...)
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != tt.code {
				t.Errorf("got %v, want SQLSTATE %s", err, tt.code)
			}
		})
	}
	// Deleting a user cascades to their reactions.
	if _, err := db.Pool.Exec(ctx, "DELETE FROM users WHERE id = $1", uid); err != nil {
		t.Fatal(err)
	}
	var left int
	if err := db.Pool.QueryRow(ctx, "SELECT count(*) FROM reactions").Scan(&left); err != nil || left != 0 {
		t.Errorf("after deleting the user %d reactions remain (err %v), want 0", left, err)
	}
}

// TestMigrateConcurrent races several Migrate calls, each on its own pool as
// separate replicas would be, against one fresh database: the advisory lock
// must let every call succeed and record each migration exactly once.
func TestMigrateConcurrent(t *testing.T) {
	const racers = 4
	ctx := context.Background()
	u := pgtest.URL(t)
	dbs := make([]*postgres.DB, racers)
	for i := range dbs {
		dbs[i] = openURL(t, u)
	}
	start := make(chan struct{})
	applied := make([][]string, racers)
	errs := make([]error, racers)
	var wg sync.WaitGroup
	for i := range dbs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			applied[i], errs[i] = dbs[i].Migrate(ctx)
		}()
	}
	close(start)
	wg.Wait()
	var total []string
	for i, err := range errs {
		if err != nil {
			t.Errorf("racer %d: %v", i, err)
		}
		total = append(total, applied[i]...)
	}
	slices.Sort(total)
	if want := migrationNames(t); !slices.Equal(total, want) {
		t.Errorf("racers applied %v between them, want each of %v exactly once", total, want)
	}
	rows, err := dbs[0].Pool.Query(ctx, "SELECT name, count(*) FROM schema_migrations GROUP BY name")
	if err != nil {
		t.Fatal(err)
	}
	counts, err := pgx.CollectRows(rows, pgx.RowToStructByPos[struct {
		Name  string
		Count int64
	}])
	if err != nil {
		t.Fatal(err)
	}
	if len(counts) != len(migrationNames(t)) {
		t.Errorf("schema_migrations records %d migrations, want %d", len(counts), len(migrationNames(t)))
	}
	for _, c := range counts {
		if c.Count != 1 {
			t.Errorf("migration %s recorded %d times", c.Name, c.Count)
		}
	}
}

// TestOnlyCreateDatabaseCreates drops a test database: Open refuses it,
// naming the database, the server and batch migrate, and leaves it
// missing; CreateDatabase brings it back, once (pgtest's cleanup drops it
// again). Issue 26 item 14.
func TestOnlyCreateDatabaseCreates(t *testing.T) {
	ctx := context.Background()
	u := pgtest.URL(t)
	name := postgres.DatabaseName(u)
	exists := func() bool { return pgtest.DatabaseExists(t, u) }
	pgtest.DropDatabase(t, u)
	if exists() {
		t.Fatal("database still exists after DROP")
	}
	_, err := postgres.Open(ctx, u)
	if !errors.Is(err, postgres.ErrNoDatabase) || !strings.Contains(err.Error(), name) ||
		!strings.Contains(err.Error(), postgres.Server(u)) || !strings.Contains(err.Error(), "batch migrate") {
		t.Errorf("Open of a missing database: %v; want ErrNoDatabase naming it, its server and batch migrate", err)
	}
	if exists() {
		t.Fatal("Open created the missing database")
	}
	if created, err := postgres.CreateDatabase(ctx, u); err != nil || !created {
		t.Fatalf("CreateDatabase = %v, %v; want created", created, err)
	}
	if created, err := postgres.CreateDatabase(ctx, u); err != nil || created {
		t.Fatalf("CreateDatabase of an existing database = %v, %v; want nothing done", created, err)
	}
	db := openURL(t, u)
	if db.Name() != name {
		t.Errorf("Name() = %q, want %q", db.Name(), name)
	}
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrate the created database: %v", err)
	}
}

// TestPendingAndWaitMigrated: serve's check reads without writing. On a
// database never migrated every migration is pending and a wait that runs
// out names them and who applies them; a wait returns once batch's Migrate
// has run.
func TestPendingAndWaitMigrated(t *testing.T) {
	ctx := context.Background()
	db, err := postgres.Open(ctx, pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	all := migrationNames(t)
	pending, err := db.Pending(ctx)
	if err != nil || !slices.Equal(pending, all) {
		t.Fatalf("pending on a fresh database = %v, %v; want %v", pending, err, all)
	}
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var told []string
	err = db.WaitMigrated(short, 50*time.Millisecond, func(p []string) { told = p })
	if err == nil || !strings.Contains(err.Error(), "batch migrate") || !strings.Contains(err.Error(), all[0]) {
		t.Fatalf("wait on an unmigrated database: %v; want an error naming %s and batch migrate", err, all[0])
	}
	if !slices.Equal(told, all) {
		t.Errorf("onWait told %v, want %v", told, all)
	}
	if pending, _ := db.Pending(ctx); !slices.Equal(pending, all) {
		t.Fatalf("the check changed the schema: pending now %v", pending)
	}

	done := make(chan error, 1)
	go func() {
		time.Sleep(200 * time.Millisecond)
		_, err := db.Migrate(ctx)
		done <- err
	}()
	long, cancel2 := context.WithTimeout(ctx, 30*time.Second)
	defer cancel2()
	if err := db.WaitMigrated(long, 50*time.Millisecond, nil); err != nil {
		t.Fatalf("wait while batch migrates: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if pending, err := db.Pending(ctx); err != nil || len(pending) != 0 {
		t.Fatalf("pending after Migrate = %v, %v", pending, err)
	}
}
