package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/store"
)

// Import loads a CSV of play counts (header "user_id,artist,track[,count]";
// gzip input is detected by its magic bytes) and upserts users, songs and
// "play" reactions in one transaction: either the whole file lands or,
// on any error, nothing does.
//
// A file is a snapshot of counts, not increments: importing it again sets each
// reaction's weight to the file's count (updated_at moves only when the weight
// actually changes), so re-running an import is harmless. Rows absent from the
// file are left alone: a file never deletes reactions, not even its own users'
// older ones, because it may be a partial export. Several rows for the same
// (user_id, artist, track) in one file are summed, as if they were one row.
//
// Values are trimmed of surrounding whitespace. count defaults to 1 when the
// column is absent; it may be any finite, non-negative number (exports of
// listening time or weighted plays are fractional).
//
// Rows are streamed with COPY into a temporary table and merged with
// set-based statements, so memory stays constant whatever the file's size.
func (db *DB) Import(ctx context.Context, r io.Reader, opts store.ImportOptions) (store.ImportSummary, error) {
	start := time.Now()
	if opts.Source == "" {
		opts.Source = "input"
	}
	sum := store.ImportSummary{Source: opts.Source}
	src, err := store.NewRows(r, opts)
	if err != nil {
		return sum, err
	}

	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		return sum, fmt.Errorf("import %s: begin: %w", opts.Source, err)
	}
	// Rolling back after a commit is a no-op; after any failure it discards
	// every row, which is the all-or-nothing promise.
	defer func() { _ = tx.Rollback(context.Background()) }()

	m := &merge{tx: tx, source: opts.Source, sum: &sum}
	// work_mem only sizes the hash tables of the GROUP BY and joins below so
	// they do not spill to disk; it is transaction-local and changes no
	// durability guarantee.
	m.exec(ctx, "stage", "SET LOCAL work_mem = '256MB'")
	m.exec(ctx, "stage", `CREATE TEMP TABLE import_rows (
		user_ext TEXT NOT NULL, artist TEXT NOT NULL, track TEXT NOT NULL, plays FLOAT8 NOT NULL
	) ON COMMIT DROP`)
	if m.err != nil {
		return sum, m.err
	}
	copyStart := time.Now()
	_, copyErr := tx.CopyFrom(ctx, pgx.Identifier{"import_rows"}, []string{"user_ext", "artist", "track", "plays"}, src)
	m.timed("read and copy rows", copyStart)
	// The source's own error explains a failed COPY better than the
	// connection's echo of it, and must win even if COPY reported nothing.
	if err := src.Err(); err != nil {
		return sum, err
	}
	if copyErr != nil {
		return sum, fmt.Errorf("import %s: copy rows: %w", opts.Source, copyErr)
	}
	sum.Rows, sum.Skipped, sum.SkippedRows = src.Counts()

	src.Report("users")
	m.upsertKeys(ctx, "users", &sum.Users)
	src.Report("songs")
	m.upsertKeys(ctx, "songs", &sum.Songs)
	m.progress = func(phase string, n int64) {
		if opts.Progress != nil {
			opts.Progress(store.ImportProgress{Phase: phase, Rows: sum.Rows + sum.Skipped, Items: n})
		}
	}
	m.upsertReactions(ctx, opts.PerRowFKChecks)
	if m.err != nil {
		return sum, m.err
	}
	src.Report("commit")
	commitStart := time.Now()
	if err := tx.Commit(ctx); err != nil {
		return sum, fmt.Errorf("import %s: commit: %w", opts.Source, err)
	}
	m.timed("commit", commitStart)
	sum.Duration = time.Since(start)
	return sum, nil
}

// merge runs the set-based statements that fold the staged rows into the
// real tables. It keeps the first error and skips later statements, so the
// sequence reads as the plan it is.
type merge struct {
	tx     pgx.Tx
	source string
	sum    *store.ImportSummary
	err    error
	// progress reports a phase of the merge and how many rows it works on.
	progress func(phase string, n int64)
}

func (m *merge) exec(ctx context.Context, step, sql string, args ...any) int64 {
	if m.err != nil {
		return 0
	}
	defer m.timed(step, time.Now())
	tag, err := m.tx.Exec(ctx, sql, args...)
	if err != nil {
		m.err = fmt.Errorf("import %s: %s: %w", m.source, step, err)
		return 0
	}
	return tag.RowsAffected()
}

// timed adds the time since start to step, or to the last step when it
// has the same name, for ImportSummary.Steps.
func (m *merge) timed(step string, start time.Time) {
	d := time.Since(start)
	if n := len(m.sum.Steps); n > 0 && m.sum.Steps[n-1].Name == step {
		m.sum.Steps[n-1].Duration += d
		return
	}
	m.sum.Steps = append(m.sum.Steps, store.ImportStep{Name: step, Duration: d})
}

// keySQL holds, per table, the statements that collect the file's distinct
// keys, insert the missing ones and map every key to its id.
var keySQL = map[string]struct{ distinct, insert, ids string }{
	"users": {
		distinct: `CREATE TEMP TABLE import_users ON COMMIT DROP AS
			SELECT DISTINCT user_ext FROM import_rows`,
		insert: `INSERT INTO users (external_id)
			SELECT user_ext FROM import_users ORDER BY user_ext
			ON CONFLICT (external_id) DO NOTHING`,
		ids: `CREATE TEMP TABLE import_user_ids ON COMMIT DROP AS
			SELECT u.id, u.external_id AS user_ext FROM users u
			WHERE u.external_id IN (SELECT user_ext FROM import_users)
			FOR KEY SHARE OF u`,
	},
	"songs": {
		distinct: `CREATE TEMP TABLE import_songs ON COMMIT DROP AS
			SELECT DISTINCT artist, track FROM import_rows`,
		insert: `INSERT INTO songs (artist, track)
			SELECT artist, track FROM import_songs ORDER BY artist, track
			ON CONFLICT (artist, track) DO NOTHING`,
		ids: `CREATE TEMP TABLE import_song_ids ON COMMIT DROP AS
			SELECT s.id, s.artist, s.track FROM songs s
			WHERE (s.artist, s.track) IN (SELECT artist, track FROM import_songs)
			FOR KEY SHARE OF s`,
	},
}

// upsertKeys inserts the users or songs the file names and maps them to ids.
//
// The id map locks its rows FOR KEY SHARE, as a foreign-key check would, but
// once per key instead of once per reaction: no concurrent delete can remove
// a user or song between here and commit, which is what lets
// upsertReactions skip the per-row checks.
func (m *merge) upsertKeys(ctx context.Context, table string, dst *store.UpsertCount) {
	q := keySQL[table]
	if m.err == nil && table == "users" {
		// Temporary tables are never auto-analyzed; without statistics the
		// planner assumes a few hundred rows and picks nested loops.
		m.exec(ctx, "analyze staged rows", "ANALYZE import_rows")
	}
	total := m.exec(ctx, "collect "+table, q.distinct)
	dst.Inserted = m.exec(ctx, "insert "+table, q.insert)
	mapped := m.exec(ctx, "map "+table, q.ids)
	m.exec(ctx, "map "+table, "ANALYZE import_"+strings.TrimSuffix(table, "s")+"_ids")
	if m.err == nil && mapped != total {
		m.err = fmt.Errorf("import %s: %d of %d %s vanished during the import (deleted concurrently?); run it again",
			m.source, total-mapped, total, table)
	}
	dst.Unchanged = total - dst.Inserted
}

// upsertReactions sets each (user, song) play weight to the file's summed
// count.
//
// The LEFT JOIN drops rows whose weight is already right before they reach
// the INSERT, so a re-import of an unchanged file is a merge join that writes
// nothing. ON CONFLICT still guards against a concurrent writer, and its
// WHERE keeps updated_at unchanged unless the weight really changes. xmax = 0
// on a returned row means it was inserted rather than updated.
const upsertReactionsSQL = `WITH ins AS (
	INSERT INTO reactions (user_id, song_id, kind, weight)
	SELECT p.user_id, p.song_id, $1, p.weight
	FROM import_plays p
	LEFT JOIN reactions r ON r.user_id = p.user_id AND r.song_id = p.song_id AND r.kind = $1
	WHERE r.weight IS DISTINCT FROM p.weight
	ORDER BY p.user_id, p.song_id
	ON CONFLICT (user_id, song_id, kind) DO UPDATE
		SET weight = EXCLUDED.weight, updated_at = now()
		WHERE reactions.weight IS DISTINCT FROM EXCLUDED.weight
	RETURNING (xmax = 0) AS inserted)
SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM ins`

func (m *merge) upsertReactions(ctx context.Context, perRow bool) {
	// Duplicates are summed here, once, so the INSERT sees one row per key
	// (ON CONFLICT cannot touch the same row twice in one statement). The sum
	// is cast to REAL, the column's type, so comparing it with the stored
	// weight is exact.
	total := m.exec(ctx, "sum plays", `CREATE TEMP TABLE import_plays ON COMMIT DROP AS
		SELECT u.id AS user_id, s.id AS song_id, sum(r.plays)::real AS weight
		FROM import_rows r
		JOIN import_user_ids u USING (user_ext)
		JOIN import_song_ids s USING (artist, track)
		GROUP BY 1, 2`)
	m.exec(ctx, "sum plays", "ANALYZE import_plays")
	m.progress("reactions", total)
	var rebuild []secondaryIndex
	if !perRow {
		rebuild = m.dropIndexesForBulk(ctx, total)
	}
	m.sum.FKChecks = "per-row"
	if !perRow && m.err == nil {
		m.skipRowTriggers(ctx)
	}
	if m.err != nil {
		return
	}
	r := &m.sum.Reactions
	upsertStart := time.Now()
	if err := m.tx.QueryRow(ctx, upsertReactionsSQL, string(setlist.Play)).Scan(&r.Inserted, &r.Updated); err != nil {
		m.err = fmt.Errorf("import %s: upsert reactions: %w", m.source, err)
		return
	}
	m.timed("upsert reactions", upsertStart)
	r.Unchanged = total - r.Inserted - r.Updated
	if m.sum.FKChecks == "set-based" {
		// Nothing else in this transaction may run without its triggers.
		m.exec(ctx, "upsert reactions", "SET LOCAL session_replication_role = origin")
	}
	if len(rebuild) > 0 {
		m.rebuildIndexes(ctx, rebuild)
	}
}

// bulkLoadShare is how large an import must be, as a share of the reactions
// already stored, before it drops the secondary indexes and builds them
// again afterwards. Keeping an index up to date row by row costs a random
// btree insertion and its WAL per row and index; a build sorts once and
// writes each page once. Measured on the shared data into an empty table
// (docs/BENCHMARKS.md): five secondary indexes doubled the upsert's time
// and WAL (905 MB against 401 MB), while building all five took about 15 s
// at load 20, 5 s on a quiet machine. An import smaller than the table
// keeps the indexes: rebuilding them over rows it does not touch would cost
// more than it saves.
const bulkLoadShare = 1.0

// secondaryIndex is an index of reactions the bulk path drops and rebuilds,
// with the definition PostgreSQL itself gives for it, so the rebuilt index
// is the migrated one whatever the migrations say.
type secondaryIndex struct{ name, def string }

// dropIndexesForBulk drops reactions' secondary indexes for a large import
// (see bulkLoadShare) and returns their definitions for rebuildIndexes.
//
// It keeps the primary key, which ON CONFLICT and the LEFT JOIN need, and
// every index backing a constraint. The partial unique index
// reactions_one_opinion is rebuilt too: building it checks the one opinion
// per song rule over every row at once, so the guarantee holds as before.
// Dropping an index takes reactions' ACCESS EXCLUSIVE lock until commit:
// readers and writers of reactions wait for the import instead of running
// beside it, which is the price of a bulk load and why it is kept for
// imports as large as the table.
func (m *merge) dropIndexesForBulk(ctx context.Context, staged int64) []secondaryIndex {
	if m.err != nil {
		return nil
	}
	var stored float64
	// reltuples is -1 before the first ANALYZE; an exact probe settles the
	// empty case, the one that matters most (a first import).
	err := m.tx.QueryRow(ctx, `SELECT CASE WHEN EXISTS (SELECT 1 FROM reactions) THEN
			greatest(reltuples, 1) ELSE 0 END FROM pg_class WHERE oid = 'reactions'::regclass`).Scan(&stored)
	if err != nil {
		m.err = fmt.Errorf("import %s: size reactions: %w", m.source, err)
		return nil
	}
	if float64(staged) < bulkLoadShare*stored || staged == 0 {
		return nil
	}
	rows, err := m.tx.Query(ctx, `SELECT c.relname, pg_get_indexdef(i.indexrelid)
		FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		WHERE i.indrelid = 'reactions'::regclass AND NOT i.indisprimary
		  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
		ORDER BY c.relname`)
	if err != nil {
		m.err = fmt.Errorf("import %s: list reactions indexes: %w", m.source, err)
		return nil
	}
	idx, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (secondaryIndex, error) {
		var ix secondaryIndex
		err := row.Scan(&ix.name, &ix.def)
		return ix, err
	})
	if err != nil {
		m.err = fmt.Errorf("import %s: list reactions indexes: %w", m.source, err)
		return nil
	}
	for _, ix := range idx {
		m.exec(ctx, "drop index for bulk load", "DROP INDEX "+pgx.Identifier{ix.name}.Sanitize())
	}
	if m.err != nil {
		return nil
	}
	return idx
}

// rebuildIndexes creates the indexes dropIndexesForBulk dropped, in the
// same transaction: a failure (a second opinion on a song) rolls back the
// whole import, and no one ever sees reactions without them.
func (m *merge) rebuildIndexes(ctx context.Context, idx []secondaryIndex) {
	// A build sorts in maintenance_work_mem; more of it keeps the sort of
	// tens of millions of keys in memory. Transaction-local.
	m.exec(ctx, "rebuild indexes", "SET LOCAL maintenance_work_mem = '512MB'")
	for i, ix := range idx {
		m.progress("index", int64(i+1))
		m.exec(ctx, "rebuild index "+ix.name, ix.def)
	}
	m.sum.RebuiltIndexes = len(idx)
}

// skipRowTriggers turns off the per-row foreign-key triggers for the
// reactions upsert, when that is both safe and permitted.
//
// They are half the cost of a first import (two trigger calls per row, about
// 12 s of 25 s for the full file), and here they prove nothing new: every
// user_id and song_id comes from the id maps, whose rows upsertKeys locked
// FOR KEY SHARE — the very lock the triggers would take. It is safe only
// while reactions has no foreign key to another table and no trigger or rule
// of its own, which would be silently skipped too; so it is checked, not
// assumed. session_replication_role needs superuser or, since PostgreSQL 15,
// GRANT SET ON PARAMETER; without it the import keeps the per-row checks.
func (m *merge) skipRowTriggers(ctx context.Context) {
	var unsafe bool
	err := m.tx.QueryRow(ctx, `SELECT
		EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = 'reactions'::regclass AND NOT tgisinternal)
		OR EXISTS (SELECT 1 FROM pg_rewrite WHERE ev_class = 'reactions'::regclass)
		OR EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = 'reactions'::regclass AND contype = 'f'
			AND confrelid NOT IN ('users'::regclass, 'songs'::regclass))`).Scan(&unsafe)
	if err != nil {
		m.err = fmt.Errorf("import %s: inspect reactions triggers: %w", m.source, err)
		return
	}
	if unsafe {
		return
	}
	// A refused SET aborts the transaction, so it runs in a savepoint.
	sp, err := m.tx.Begin(ctx)
	if err != nil {
		m.err = fmt.Errorf("import %s: savepoint: %w", m.source, err)
		return
	}
	if _, err := sp.Exec(ctx, "SET LOCAL session_replication_role = replica"); err != nil {
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42501" { // insufficient_privilege
			m.err = fmt.Errorf("import %s: set session_replication_role: %w", m.source, err)
			return
		}
		if err := sp.Rollback(ctx); err != nil {
			m.err = fmt.Errorf("import %s: rollback to savepoint: %w", m.source, err)
		}
		return
	}
	if err := sp.Commit(ctx); err != nil {
		m.err = fmt.Errorf("import %s: release savepoint: %w", m.source, err)
		return
	}
	m.sum.FKChecks = "set-based"
}
