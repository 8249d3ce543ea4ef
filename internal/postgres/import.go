package postgres

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
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
// Rows are streamed with COPY into a temporary table, their users and songs
// replaced by small numbers (see stageSource), and merged with set-based
// statements, so memory stays bounded whatever the file's size. A re-import
// finds what changed by one join and writes nothing when nothing did; a
// bulk load writes its new reactions with COPY (see bulkLoad).
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
		u INT4, s INT4, plays FLOAT8, user_ext TEXT, artist TEXT, track TEXT
	) ON COMMIT DROP`)
	if m.err != nil {
		return sum, m.err
	}
	stage := newStageSource(src, opts.Source)
	copyStart := time.Now()
	_, copyErr := tx.CopyFrom(ctx, pgx.Identifier{"import_rows"}, stageColumns, stage)
	m.timed("read and copy rows", copyStart)
	// The source's own error explains a failed COPY better than the
	// connection's echo of it, and must win even if COPY reported nothing.
	if err := stage.Err(); err != nil {
		return sum, err
	}
	if copyErr != nil {
		return sum, fmt.Errorf("import %s: copy rows: %w", opts.Source, copyErr)
	}
	sum.Rows, sum.Skipped, sum.SkippedRows = src.Counts()
	m.summed = stage.summed()

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
	// summed is set while the staged plays are known to hold one row per
	// (user, song): see stageSource.
	summed bool
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

// keySQL holds, per table, the statements that collect the file's key rows
// (see stageSource), insert the missing users or songs and map every
// number to its id.
var keySQL = map[string]struct{ keys, insert, ids, distinct string }{
	"users": {
		keys: `CREATE TEMP TABLE import_user_keys ON COMMIT DROP AS
			SELECT u AS n, user_ext FROM import_rows WHERE user_ext IS NOT NULL`,
		insert: `INSERT INTO users (external_id)
			SELECT DISTINCT user_ext FROM import_user_keys ORDER BY user_ext
			ON CONFLICT (external_id) DO NOTHING`,
		ids: `CREATE TEMP TABLE import_user_ids ON COMMIT DROP AS
			SELECT k.n, u.id FROM import_user_keys k JOIN users u ON u.external_id = k.user_ext
			FOR KEY SHARE OF u`,
		distinct: `SELECT count(DISTINCT id) FROM import_user_ids`,
	},
	"songs": {
		keys: `CREATE TEMP TABLE import_song_keys ON COMMIT DROP AS
			SELECT s AS n, artist, track FROM import_rows WHERE artist IS NOT NULL`,
		insert: `INSERT INTO songs (artist, track)
			SELECT DISTINCT artist, track FROM import_song_keys ORDER BY artist, track
			ON CONFLICT (artist, track) DO NOTHING`,
		ids: `CREATE TEMP TABLE import_song_ids ON COMMIT DROP AS
			SELECT k.n, s.id FROM import_song_keys k JOIN songs s ON (s.artist, s.track) = (k.artist, k.track)
			FOR KEY SHARE OF s`,
		distinct: `SELECT count(DISTINCT id) FROM import_song_ids`,
	},
}

// upsertKeys inserts the users or songs the file names and maps their
// numbers to ids.
//
// The id map locks its rows FOR KEY SHARE, as a foreign-key check would, but
// once per key instead of once per reaction: no concurrent delete can remove
// a user or song between here and commit, which is what lets
// upsertReactions skip the per-row checks.
func (m *merge) upsertKeys(ctx context.Context, table string, dst *store.UpsertCount) {
	q := keySQL[table]
	keys := m.exec(ctx, "collect "+table, q.keys)
	dst.Inserted = m.exec(ctx, "insert "+table, q.insert)
	mapped := m.exec(ctx, "map "+table, q.ids)
	m.exec(ctx, "map "+table, "ANALYZE import_"+strings.TrimSuffix(table, "s")+"_ids")
	if m.err == nil && mapped != keys {
		m.err = fmt.Errorf("import %s: %d of %d %s vanished during the import (deleted concurrently?); run it again",
			m.source, keys-mapped, keys, table)
	}
	var total int64
	if m.err == nil {
		if err := m.tx.QueryRow(ctx, q.distinct).Scan(&total); err != nil {
			m.err = fmt.Errorf("import %s: count %s: %w", m.source, table, err)
		}
	}
	dst.Unchanged = total - dst.Inserted
	if total != keys {
		// A user or song staged under two numbers (its dictionary
		// started afresh) may be in two rows of the same pair.
		m.summed = false
	}
}

// playsSQL gives the staged plays as (user_id, song_id, weight), one row
// per (user, song) (ON CONFLICT cannot touch the same row twice in one
// statement, and the primary key's build would refuse the COPY). The
// weight is cast to REAL, the column's type, so comparing it with the
// stored weight is exact.
//
// When stageSource summed every user's plays it maps them to ids; else it
// also sums them here (a user or song staged under two numbers has one id,
// so its plays are summed all the same). Were summed ever wrong, the write
// would fail on the duplicate key, never store it.
func (m *merge) playsSQL() string {
	if m.summed {
		return `SELECT u.id AS user_id, s.id AS song_id, r.plays::real AS weight
	FROM import_rows r
	JOIN import_user_ids u ON u.n = r.u
	JOIN import_song_ids s ON s.n = r.s
	WHERE r.plays IS NOT NULL`
	}
	return `SELECT u.id AS user_id, s.id AS song_id, sum(r.plays)::real AS weight
	FROM import_rows r
	JOIN import_user_ids u ON u.n = r.u
	JOIN import_song_ids s ON s.n = r.s
	WHERE r.plays IS NOT NULL
	GROUP BY 1, 2`
}

// upsertReactions sets each (user, song) play weight to the file's summed
// count, writing only the reactions that change.
//
// When reactions are stored it first counts what the file would change, in
// one read-only join of the summed plays with the stored ones: a file that
// changes nothing writes nothing at all, which is a re-import's usual case.
// A first import, or a change as large as the table, is a bulk load (see
// bulkLoad); a smaller change is the upsert, which keeps every index and
// lets concurrent writers be.
func (m *merge) upsertReactions(ctx context.Context, perRow bool) {
	if m.sum.Rows == 0 {
		return // a header alone, or only skipped rows: no bulk load of nothing
	}
	m.progress("reactions", m.sum.Rows)
	stored := m.storedReactions(ctx)
	r := &m.sum.Reactions
	var added, changed int64
	if stored > 0 && m.err == nil {
		start := time.Now()
		var total int64
		err := m.tx.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE r.weight IS NULL), count(*) FILTER (WHERE r.weight <> p.weight)
			FROM (`+m.playsSQL()+`) p
			LEFT JOIN reactions r ON r.user_id = p.user_id AND r.song_id = p.song_id AND r.kind = $1`,
			string(setlist.Play)).Scan(&total, &added, &changed)
		if err != nil {
			m.err = fmt.Errorf("import %s: compare with stored reactions: %w", m.source, err)
		}
		m.timed("compare with stored reactions", start)
		if added+changed == 0 {
			r.Unchanged = total
			return
		}
	}
	if m.err != nil {
		return
	}
	m.sum.FKChecks = "per-row"
	if !perRow && (stored == 0 || float64(added+changed) >= bulkLoadShare*stored) {
		m.bulkLoad(ctx)
		return
	}
	if !perRow {
		m.skipRowTriggers(ctx)
	}
	if m.err != nil {
		return
	}
	start := time.Now()
	var total int64
	if err := m.tx.QueryRow(ctx, fmt.Sprintf(upsertReactionsSQL, m.playsSQL()), string(setlist.Play)).Scan(&total, &r.Inserted, &r.Updated); err != nil {
		m.err = fmt.Errorf("import %s: upsert reactions: %w", m.source, err)
		return
	}
	m.timed("upsert reactions", start)
	r.Unchanged = total - r.Inserted - r.Updated
	m.restoreRowTriggers(ctx)
}

// upsertReactionsSQL is the incremental write. The LEFT JOIN drops plays
// whose weight is already right before they reach the INSERT; ON CONFLICT
// still guards against a concurrent writer, and its WHERE keeps updated_at
// unchanged unless the weight really changes. xmax = 0 on a returned row
// means it was inserted rather than updated.
const upsertReactionsSQL = `WITH p AS MATERIALIZED (%s),
ins AS (
	INSERT INTO reactions (user_id, song_id, kind, weight)
	SELECT p.user_id, p.song_id, $1, p.weight
	FROM p
	LEFT JOIN reactions r ON r.user_id = p.user_id AND r.song_id = p.song_id AND r.kind = $1
	WHERE r.weight IS DISTINCT FROM p.weight
	ORDER BY p.user_id, p.song_id
	ON CONFLICT (user_id, song_id, kind) DO UPDATE
		SET weight = EXCLUDED.weight, updated_at = now()
		WHERE reactions.weight IS DISTINCT FROM EXCLUDED.weight
	RETURNING (xmax = 0) AS inserted)
SELECT (SELECT count(*) FROM p), count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM ins`

// storedReactions estimates how many reactions are stored: exactly 0 when
// there are none (a first import, the case that matters most), else
// PostgreSQL's estimate, at least 1.
func (m *merge) storedReactions(ctx context.Context) float64 {
	if m.err != nil {
		return 0
	}
	var stored float64
	// reltuples is -1 before the first ANALYZE.
	err := m.tx.QueryRow(ctx, `SELECT CASE WHEN EXISTS (SELECT 1 FROM reactions) THEN
			greatest(reltuples, 1) ELSE 0 END FROM pg_class WHERE oid = 'reactions'::regclass`).Scan(&stored)
	if err != nil {
		m.err = fmt.Errorf("import %s: size reactions: %w", m.source, err)
	}
	return stored
}

// bulkLoadShare is how many reactions an import must write (insert or
// change), as a share of the reactions already stored, before it loads them
// as a bulk load. Keeping an index up to date row by row costs a random
// btree insertion and its WAL per row and index, and INSERT writes a WAL
// record per row where COPY writes one per page; a bulk load drops the
// indexes, copies, and builds each index once by sorting. Measured on the
// shared data into an empty table (docs/BENCHMARKS.md, "CSV import"). An
// import that writes less than the table keeps the indexes: rebuilding them
// over rows it does not touch would cost more than it saves, and a bulk
// load locks the table out for its whole length.
const bulkLoadShare = 1.0

// reactionIndex is an index of reactions the bulk load drops and rebuilds,
// with the statement that builds it again (PostgreSQL's own definition, so
// the rebuilt index is the migrated one whatever the migrations say).
type reactionIndex struct{ name, drop, create string }

// bulkLoad writes the staged plays into reactions as a bulk load, in the
// import's transaction:
//
//  1. It drops reactions' secondary indexes and, unless something depends
//     on it, the primary key. This takes reactions' ACCESS EXCLUSIVE lock
//     until commit: readers and writers of reactions wait for the import
//     instead of running beside it, so nothing can change the table
//     between the steps below.
//  2. Into an empty table (a first import) it copies the summed plays as
//     they are summed. Otherwise it sums them into
//     a table, updates the reactions whose weight changes (a hash join) and
//     copies the new ones. The copy goes out with COPY TO into an unlinked
//     temporary file and back into reactions with COPY FROM: COPY writes a
//     page of rows per WAL record where INSERT writes one per row, which
//     made the INSERT half a first import's time.
//  3. It adds the primary key and the indexes back, each built once. The
//     primary key's build checks one row per (user, song, kind) and the
//     partial unique index reactions_one_opinion's one opinion per song,
//     over every row: a violation fails the import and rolls it back, so
//     both guarantees hold as before, and no one ever sees reactions
//     without its indexes.
func (m *merge) bulkLoad(ctx context.Context) {
	idx := m.dropIndexesForBulk(ctx)
	var empty bool
	if m.err == nil {
		// Exact now that no one else can write.
		if err := m.tx.QueryRow(ctx, `SELECT NOT EXISTS (SELECT 1 FROM reactions)`).Scan(&empty); err != nil {
			m.err = fmt.Errorf("import %s: probe reactions: %w", m.source, err)
		}
	}
	m.skipRowTriggers(ctx)
	r := &m.sum.Reactions
	if empty {
		r.Inserted = m.copyReactions(ctx, m.playsSQL())
	} else {
		total := m.exec(ctx, "sum plays", "CREATE TEMP TABLE import_plays ON COMMIT DROP AS "+m.playsSQL())
		m.exec(ctx, "sum plays", "ANALYZE import_plays")
		r.Updated = m.exec(ctx, "update changed reactions", `UPDATE reactions r SET weight = p.weight, updated_at = now()
			FROM import_plays p
			WHERE r.user_id = p.user_id AND r.song_id = p.song_id AND r.kind = $1 AND r.weight <> p.weight`,
			string(setlist.Play))
		r.Inserted = m.copyReactions(ctx, `SELECT p.user_id, p.song_id, p.weight FROM import_plays p
			WHERE NOT EXISTS (SELECT 1 FROM reactions r
				WHERE r.user_id = p.user_id AND r.song_id = p.song_id AND r.kind = '`+string(setlist.Play)+`')`)
		r.Unchanged = total - r.Inserted - r.Updated
	}
	m.restoreRowTriggers(ctx)
	m.rebuildIndexes(ctx, idx)
}

// copyReactions copies the plays query selects (user_id, song_id, weight)
// into reactions through a temporary file and returns how many it copied.
//
// The rows keep the staged order when stageSource summed the file's runs
// (each user's rows are together, as the file had them, which is what reads
// of one user's history want); otherwise they are sorted by user and song.
// Sorting 50 M rows that are already grouped cost 7 of a 50 M-row import's
// 18.5 minutes (docs/BENCHMARKS.md), and each index build sorts anyway.
//
// The round trip is there because PostgreSQL has no COPY from a query:
// INSERT … SELECT writes row by row. Both COPYs must run on the import's
// connection (its transaction holds the lock and sees the staged tables),
// one after the other, so the rows wait in between in a file, not in
// memory: the binary format, about 34 bytes a row, deleted as soon as it is
// created so that nothing is left behind, even after a crash. COPY takes
// no parameters, so the kind is a literal (a constant without quotes).
func (m *merge) copyReactions(ctx context.Context, plays string) int64 {
	if m.err != nil {
		return 0
	}
	fail := func(step string, err error) int64 {
		m.err = fmt.Errorf("import %s: %s: %w", m.source, step, err)
		return 0
	}
	f, err := os.CreateTemp("", "setlist-import-*.copy")
	if err != nil {
		return fail("spool reactions", err)
	}
	defer f.Close()
	if err := os.Remove(f.Name()); err != nil {
		return fail("spool reactions", err)
	}
	order := ""
	if !m.summed {
		order = " ORDER BY 1, 2"
	}
	conn := m.tx.Conn().PgConn()
	start := time.Now()
	w := bufio.NewWriterSize(f, 1<<20)
	out, err := conn.CopyTo(ctx, w, "COPY (SELECT user_id, song_id, '"+string(setlist.Play)+"', weight FROM ("+plays+") p"+order+") TO STDOUT (FORMAT binary)")
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		return fail("copy out reactions", err)
	}
	m.timed("copy out reactions", start)
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fail("spool reactions", err)
	}
	start = time.Now()
	in, err := conn.CopyFrom(ctx, bufio.NewReaderSize(f, 1<<20), "COPY reactions (user_id, song_id, kind, weight) FROM STDIN (FORMAT binary)")
	if err != nil {
		return fail("copy in reactions", err)
	}
	m.timed("copy in reactions", start)
	if in.RowsAffected() != out.RowsAffected() {
		return fail("copy in reactions", fmt.Errorf("copied %d of %d rows", in.RowsAffected(), out.RowsAffected()))
	}
	return in.RowsAffected()
}

// dropIndexesForBulk drops reactions' secondary indexes and its primary key
// for bulkLoad and returns how to build them again.
//
// An index backing another constraint than the primary key is kept, and so
// is the primary key when a foreign key refers to it or a publication may
// need it as the replica identity of the updates.
func (m *merge) dropIndexesForBulk(ctx context.Context) []reactionIndex {
	if m.err != nil {
		return nil
	}
	rows, err := m.tx.Query(ctx, `SELECT c.relname, coalesce(k.conname, ''), coalesce(pg_get_constraintdef(k.oid), ''), pg_get_indexdef(i.indexrelid)
		FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		LEFT JOIN pg_constraint k ON k.conindid = i.indexrelid AND k.conrelid = i.indrelid
		WHERE i.indrelid = 'reactions'::regclass
		  AND (k.oid IS NULL OR (k.contype = 'p'
		    AND NOT EXISTS (SELECT 1 FROM pg_constraint f WHERE f.confrelid = 'reactions'::regclass)
		    AND NOT EXISTS (SELECT 1 FROM pg_publication WHERE puballtables)
		    AND NOT EXISTS (SELECT 1 FROM pg_publication_rel WHERE prrelid = 'reactions'::regclass)))
		ORDER BY k.oid IS NULL, c.relname`)
	if err != nil {
		m.err = fmt.Errorf("import %s: list reactions indexes: %w", m.source, err)
		return nil
	}
	idx, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (reactionIndex, error) {
		var index, constraint, condef, indexdef string
		if err := row.Scan(&index, &constraint, &condef, &indexdef); err != nil {
			return reactionIndex{}, err
		}
		if constraint != "" {
			c := pgx.Identifier{constraint}.Sanitize()
			return reactionIndex{name: index, drop: "ALTER TABLE reactions DROP CONSTRAINT " + c,
				create: "ALTER TABLE reactions ADD CONSTRAINT " + c + " " + condef}, nil
		}
		return reactionIndex{name: index, drop: "DROP INDEX " + pgx.Identifier{index}.Sanitize(), create: indexdef}, nil
	})
	if err != nil {
		m.err = fmt.Errorf("import %s: list reactions indexes: %w", m.source, err)
		return nil
	}
	for _, ix := range idx {
		m.exec(ctx, "drop indexes for bulk load", ix.drop)
	}
	if m.err != nil {
		return nil
	}
	return idx
}

// rebuildIndexes builds the indexes dropIndexesForBulk dropped, in the
// same transaction: a failure (a second opinion on a song) rolls back the
// whole import, and no one ever sees reactions without them.
func (m *merge) rebuildIndexes(ctx context.Context, idx []reactionIndex) {
	// A build sorts in maintenance_work_mem; more of it keeps the sort of
	// tens of millions of keys in memory. Transaction-local.
	m.exec(ctx, "rebuild indexes", "SET LOCAL maintenance_work_mem = '512MB'")
	for i, ix := range idx {
		m.progress("index", int64(i+1))
		m.exec(ctx, "rebuild index "+ix.name, ix.create)
	}
	if m.err == nil {
		m.sum.RebuiltIndexes = len(idx)
	}
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
	if m.err != nil {
		return
	}
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

// restoreRowTriggers turns the triggers skipRowTriggers turned off back on:
// nothing else in this transaction may run without them.
func (m *merge) restoreRowTriggers(ctx context.Context) {
	if m.sum.FKChecks == "set-based" {
		m.exec(ctx, "restore row triggers", "SET LOCAL session_replication_role = origin")
	}
}
