package postgres

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/setlist/setlist"
)

// MaxRowBytes bounds one CSV row (a physical line, or several when a quoted
// field spans lines). Real rows are a few hundred bytes; the bound exists so a
// corrupt file (a missing closing quote, a binary blob) fails with a line
// number instead of growing a buffer until the process is killed.
const MaxRowBytes = 64 << 10

// maxSkippedListed is how many skipped rows a summary names individually;
// beyond that only the count grows, so memory stays constant on a bad file.
const maxSkippedListed = 10

// progressEvery is how many rows pass between progress callbacks: frequent
// enough for a smooth bar, rare enough to cost nothing per row.
const progressEvery = 8192

// ImportOptions tunes one Import.
type ImportOptions struct {
	// Source names the input in errors ("SOURCE:LINE: ...") and the summary;
	// usually the file path, or "stdin".
	Source string
	// SkipInvalid skips rows whose fields are wrong (column count, empty or
	// malformed values) instead of aborting the import. Errors that break the
	// file's framing (quoting, an oversized row, a bad header, a damaged gzip
	// stream) still abort: the rows after them cannot be trusted.
	SkipInvalid bool
	// Progress, if set, is called from the importing goroutine every few
	// thousand rows and at each phase change. It must return quickly.
	Progress func(ImportProgress)
	// PerRowFKChecks keeps PostgreSQL's per-row foreign-key triggers even
	// where the import could enforce the keys set-based; it exists to measure
	// the difference and as a switch should the fast path ever be doubted.
	PerRowFKChecks bool
}

// ImportProgress is a snapshot for a progress display.
type ImportProgress struct {
	// Phase is "read" while rows stream to the server, then "users", "songs",
	// "reactions" and "commit" for the set-based upserts.
	Phase string
	// Rows counts data rows read so far, skipped ones included.
	Rows int64
	// Bytes counts bytes consumed from the reader given to Import: compressed
	// bytes for gzip input, so it can be compared with the file's size.
	Bytes int64
}

// UpsertCount splits the distinct keys an import touched by what happened to
// them. Users and songs carry no imported attributes, so they are never
// Updated, only Inserted or Unchanged.
type UpsertCount struct {
	Inserted  int64
	Updated   int64
	Unchanged int64
}

// Total is the number of distinct keys in the input.
func (c UpsertCount) Total() int64 { return c.Inserted + c.Updated + c.Unchanged }

// ImportSummary reports what an Import did.
type ImportSummary struct {
	Source string
	// Rows counts the data rows accepted (before duplicates were summed);
	// Skipped counts the rejected ones, of which SkippedRows lists the first
	// few with the reason.
	Rows        int64
	Skipped     int64
	SkippedRows []*InputError
	Users       UpsertCount
	Songs       UpsertCount
	Reactions   UpsertCount
	// FKChecks says how the reactions' foreign keys were enforced:
	// "set-based" (one lock per user and song, see skipRowTriggers) or
	// "per-row" (PostgreSQL's own triggers, the fallback).
	FKChecks string
	Duration time.Duration
}

// InputError is a problem with the imported file itself, as opposed to the
// database; its text is "SOURCE:LINE: problem (field NAME)" so an editor or a
// person can jump to the row. It matches setlist.ErrInvalid.
type InputError struct {
	Source  string
	Line    int    // 1-based line where the offending row starts
	Field   string // column name, or "" when the problem is not one field's
	Problem string
	Err     error // underlying cause (csv, gzip or I/O error), if any
}

func (e *InputError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:%d: %s", e.Source, e.Line, e.Problem)
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, " (field %s)", e.Field)
	}
	return b.String()
}

// Is makes errors.Is(err, setlist.ErrInvalid) true, so callers can tell bad
// input from a database failure without parsing text.
func (e *InputError) Is(target error) bool { return target == setlist.ErrInvalid }

func (e *InputError) Unwrap() error { return e.Err }

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
func (db *DB) Import(ctx context.Context, r io.Reader, opts ImportOptions) (ImportSummary, error) {
	start := time.Now()
	if opts.Source == "" {
		opts.Source = "input"
	}
	sum := ImportSummary{Source: opts.Source}
	src, err := newRowSource(r, opts)
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
	_, copyErr := tx.CopyFrom(ctx, pgx.Identifier{"import_rows"}, []string{"user_ext", "artist", "track", "plays"}, src)
	// The source's own error explains a failed COPY better than the
	// connection's echo of it, and must win even if COPY reported nothing.
	if src.err != nil {
		return sum, src.err
	}
	if copyErr != nil {
		return sum, fmt.Errorf("import %s: copy rows: %w", opts.Source, copyErr)
	}
	sum.Rows, sum.Skipped, sum.SkippedRows = src.accepted, src.skipped, src.skippedRows

	src.report("users")
	m.upsertKeys(ctx, "users", &sum.Users)
	src.report("songs")
	m.upsertKeys(ctx, "songs", &sum.Songs)
	src.report("reactions")
	m.upsertReactions(ctx, opts.PerRowFKChecks)
	if m.err != nil {
		return sum, m.err
	}
	src.report("commit")
	if err := tx.Commit(ctx); err != nil {
		return sum, fmt.Errorf("import %s: commit: %w", opts.Source, err)
	}
	sum.Duration = time.Since(start)
	return sum, nil
}

// merge runs the set-based statements that fold the staged rows into the
// real tables. It keeps the first error and skips later statements, so the
// sequence reads as the plan it is.
type merge struct {
	tx     pgx.Tx
	source string
	sum    *ImportSummary
	err    error
}

func (m *merge) exec(ctx context.Context, step, sql string, args ...any) int64 {
	if m.err != nil {
		return 0
	}
	tag, err := m.tx.Exec(ctx, sql, args...)
	if err != nil {
		m.err = fmt.Errorf("import %s: %s: %w", m.source, step, err)
		return 0
	}
	return tag.RowsAffected()
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
func (m *merge) upsertKeys(ctx context.Context, table string, dst *UpsertCount) {
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
	m.sum.FKChecks = "per-row"
	if !perRow && m.err == nil {
		m.skipRowTriggers(ctx)
	}
	if m.err != nil {
		return
	}
	r := &m.sum.Reactions
	if err := m.tx.QueryRow(ctx, upsertReactionsSQL, string(setlist.Play)).Scan(&r.Inserted, &r.Updated); err != nil {
		m.err = fmt.Errorf("import %s: upsert reactions: %w", m.source, err)
		return
	}
	r.Unchanged = total - r.Inserted - r.Updated
	if m.sum.FKChecks == "set-based" {
		// Nothing else in this transaction may run without its triggers.
		m.exec(ctx, "upsert reactions", "SET LOCAL session_replication_role = origin")
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

// Column names as they appear in the header and in error messages.
const (
	colUser   = "user_id"
	colArtist = "artist"
	colTrack  = "track"
	colCount  = "count"
)

// rowSource parses the CSV lazily for pgx.CopyFrom, which calls Next from its
// own goroutine; the fields below are read by Import only after CopyFrom has
// returned, which waits for that goroutine.
type rowSource struct {
	opts     ImportOptions
	bytes    *countingReader
	rows     *rowLimitReader
	cr       *csv.Reader
	hasCount bool
	values   []any

	read, accepted, skipped int64
	skippedRows             []*InputError
	err                     error
}

func newRowSource(r io.Reader, opts ImportOptions) (*rowSource, error) {
	s := &rowSource{opts: opts, bytes: &countingReader{r: r}, values: make([]any, 4)}
	br := bufio.NewReaderSize(s.bytes, 64<<10)
	var text io.Reader = br
	// Sniff instead of trusting the extension: stdin has none, and a
	// renamed file would otherwise be parsed as binary garbage.
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, &InputError{Source: opts.Source, Line: 1, Problem: "unreadable gzip stream", Err: err}
		}
		text = gz
	}
	s.rows = &rowLimitReader{r: text, source: opts.Source, max: MaxRowBytes, line: 1, rowStart: 1}
	s.cr = csv.NewReader(s.rows)
	s.cr.FieldsPerRecord = -1
	s.cr.ReuseRecord = true
	if err := s.readHeader(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *rowSource) readHeader() error {
	rec, err := s.cr.Read()
	if err == io.EOF {
		return &InputError{Source: s.opts.Source, Line: 1, Problem: "missing header (empty input): want user_id,artist,track[,count]"}
	}
	if err != nil {
		return s.readError(err)
	}
	names := make([]string, len(rec))
	for i, f := range rec {
		names[i] = strings.ToLower(strings.TrimSpace(f))
	}
	if len(names) > 0 {
		// Spreadsheet exports often start with a byte-order mark.
		names[0] = strings.TrimSpace(strings.TrimPrefix(names[0], "\ufeff"))
	}
	got := strings.Join(names, ",")
	switch got {
	case "user_id,artist,track":
	case "user_id,artist,track,count":
		s.hasCount = true
	default:
		problem := "wrong header"
		if len(names) == 0 || names[0] != colUser {
			problem = "missing header"
		}
		return &InputError{Source: s.opts.Source, Line: 1,
			Problem: fmt.Sprintf("%s: got %q, want user_id,artist,track[,count]", problem, truncate(strings.Join(rec, ","), 80))}
	}
	return nil
}

// Next reads rows until one is valid, skipping invalid ones when allowed.
func (s *rowSource) Next() bool {
	for {
		rec, err := s.cr.Read()
		if err == io.EOF {
			s.report("read")
			return false
		}
		if err != nil {
			s.err = s.readError(err)
			return false
		}
		s.read++
		line, _ := s.cr.FieldPos(0)
		if bad := s.parse(rec, line); bad != nil {
			if !s.opts.SkipInvalid {
				s.err = bad
				return false
			}
			s.skipped++
			if len(s.skippedRows) < maxSkippedListed {
				s.skippedRows = append(s.skippedRows, bad)
			}
			continue
		}
		s.accepted++
		if s.read%progressEvery == 0 {
			s.report("read")
		}
		return true
	}
}

func (s *rowSource) Values() ([]any, error) { return s.values, nil }

func (s *rowSource) Err() error { return s.err }

func (s *rowSource) report(phase string) {
	if s.opts.Progress != nil {
		s.opts.Progress(ImportProgress{Phase: phase, Rows: s.read, Bytes: s.bytes.n})
	}
}

// parse validates rec into s.values.
func (s *rowSource) parse(rec []string, line int) *InputError {
	bad := func(field, format string, args ...any) *InputError {
		return &InputError{Source: s.opts.Source, Line: line, Field: field, Problem: fmt.Sprintf(format, args...)}
	}
	want := 3
	if s.hasCount {
		want = 4
	}
	if len(rec) != want {
		return bad("", "row has %d fields, want %d", len(rec), want)
	}
	names := [...]string{colUser, colArtist, colTrack, colCount}
	for i, f := range rec {
		if !utf8.ValidString(f) {
			return bad(names[i], "invalid UTF-8")
		}
		// PostgreSQL text cannot hold NUL; catching it here gives a line
		// number instead of a COPY failure.
		if strings.IndexByte(f, 0) >= 0 {
			return bad(names[i], "contains a NUL byte")
		}
		f = strings.TrimSpace(f)
		if f == "" {
			return bad(names[i], "empty value")
		}
		if i < 3 {
			s.values[i] = f
		}
	}
	count := 1.0
	if s.hasCount {
		raw := strings.TrimSpace(rec[3])
		c, err := strconv.ParseFloat(raw, 64)
		switch {
		case err != nil && !errors.Is(err, strconv.ErrRange):
			return bad(colCount, "count %q is not a number", truncate(raw, 40))
		case math.IsNaN(c) || math.IsInf(c, 0) || c > math.MaxFloat32:
			// weight is REAL: anything beyond float32 would fail the whole
			// COPY with no line number.
			return bad(colCount, "count %q is not a finite number in REAL range", truncate(raw, 40))
		case c < 0:
			return bad(colCount, "count %q is negative", truncate(raw, 40))
		}
		count = c
	}
	s.values[3] = count
	return nil
}

// readError turns a failure of the CSV reader or the stream beneath it into
// an InputError at the best line known.
func (s *rowSource) readError(err error) error {
	if s.rows.err != nil && errors.Is(err, s.rows.err) {
		return s.rows.err
	}
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		problem := "malformed CSV"
		if errors.Is(pe.Err, csv.ErrQuote) && pe.Line > pe.StartLine {
			problem = fmt.Sprintf("malformed CSV (a quoted field starts in this row; error found at line %d)", pe.Line)
		}
		return &InputError{Source: s.opts.Source, Line: pe.StartLine, Problem: problem, Err: pe.Err}
	}
	if s.rows.err != nil {
		return s.rows.err
	}
	problem := "cannot read input"
	if errors.Is(err, io.ErrUnexpectedEOF) {
		problem = "input is truncated"
	} else if errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) {
		problem = "unreadable gzip stream"
	}
	return &InputError{Source: s.opts.Source, Line: s.rows.line, Problem: problem, Err: err}
}

// rowLimitReader enforces MaxRowBytes before encoding/csv buffers a row: csv
// would otherwise grow its line buffer without bound. It follows quotes the
// way RFC 4180 does (every '"' toggles; '""' toggles twice), so it knows
// where rows start even when quoted fields contain newlines. When the file's
// quoting is wrong, csv reports that first: it is never more than one bufio
// buffer (4 KiB) behind this reader, far less than MaxRowBytes.
type rowLimitReader struct {
	r        io.Reader
	source   string
	max      int
	line     int // 1-based line of the next byte
	rowStart int // line where the current row began
	rowLen   int
	inQuote  bool
	err      *InputError // sticky, so csv cannot read past it
}

func (l *rowLimitReader) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	n, err := l.r.Read(p)
	for _, c := range p[:n] {
		switch c {
		case '"':
			l.inQuote = !l.inQuote
		case '\n':
			l.line++
			if !l.inQuote {
				l.rowLen, l.rowStart = 0, l.line
				continue
			}
		}
		l.rowLen++
		if l.rowLen > l.max {
			problem := fmt.Sprintf("row is longer than %d bytes", l.max)
			if l.line > l.rowStart {
				problem += fmt.Sprintf(" (a quoted field opened here is still open at line %d)", l.line)
			}
			l.err = &InputError{Source: l.source, Line: l.rowStart, Problem: problem}
			return n, l.err
		}
	}
	return n, err
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut at a rune boundary so the message itself stays valid UTF-8.
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
