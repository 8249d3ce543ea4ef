package store

import (
	"bufio"
	"compress/gzip"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

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
	// SkipInvalid skips rows whose fields are wrong (column count, empty,
	// malformed or overlong values) or whose quoting is (a bare or
	// unbalanced '"': the rows the open quote spans are skipped as one, at
	// the line it opened on) instead of aborting the import. Errors that
	// leave nothing to resume from (an oversized row, a bad header, a
	// damaged gzip stream) still abort.
	SkipInvalid bool
	// Progress, if set, is called from the importing goroutine every few
	// thousand rows and at each phase change. It must return quickly.
	Progress func(ImportProgress)
	// PerRowFKChecks keeps PostgreSQL's per-row foreign-key triggers even
	// where the import could enforce the keys set-based; it exists to measure
	// the difference and as a switch should the fast path ever be doubted.
	// Backends without that fast path ignore it.
	PerRowFKChecks bool
}

// ImportProgress is a snapshot for a progress display.
type ImportProgress struct {
	// Phase is "read" while rows stream to the server (into a staging
	// table), then "users", "songs", "reactions" (merging the staged rows),
	// "index" (rebuilding an index after a bulk load) and "commit".
	Phase string
	// Rows counts data rows read so far, skipped ones included.
	Rows int64
	// Items is what the phase works on, 0 when it has no count: in
	// "reactions" the staged rows being summed and merged, in "index" the
	// number of the index being built (1, 2, ...).
	Items int64
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
	// "set-based" (one lock per user and song, see the postgres package) or
	// "per-row" (the database's own checks); "" when no reaction was
	// written.
	FKChecks string
	// RebuiltIndexes counts the reactions indexes dropped for a bulk load
	// and built again once (0: kept and updated row by row).
	RebuiltIndexes int
	Duration       time.Duration
	// Steps is where the time went, in order, for the backends that
	// measure it (PostgreSQL: each statement of the merge, consecutive
	// statements of one step summed): what the import benchmarks print.
	Steps []ImportStep
}

// ImportStep is one step of an import and its wall time.
type ImportStep struct {
	Name     string
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

// Column names as they appear in the header and in error messages.
const (
	colUser   = "user_id"
	colArtist = "artist"
	colTrack  = "track"
	colCount  = "count"
)

// Rows parses an import CSV lazily, one valid row at a time, in the shape
// pgx.CopyFrom consumes (Next, Values, Err), so every backend validates rows
// the same way. CopyFrom calls Next from its own goroutine; Counts may be read
// only after the consumer has stopped calling Next.
type Rows struct {
	opts     ImportOptions
	bytes    *countingReader
	rows     *rowLimitReader
	cr       *csv.Reader
	hasCount bool
	values   []any
	// lastRawUser is the last valid user_id as read (trimmed) and lastUser
	// what ParseUserID made of it.
	lastRawUser, lastUser string

	read, accepted, skipped int64
	skippedRows             []*InputError
	err                     error
}

// NewRows reads the header of r (gzip is detected by its magic bytes) and
// returns the row stream, or an *InputError for a missing or wrong header.
func NewRows(r io.Reader, opts ImportOptions) (*Rows, error) {
	s := &Rows{opts: opts, bytes: &countingReader{r: r}, values: make([]any, 4)}
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

func (s *Rows) readHeader() error {
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
func (s *Rows) Next() bool {
	for {
		rec, err := s.cr.Read()
		if err == io.EOF {
			s.Report("read")
			return false
		}
		if err != nil {
			bad := s.readError(err)
			var pe *csv.ParseError
			if s.opts.SkipInvalid && errors.As(err, &pe) && s.rows.err == nil {
				// A quoting error (a bare or unbalanced '"') spoils only the
				// rows it spans: csv has consumed them, and reading goes on
				// at the next line. The limit reader's quote state may have
				// been thrown off by the same quote, so it starts afresh.
				s.read++
				s.skip(bad.(*InputError))
				s.rows.resync()
				continue
			}
			s.err = bad
			return false
		}
		s.read++
		line, _ := s.cr.FieldPos(0)
		if bad := s.parse(rec, line); bad != nil {
			if !s.opts.SkipInvalid {
				s.err = bad
				return false
			}
			s.skip(bad)
			continue
		}
		s.accepted++
		if s.read%progressEvery == 0 {
			s.Report("read")
		}
		return true
	}
}

// skip counts a rejected row and keeps it for the report if there is room.
func (s *Rows) skip(bad *InputError) {
	s.skipped++
	if len(s.skippedRows) < maxSkippedListed {
		s.skippedRows = append(s.skippedRows, bad)
	}
}

// Values is the current row: user_id, artist and track (trimmed strings) and
// the count (float64). The slice is reused by the next call to Next.
func (s *Rows) Values() ([]any, error) { return s.values, nil }

// Err is the error that stopped Next, nil at a clean end of input.
func (s *Rows) Err() error { return s.err }

// Counts are the rows accepted and skipped so far, and the first few skipped.
func (s *Rows) Counts() (accepted, skipped int64, skippedRows []*InputError) {
	return s.accepted, s.skipped, s.skippedRows
}

// Report tells opts.Progress the phase and the rows and bytes read so far.
func (s *Rows) Report(phase string) {
	if s.opts.Progress != nil {
		s.opts.Progress(ImportProgress{Phase: phase, Rows: s.read, Bytes: s.bytes.n})
	}
}

// parse validates rec into s.values.
func (s *Rows) parse(rec []string, line int) *InputError {
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
		if i == 1 || i == 2 {
			// The API's song name rule: longer names cannot be indexed,
			// and PostgreSQL's refusal would name no line.
			if err := setlist.CheckSongNameLength(names[i], f); err != nil {
				return bad(names[i], "%s", strings.TrimSuffix(err.Error(), ": "+setlist.ErrInvalid.Error()))
			}
		}
		if i == 0 {
			// The API's user id rule, after the CSV's trimming: NFC, no
			// invisible characters, no mixed Latin/Greek/Cyrillic. Exports
			// are usually grouped by user, so the previous row's id is
			// usually this one's and its answer is reused.
			if f == s.lastRawUser {
				f = s.lastUser
			} else {
				id, err := setlist.ParseUserID(f)
				if err != nil {
					return bad(colUser, "%s", strings.TrimSuffix(strings.TrimPrefix(err.Error(), "user_id "), ": "+setlist.ErrInvalid.Error()))
				}
				s.lastRawUser, s.lastUser = f, string(id)
				f = string(id)
			}
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
func (s *Rows) readError(err error) error {
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

// resync forgets the quote state after csv reported a quoting error and
// resumed at a new row: from here, a row starts at the next newline.
func (l *rowLimitReader) resync() {
	l.inQuote = false
	l.rowLen = 0
	l.rowStart = l.line
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
