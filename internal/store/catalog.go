package store

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/setlist/setlist"
)

// Songs as a managed catalog (issue 22 item 1). Every catalog write
// (CreateSong, PatchSong, SetAvailable, ImportCatalog) that changes
// something bumps the catalog change sequence in its own transaction and
// returns the new number; the caller then tells serve (the keyspace's
// "catalog changed" event) so replicas re-read HiddenSongs. Songs that
// reactions and the reactions import create on the fly are available and
// untagged, change no hidden set, and bump nothing.

// SongQuery selects songs for the catalog search (GET /v1/songs).
type SongQuery struct {
	// Query is a substring of "artist track" (case-insensitive), ranked as
	// the typeahead ranks it; "" lists alphabetically.
	Query string
	// Tag, if set, keeps songs carrying this tag (already normalised).
	Tag string
	// Available, if set, keeps songs whose availability is *Available.
	Available *bool
	Limit     int
	// After, if set, starts the alphabetical list (Query "") after this
	// song: keyset paging, as cheap on the millionth song as on the first.
	After *CatalogKey
}

// CatalogKey is a song's place in the alphabetical catalog list.
type CatalogKey struct {
	Artist, Track string
	ID            setlist.SongID
}

// Key is cs's place in the alphabetical list.
func Key(cs setlist.CatalogSong) CatalogKey {
	return CatalogKey{Artist: cs.Artist, Track: cs.Track, ID: cs.ID}
}

// Validate checks the limit and the tag.
func (q SongQuery) Validate() error {
	if q.Limit < 1 {
		return fmt.Errorf("limit must be ≥ 1, got %d: %w", q.Limit, setlist.ErrInvalid)
	}
	if q.After != nil && q.Query != "" {
		return fmt.Errorf("a cursor pages the list without a query; a search answers its best matches in one page: %w", setlist.ErrInvalid)
	}
	if q.Tag != "" {
		if err := setlist.ValidateTag(q.Tag); err != nil {
			return err
		}
	}
	return nil
}

// Songs strips the metadata, for callers that want the plain songs.
func Songs(cs []setlist.CatalogSong) []setlist.Song {
	out := make([]setlist.Song, len(cs))
	for i, c := range cs {
		out[i] = c.Song
	}
	return out
}

// CatalogRow is one parsed row of a catalog CSV. Has* says whether the file
// has that column: a column the file lacks leaves the stored value alone;
// an empty cell of a column it has clears tags and released (the file is a
// snapshot of what it lists) but never clears an external id, and an empty
// available cell leaves availability alone (a new song is available).
type CatalogRow struct {
	Line         int
	Artist       string
	Track        string
	ExternalID   string
	Tags         []string
	HasTags      bool
	Released     *setlist.Date
	HasReleased  bool
	Available    bool
	HasAvailable bool
}

// Patch is what the row changes on an existing song.
func (r CatalogRow) Patch() setlist.SongPatch {
	var p setlist.SongPatch
	if r.HasAvailable {
		p.Available = &r.Available
	}
	if r.HasTags {
		p.Tags = &r.Tags
	}
	if r.HasReleased {
		d := setlist.Date{}
		if r.Released != nil {
			d = *r.Released
		}
		p.Released = &d
	}
	if r.ExternalID != "" {
		p.ExternalID = &r.ExternalID
	}
	return p
}

// NewSong is the song the row creates when it matches none.
func (r CatalogRow) NewSong() setlist.NewSong {
	n := setlist.NewSong{Artist: r.Artist, Track: r.Track, Tags: r.Tags, Released: r.Released, ExternalID: r.ExternalID}
	if r.HasAvailable {
		n.Available = &r.Available
	}
	return n
}

// Catalog CSV columns: artist and track are required, the others optional,
// in any order.
const (
	colExternalID = "external_id"
	colTags       = "tags"
	colReleased   = "released"
	colAvailable  = "available"
)

// CatalogColumns states the catalog CSV's header in words, for errors and
// usage.
const CatalogColumns = "artist,track and optionally external_id, tags (separated by spaces, | or ;), released (YYYY-MM-DD), available (true/false)"

// ParseCatalog reads a whole catalog CSV (gzip detected by its magic bytes)
// and checks every row: a bad row or a song listed twice (by external id,
// or by artist and track) is an *InputError naming SOURCE:LINE and the
// field, and nothing is returned. now bounds release days.
func ParseCatalog(r io.Reader, source string, now time.Time) ([]CatalogRow, error) {
	if source == "" {
		source = "input"
	}
	br := bufio.NewReaderSize(r, 64<<10)
	var text io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, &InputError{Source: source, Line: 1, Problem: "unreadable gzip stream", Err: err}
		}
		text = gz
	}
	// The reactions import's framing: rows bounded, errors at a line.
	s := &Rows{opts: ImportOptions{Source: source}, rows: &rowLimitReader{r: text, source: source, max: MaxRowBytes, line: 1, rowStart: 1}}
	s.cr = csv.NewReader(s.rows)
	s.cr.FieldsPerRecord = -1
	header, err := s.cr.Read()
	if err == io.EOF {
		return nil, &InputError{Source: source, Line: 1, Problem: "missing header (empty input): want " + CatalogColumns}
	}
	if err != nil {
		return nil, s.readError(err)
	}
	cols := map[string]int{}
	for i, f := range header {
		name := strings.ToLower(strings.TrimSpace(f))
		if i == 0 {
			name = strings.TrimSpace(strings.TrimPrefix(name, "\ufeff"))
		}
		switch name {
		case colArtist, colTrack, colExternalID, colTags, colReleased, colAvailable:
		default:
			return nil, &InputError{Source: source, Line: 1, Problem: fmt.Sprintf("unknown column %q: want %s", truncate(name, 40), CatalogColumns)}
		}
		if _, dup := cols[name]; dup {
			return nil, &InputError{Source: source, Line: 1, Problem: fmt.Sprintf("column %q appears twice", name)}
		}
		cols[name] = i
	}
	for _, need := range []string{colArtist, colTrack} {
		if _, ok := cols[need]; !ok {
			return nil, &InputError{Source: source, Line: 1, Problem: fmt.Sprintf("missing column %q: want %s", need, CatalogColumns)}
		}
	}
	type name struct{ artist, track string }
	byName := map[name]int{}
	byExt := map[string]int{}
	var out []CatalogRow
	for {
		rec, err := s.cr.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, s.readError(err)
		}
		line, _ := s.cr.FieldPos(0)
		row, bad := parseCatalogRow(rec, cols, source, line, now)
		if bad != nil {
			return nil, bad
		}
		k := name{row.Artist, row.Track}
		if first, dup := byName[k]; dup {
			return nil, &InputError{Source: source, Line: line, Problem: fmt.Sprintf("%q by %q is also on line %d", truncate(row.Track, 60), truncate(row.Artist, 60), first)}
		}
		byName[k] = line
		if row.ExternalID != "" {
			if first, dup := byExt[row.ExternalID]; dup {
				return nil, &InputError{Source: source, Line: line, Field: colExternalID, Problem: fmt.Sprintf("external_id %q is also on line %d", row.ExternalID, first)}
			}
			byExt[row.ExternalID] = line
		}
		out = append(out, row)
	}
}

func parseCatalogRow(rec []string, cols map[string]int, source string, line int, now time.Time) (CatalogRow, *InputError) {
	bad := func(field string, err error) *InputError {
		return &InputError{Source: source, Line: line, Field: field, Problem: strings.TrimSuffix(err.Error(), ": "+setlist.ErrInvalid.Error())}
	}
	if len(rec) != len(cols) {
		return CatalogRow{}, &InputError{Source: source, Line: line, Problem: fmt.Sprintf("row has %d fields, want %d", len(rec), len(cols))}
	}
	for f, i := range cols {
		if !utf8.ValidString(rec[i]) {
			return CatalogRow{}, &InputError{Source: source, Line: line, Field: f, Problem: "invalid UTF-8"}
		}
	}
	cell := func(col string) (string, bool) {
		i, ok := cols[col]
		if !ok {
			return "", false
		}
		return strings.TrimSpace(rec[i]), true
	}
	row := CatalogRow{Line: line}
	artist, _ := cell(colArtist)
	track, _ := cell(colTrack)
	row.ExternalID, _ = cell(colExternalID)
	var tags []string
	if v, ok := cell(colTags); ok {
		row.HasTags = true
		tags = strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == '|' || r == ';' || r == '\t' })
	}
	if v, ok := cell(colReleased); ok {
		row.HasReleased = true
		if v != "" {
			d, err := setlist.ParseDate(v)
			if err != nil {
				return CatalogRow{}, bad(colReleased, err)
			}
			row.Released = &d
		}
	}
	if v, ok := cell(colAvailable); ok && v != "" {
		row.HasAvailable = true
		switch strings.ToLower(v) {
		case "true", "1", "yes":
			row.Available = true
		case "false", "0", "no":
		default:
			return CatalogRow{}, &InputError{Source: source, Line: line, Field: colAvailable, Problem: fmt.Sprintf("available %q is not true or false", truncate(v, 40))}
		}
	}
	n, err := setlist.NewSong{Artist: artist, Track: track, Tags: tags, Released: row.Released, ExternalID: row.ExternalID}.Normalize(now)
	if err != nil {
		return CatalogRow{}, bad(catalogField(err), err)
	}
	row.Artist, row.Track, row.Tags = n.Artist, n.Track, n.Tags
	return row, nil
}

// catalogField names the column a NewSong validation error is about.
func catalogField(err error) string {
	msg := err.Error()
	for _, f := range []string{colArtist, colTrack, colTags, colReleased, colExternalID} {
		if strings.HasPrefix(msg, f) {
			return f
		}
	}
	if strings.HasPrefix(msg, "tag ") {
		return colTags
	}
	return ""
}

// CatalogImportSummary reports what an ImportCatalog did.
type CatalogImportSummary struct {
	Source string
	Rows   int64
	Songs  UpsertCount
	// Seq is the catalog change sequence the import was given, 0 when it
	// changed nothing (a repeated import).
	Seq      int64
	Duration time.Duration
}

// CatalogTx is what ApplyCatalog needs of a backend's write transaction.
type CatalogTx interface {
	// SongByExternalID and SongByName return the song and true, or false
	// when there is none.
	SongByExternalID(ctx context.Context, id string) (setlist.CatalogSong, bool, error)
	SongByName(ctx context.Context, artist, track string) (setlist.CatalogSong, bool, error)
	InsertSong(ctx context.Context, n setlist.NewSong) (setlist.SongID, error)
	// UpdateSong writes s's metadata (available, tags, released,
	// external_id) over song s.ID.
	UpdateSong(ctx context.Context, s setlist.CatalogSong) error
}

// ApplyCatalog upserts rows in order through tx: a row matches the song with
// its external id, else the song with its artist and track, else creates
// one. A row whose external id belongs to a song of another name, or whose
// song already has another external id, is an *InputError at its line (the
// caller rolls back: all or nothing). Only songs whose metadata changes are
// written, so a repeated import writes nothing.
func ApplyCatalog(ctx context.Context, tx CatalogTx, source string, rows []CatalogRow) (UpsertCount, error) {
	var c UpsertCount
	for _, r := range rows {
		bad := func(format string, args ...any) error {
			return &InputError{Source: source, Line: r.Line, Field: colExternalID, Problem: fmt.Sprintf(format, args...)}
		}
		var old setlist.CatalogSong
		found := false
		if r.ExternalID != "" {
			s, ok, err := tx.SongByExternalID(ctx, r.ExternalID)
			if err != nil {
				return c, fmt.Errorf("line %d: %w", r.Line, err)
			}
			if ok && (s.Artist != r.Artist || s.Track != r.Track) {
				return c, bad("external_id %q is song %d, %q by %q, not %q by %q", r.ExternalID, s.ID,
					truncate(s.Track, 60), truncate(s.Artist, 60), truncate(r.Track, 60), truncate(r.Artist, 60))
			}
			old, found = s, ok
		}
		if !found {
			s, ok, err := tx.SongByName(ctx, r.Artist, r.Track)
			if err != nil {
				return c, fmt.Errorf("line %d: %w", r.Line, err)
			}
			if ok && r.ExternalID != "" && s.ExternalID != "" && s.ExternalID != r.ExternalID {
				return c, bad("%q by %q already has external_id %q, not %q", truncate(r.Track, 60), truncate(r.Artist, 60), s.ExternalID, r.ExternalID)
			}
			old, found = s, ok
		}
		if !found {
			if _, err := tx.InsertSong(ctx, r.NewSong()); err != nil {
				return c, fmt.Errorf("line %d: %w", r.Line, err)
			}
			c.Inserted++
			continue
		}
		next := r.Patch().Apply(old)
		if SameMetadata(old, next) {
			c.Unchanged++
			continue
		}
		if err := tx.UpdateSong(ctx, next); err != nil {
			return c, fmt.Errorf("line %d: %w", r.Line, err)
		}
		c.Updated++
	}
	return c, nil
}

// SameMetadata reports whether a and b hold the same catalog metadata.
func SameMetadata(a, b setlist.CatalogSong) bool {
	sameDay := (a.Released == nil) == (b.Released == nil) && (a.Released == nil || a.Released.Equal(b.Released.Time))
	return a.Available == b.Available && slices.Equal(a.Tags, b.Tags) && sameDay && a.ExternalID == b.ExternalID
}
