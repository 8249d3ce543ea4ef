package postgres_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/postgres"
	"github.com/setlist/setlist/internal/postgres/pgtest"
	"github.com/setlist/setlist/internal/store"
)

// play keys a reaction by what the CSV says, not by database ids.
type play struct{ user, artist, track string }

// expected is what a CSV should produce, computed by an independent, naive
// reading of it (whole file in memory, trimmed fields, counts summed).
type expected struct {
	users, songs map[string]bool
	plays        map[play]float64
}

func expect(t *testing.T, r io.Reader) expected {
	t.Helper()
	recs, err := csv.NewReader(r).ReadAll()
	if err != nil {
		t.Fatalf("reference parse: %v", err)
	}
	e := expected{users: map[string]bool{}, songs: map[string]bool{}, plays: map[play]float64{}}
	for _, rec := range recs[1:] {
		for i := range rec {
			rec[i] = strings.TrimSpace(rec[i])
		}
		n := 1.0
		if len(rec) == 4 {
			if n, err = strconv.ParseFloat(rec[3], 64); err != nil {
				t.Fatalf("reference parse count %q: %v", rec[3], err)
			}
		}
		e.users[rec[0]] = true
		e.songs[rec[1]+"\x00"+rec[2]] = true
		e.plays[play{rec[0], rec[1], rec[2]}] += n
	}
	return e
}

// stored reads every reaction back by external keys, checking each is a play.
func stored(t *testing.T, db *postgres.DB) expected {
	t.Helper()
	ctx := context.Background()
	got := expected{users: map[string]bool{}, songs: map[string]bool{}, plays: map[play]float64{}}
	rows, err := db.Pool.Query(ctx, "SELECT external_id FROM users")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			t.Fatal(err)
		}
		got.users[u] = true
	}
	rows, err = db.Pool.Query(ctx, "SELECT artist, track FROM songs")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var a, tr string
		if err := rows.Scan(&a, &tr); err != nil {
			t.Fatal(err)
		}
		got.songs[a+"\x00"+tr] = true
	}
	rows, err = db.Pool.Query(ctx, `SELECT u.external_id, s.artist, s.track, r.kind, r.weight
		FROM reactions r JOIN users u ON u.id = r.user_id JOIN songs s ON s.id = r.song_id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var p play
		var kind string
		var w float32
		if err := rows.Scan(&p.user, &p.artist, &p.track, &kind, &w); err != nil {
			t.Fatal(err)
		}
		if kind != string(setlist.Play) {
			t.Errorf("reaction %v has kind %q, want play", p, kind)
		}
		got.plays[p] = float64(w)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

func assertStored(t *testing.T, db *postgres.DB, want expected) {
	t.Helper()
	got := stored(t, db)
	if !reflect.DeepEqual(got.users, want.users) {
		t.Errorf("users: got %d %v, want %d %v", len(got.users), keys(got.users), len(want.users), keys(want.users))
	}
	if !reflect.DeepEqual(got.songs, want.songs) {
		t.Errorf("songs: got %d, want %d", len(got.songs), len(want.songs))
	}
	if len(got.plays) != len(want.plays) {
		t.Errorf("reactions: got %d, want %d", len(got.plays), len(want.plays))
	}
	for p, w := range want.plays {
		// weight is REAL: compare at float32 precision.
		if g, ok := got.plays[p]; !ok || float32(g) != float32(w) {
			t.Errorf("reaction %q: weight %v (present %v), want %v", p, g, ok, w)
		}
	}
}

func keys(m map[string]bool) []string {
	var s []string
	for k := range m {
		s = append(s, k)
	}
	slices.Sort(s)
	return s
}

// dump renders every row of the three tables, timestamps included, so two
// dumps are equal only if nothing at all was rewritten.
func dump(t *testing.T, db *postgres.DB) string {
	t.Helper()
	var b strings.Builder
	for _, q := range []string{
		"SELECT id, external_id, display_name, created_at FROM users ORDER BY id",
		"SELECT id, artist, track, created_at FROM songs ORDER BY id",
		"SELECT user_id, song_id, kind, weight, created_at, updated_at FROM reactions ORDER BY user_id, song_id, kind",
	} {
		rows, err := db.Pool.Query(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			v, err := rows.Values()
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintln(&b, v...)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		b.WriteString("--\n")
	}
	return b.String()
}

func importBytes(t *testing.T, db *postgres.DB, name string, data []byte, skip bool) (store.ImportSummary, error) {
	t.Helper()
	return db.Import(context.Background(), bytes.NewReader(data), store.ImportOptions{Source: name, SkipInvalid: skip})
}

func gz(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

const smallCSV = `user_id,artist,track,count
u1,"Simon & Garfunkel","Mrs. Robinson",3
u1,"Dear, Maria","Count Me In, Again",2
u2,Adele,Hello,1.5
 u1 , Adele , Hello ,4
u1,Adele,Hello,2
u3,"Quote ""Inside""",Track,0
`

func TestImportSmall(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want expected
	}{
		{"plain", []byte(smallCSV), expect(t, strings.NewReader(smallCSV))},
		{"gzip", gz(t, []byte(smallCSV)), expect(t, strings.NewReader(smallCSV))},
		{"no count column", []byte("USER_ID , Artist,track\nu1,A,T\nu1,A,T\nu2,A,\"T, 2\"\n"),
			expect(t, strings.NewReader("user_id,artist,track\nu1,A,T\nu1,A,T\nu2,A,\"T, 2\"\n"))},
		{"CRLF and BOM", []byte("\ufeffuser_id,artist,track,count\r\nu1,A,T,2\r\n"), expect(t, strings.NewReader("user_id,artist,track,count\nu1,A,T,2\n"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := pgtest.DB(t)
			sum, err := importBytes(t, db, "small.csv", tt.data, false)
			if err != nil {
				t.Fatal(err)
			}
			assertStored(t, db, tt.want)
			if sum.Users.Inserted != int64(len(tt.want.users)) || sum.Songs.Inserted != int64(len(tt.want.songs)) ||
				sum.Reactions.Inserted != int64(len(tt.want.plays)) || sum.Reactions.Updated != 0 {
				t.Errorf("summary %+v, want %d users, %d songs, %d reactions inserted",
					sum, len(tt.want.users), len(tt.want.songs), len(tt.want.plays))
			}
		})
	}
	// The cases above must include what they claim to.
	e := expect(t, strings.NewReader(smallCSV))
	if e.plays[play{"u1", "Adele", "Hello"}] != 6 || !e.songs["Dear, Maria\x00Count Me In, Again"] {
		t.Fatal("smallCSV lost its duplicate or its quoted commas")
	}
}

func TestImportSampleTwiceThenChanged(t *testing.T) {
	raw, err := os.ReadFile("../../data/sample.csv.gz")
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	want := expect(t, bytes.NewReader(plain))
	rows := int64(bytes.Count(bytes.TrimSpace(plain), []byte("\n"))) // lines minus the header

	db := pgtest.DB(t)
	first, err := importBytes(t, db, "sample.csv.gz", raw, false)
	if err != nil {
		t.Fatal(err)
	}
	assertStored(t, db, want)
	if first.Rows != rows || first.Users.Inserted != int64(len(want.users)) ||
		first.Songs.Inserted != int64(len(want.songs)) || first.Reactions.Inserted != int64(len(want.plays)) {
		t.Errorf("first import summary %+v; want %d rows, %d users, %d songs, %d reactions",
			first, rows, len(want.users), len(want.songs), len(want.plays))
	}
	before := dump(t, db)

	second, err := importBytes(t, db, "sample.csv.gz", raw, false)
	if err != nil {
		t.Fatal(err)
	}
	if after := dump(t, db); after != before {
		t.Error("a second import of the same file changed rows (or their timestamps)")
	}
	if second.Users.Inserted != 0 || second.Songs.Inserted != 0 || second.Reactions.Inserted != 0 || second.Reactions.Updated != 0 ||
		second.Reactions.Unchanged != int64(len(want.plays)) || second.RebuiltIndexes != 0 {
		t.Errorf("second import summary %+v; want everything unchanged and no index rebuilt", second)
	}

	// A changed snapshot: the first data row's count goes up by 5 and the
	// last data row disappears. The change lands; the missing row stays,
	// because an import never deletes.
	lines := strings.Split(strings.TrimSpace(string(plain)), "\n")
	rec, err := csv.NewReader(strings.NewReader(lines[1])).Read()
	if err != nil {
		t.Fatal(err)
	}
	changed := play{rec[0], rec[1], rec[2]}
	c, _ := strconv.ParseFloat(rec[3], 64)
	rec[3] = strconv.FormatFloat(c+5, 'f', -1, 64)
	var b strings.Builder
	w := csv.NewWriter(&b)
	_ = w.Write(rec)
	w.Flush()
	lines[1] = strings.TrimSpace(b.String())
	lines = lines[:len(lines)-1]
	var stamp time.Time
	if err := db.Pool.QueryRow(context.Background(), `SELECT r.updated_at FROM reactions r
		JOIN users u ON u.id = r.user_id JOIN songs s ON s.id = r.song_id
		WHERE u.external_id = $1 AND s.artist = $2 AND s.track = $3`, changed.user, changed.artist, changed.track).Scan(&stamp); err != nil {
		t.Fatal(err)
	}
	third, err := importBytes(t, db, "changed.csv", []byte(strings.Join(lines, "\n")+"\n"), false)
	if err != nil {
		t.Fatal(err)
	}
	want.plays[changed] += 5
	assertStored(t, db, want) // the dropped row is still there
	if third.Reactions.Updated != 1 || third.Reactions.Inserted != 0 || third.Reactions.Unchanged != int64(len(want.plays))-2 {
		t.Errorf("changed import summary %+v; want 1 updated, %d unchanged", third.Reactions, len(want.plays)-2)
	}
	var stamp2 time.Time
	if err := db.Pool.QueryRow(context.Background(), `SELECT r.updated_at FROM reactions r
		JOIN users u ON u.id = r.user_id JOIN songs s ON s.id = r.song_id
		WHERE u.external_id = $1 AND s.artist = $2 AND s.track = $3`, changed.user, changed.artist, changed.track).Scan(&stamp2); err != nil {
		t.Fatal(err)
	}
	if !stamp2.After(stamp) {
		t.Errorf("changed reaction's updated_at %v did not move past %v", stamp2, stamp)
	}
	var moved int
	if err := db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM reactions WHERE updated_at > $1", stamp).Scan(&moved); err != nil {
		t.Fatal(err)
	}
	if moved != 1 {
		t.Errorf("%d reactions got a new updated_at, want only the changed one", moved)
	}
}

func TestImportPerRowFKChecksSameResult(t *testing.T) {
	want := expect(t, strings.NewReader(smallCSV))
	for _, perRow := range []bool{false, true} {
		db := pgtest.DB(t)
		sum, err := db.Import(context.Background(), strings.NewReader(smallCSV), store.ImportOptions{Source: "s", PerRowFKChecks: perRow})
		if err != nil {
			t.Fatal(err)
		}
		assertStored(t, db, want)
		var super bool
		if err := db.Pool.QueryRow(context.Background(), "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&super); err != nil {
			t.Fatal(err)
		}
		wantMode := "per-row"
		if super && !perRow {
			wantMode = "set-based"
		}
		if sum.FKChecks != wantMode {
			t.Errorf("PerRowFKChecks=%v as superuser=%v: FKChecks %q, want %q", perRow, super, sum.FKChecks, wantMode)
		}
		// The triggers must be back on after the import: an orphan
		// reaction is still refused.
		_, err = db.Pool.Exec(context.Background(), "INSERT INTO reactions (user_id, song_id, kind) VALUES (-1, -1, 'play')")
		if err == nil {
			t.Error("orphan reaction accepted after import")
		}
	}
}

// goodPrefix is two valid rows with users absent from the preloaded data,
// so a partial write of a bad file would show in the dump.
const goodPrefix = "user_id,artist,track,count\nnew1,A,T,1\nnew2,B,T,2\n"

func TestImportBadInput(t *testing.T) {
	long := strings.Repeat("x", store.MaxRowBytes+10)
	goodGz := gz(t, []byte(goodPrefix+"new3,C,T,3\nnew4,D,T,4\n"))
	tests := []struct {
		name   string
		data   []byte
		line   int
		substr string
	}{
		{"wrong column count", []byte(goodPrefix + "new3,A,T\n"), 4, "row has 3 fields, want 4"},
		{"too many columns", []byte(goodPrefix + "new3,A,T,1,9\n"), 4, "row has 5 fields"},
		{"empty user", []byte(goodPrefix + ",A,T,1\n"), 4, "empty value (field user_id)"},
		{"blank user", []byte(goodPrefix + "  ,A,T,1\n"), 4, "empty value (field user_id)"},
		{"empty artist", []byte(goodPrefix + "new3,,T,1\n"), 4, "empty value (field artist)"},
		{"empty track", []byte(goodPrefix + "new3,A,\"\",1\n"), 4, "empty value (field track)"},
		{"empty count", []byte(goodPrefix + "new3,A,T,\n"), 4, "empty value (field count)"},
		{"non-numeric count", []byte(goodPrefix + "new3,A,T,many\n"), 4, `count "many" is not a number (field count)`},
		{"negative count", []byte(goodPrefix + "new3,A,T,-2\n"), 4, `count "-2" is negative (field count)`},
		{"NaN count", []byte(goodPrefix + "new3,A,T,NaN\n"), 4, "not a finite number in REAL range (field count)"},
		{"Inf count", []byte(goodPrefix + "new3,A,T,+Inf\n"), 4, "not a finite number in REAL range (field count)"},
		{"count beyond REAL", []byte(goodPrefix + "new3,A,T,1e39\n"), 4, "REAL range (field count)"},
		{"invalid UTF-8", []byte(goodPrefix + "new3,A\xffB,T,1\n"), 4, "invalid UTF-8 (field artist)"},
		{"NUL byte", []byte(goodPrefix + "new3,A,T\x00,1\n"), 4, "NUL byte (field track)"},
		// The filler is trailing space of a valid row, so no field's own
		// limit speaks first.
		{"row over 64 KiB", []byte(goodPrefix + "new3,A,T,1" + strings.Repeat(" ", store.MaxRowBytes) + "\nnew4,A,T,1\n"), 4, "row is longer than 65536 bytes"},
		{"quoted row over 64 KiB", []byte(goodPrefix + "new3,\"A\n" + long + "\",T,1\n"), 4, "still open at line 5"},
		{"artist over 1024 bytes", []byte(goodPrefix + "new3," + strings.Repeat("a", 3000) + ",T,1\n"), 4, "artist is longer than 1024 bytes (3000 bytes) (field artist)"},
		{"track over 1024 bytes", []byte(goodPrefix + "new3,A," + strings.Repeat("é", 513) + ",1\n"), 4, "track is longer than 1024 bytes (1026 bytes) (field track)"},
		{"bad quote mid-file", []byte(goodPrefix + "new3,A\"B,T,1\nnew4,A,T,1\n"), 4, "malformed CSV"},
		{"unterminated quote at EOF", []byte(goodPrefix + "new3,\"A,T,1\nnew4,A,T,1\n"), 4, "error found at line 5"},
		{"empty file", nil, 1, "missing header (empty input)"},
		{"missing header", []byte("new1,A,T,1\n"), 1, "missing header"},
		{"wrong header", []byte("user_id,artist,song,count\nnew1,A,T,1\n"), 1, "wrong header"},
		{"header with extra column", []byte("user_id,artist,track,count,extra\nnew1,A,T,1,x\n"), 1, "wrong header"},
		{"unreadable gzip", []byte("\x1f\x8bthis is not deflate data at all"), 1, "unreadable gzip stream"},
		{"gzip with corrupt body", append(append([]byte{}, goodGz[:12]...), bytes.Repeat([]byte{0xff}, 40)...), 1, "cannot read input"},
		// Cutting the 8-byte trailer leaves every line readable; the stream
		// ends where line 6 would start.
		{"truncated gzip trailer", goodGz[:len(goodGz)-8], 6, "input is truncated"},
	}
	db := pgtest.DB(t)
	if _, err := importBytes(t, db, "seed.csv", []byte(smallCSV), false); err != nil {
		t.Fatal(err)
	}
	before := dump(t, db)
	for _, tt := range tests {
		for _, skip := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/skip=%v", tt.name, skip), func(t *testing.T) {
				// Row-level: a field's problem, or quoting, which spoils
				// only the rows the quote spans.
				rowLevel := strings.Contains(tt.substr, "(field ") || strings.Contains(tt.substr, "fields") ||
					strings.Contains(tt.substr, "malformed CSV") || strings.Contains(tt.substr, "error found at line")
				if skip && rowLevel {
					// A row-level problem: skipped, the rest imported
					// (into a database of its own, to keep the seed intact).
					db := pgtest.DB(t)
					sum, err := importBytes(t, db, "bad.csv", tt.data, skip)
					if err != nil {
						t.Fatalf("SkipInvalid: %v", err)
					}
					if sum.Skipped != 1 || len(sum.SkippedRows) != 1 || sum.SkippedRows[0].Line != tt.line ||
						!strings.Contains(sum.SkippedRows[0].Error(), tt.substr) {
						t.Errorf("SkipInvalid summary: skipped %d %v, want 1 at line %d: %s", sum.Skipped, sum.SkippedRows, tt.line, tt.substr)
					}
					// A bare quote spoils its own row only; the next is kept.
					kept := map[string]string{"bad quote mid-file": "new4,A,T,1\n"}[tt.name]
					assertStored(t, db, expect(t, strings.NewReader(goodPrefix+kept)))
					return
				}
				sum, err := importBytes(t, db, "bad.csv", tt.data, skip)
				if err == nil {
					t.Fatalf("import succeeded: %+v", sum)
				}
				prefix := fmt.Sprintf("bad.csv:%d: ", tt.line)
				if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tt.substr) {
					t.Errorf("error %q\nwant prefix %q and %q", err, prefix, tt.substr)
				}
				if !errors.Is(err, setlist.ErrInvalid) {
					t.Errorf("error %v does not match setlist.ErrInvalid", err)
				}
				if after := dump(t, db); after != before {
					t.Errorf("a failed import changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
				}
			})
		}
	}
}

// TestImportSkipInvalidMany checks the summary keeps the count of every
// skipped row but lists only the first ten line numbers.
func TestImportSkipInvalidMany(t *testing.T) {
	var good, all strings.Builder
	good.WriteString("user_id,artist,track,count\n")
	all.WriteString("user_id,artist,track,count\n")
	var badLines []int
	for i := 0; i < 40; i++ {
		line := i + 2
		if i%3 == 1 {
			fmt.Fprintf(&all, "u%d,A%d,T,-%d\n", i, i, i)
			badLines = append(badLines, line)
			continue
		}
		row := fmt.Sprintf("u%d,A%d,T,%d\n", i%7, i%5, i)
		all.WriteString(row)
		good.WriteString(row)
	}
	db := pgtest.DB(t)
	sum, err := importBytes(t, db, "mixed.csv", []byte(all.String()), true)
	if err != nil {
		t.Fatal(err)
	}
	assertStored(t, db, expect(t, strings.NewReader(good.String())))
	var listed []int
	for _, e := range sum.SkippedRows {
		listed = append(listed, e.Line)
		if !strings.Contains(e.Error(), "negative") {
			t.Errorf("skipped row reason %q, want negative count", e)
		}
	}
	if sum.Skipped != int64(len(badLines)) || !slices.Equal(listed, badLines[:10]) {
		t.Errorf("skipped %d, listed %v; want %d, listed %v", sum.Skipped, listed, len(badLines), badLines[:10])
	}
}

// TestImportBulkRebuildsIndexes: an import at least as large as the stored
// reactions drops reactions' secondary indexes and builds them again in the
// same transaction (issue 27); afterwards the indexes are exactly the
// migrated ones and valid, the one-opinion rule still holds, and a smaller
// import keeps the indexes and updates them row by row.
func TestImportBulkRebuildsIndexes(t *testing.T) {
	ctx := context.Background()
	db := pgtest.DB(t)
	indexes := func() string {
		t.Helper()
		var defs string
		err := db.Pool.QueryRow(ctx, `SELECT string_agg(pg_get_indexdef(i.indexrelid) || ' valid=' || i.indisvalid, E'\n' ORDER BY c.relname)
			FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = 'reactions'::regclass`).Scan(&defs)
		if err != nil {
			t.Fatal(err)
		}
		return defs
	}
	migrated := indexes()
	if !strings.Contains(migrated, "reactions_one_opinion") || !strings.Contains(migrated, "reactions_foldin_order") {
		t.Fatalf("the migrated indexes are not what this test expects:\n%s", migrated)
	}
	if empty, err := importBytes(t, db, "empty.csv", []byte("user_id,artist,track,count\n"), false); err != nil || empty.RebuiltIndexes != 0 {
		t.Errorf("a header-only import: %+v, %v; want nothing done, no index rebuilt", empty, err)
	}
	sum, err := importBytes(t, db, "small.csv", []byte(smallCSV), false)
	if err != nil {
		t.Fatal(err)
	}
	if sum.RebuiltIndexes == 0 {
		t.Errorf("first import into an empty table kept its indexes: %+v", sum)
	}
	if got := indexes(); got != migrated {
		t.Errorf("indexes after the bulk load:\n%s\nwant:\n%s", got, migrated)
	}
	assertStored(t, db, expect(t, strings.NewReader(smallCSV)))

	// The rebuilt partial unique index still refuses a second opinion.
	var user, song int64
	if err := db.Pool.QueryRow(ctx, `SELECT user_id, song_id FROM reactions LIMIT 1`).Scan(&user, &song); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO reactions (user_id, song_id, kind) VALUES ($1, $2, 'like'), ($1, $2, 'dislike')`, user, song); err == nil ||
		!strings.Contains(err.Error(), "reactions_one_opinion") {
		t.Errorf("like and dislike of one song: %v, want a reactions_one_opinion violation", err)
	}

	small, err := importBytes(t, db, "one.csv", []byte("user_id,artist,track,count\nu1,Adele,Hello,9\n"), false)
	if err != nil {
		t.Fatal(err)
	}
	if small.RebuiltIndexes != 0 || small.Reactions.Updated != 1 {
		t.Errorf("a one-row import into a larger table: %+v, want indexes kept and 1 updated", small)
	}
}

// TestImportBulkOverStored: an import that writes at least as many
// reactions as are stored, into a table that is not empty, is a bulk load
// that updates the changed weights, inserts the new plays, leaves the
// unchanged ones and other kinds alone (timestamps included), and puts back
// exactly the migrated indexes, the one-opinion rule included.
func TestImportBulkOverStored(t *testing.T) {
	ctx := context.Background()
	db := pgtest.DB(t)
	const seed = "user_id,artist,track,count\nu1,A,Same,3\nu1,A,Changed,1\nu2,B,Kept,2\n"
	if _, err := importBytes(t, db, "seed.csv", []byte(seed), false); err != nil {
		t.Fatal(err)
	}
	// A like on a song the next file plays: a row of another kind that
	// the bulk load must keep, and that the rebuilt one-opinion index
	// must still see.
	if _, err := db.Pool.Exec(ctx, `INSERT INTO reactions (user_id, song_id, kind, created_at, updated_at)
		SELECT u.id, s.id, 'like', now() - interval '1 day', now() - interval '1 day'
		FROM users u, songs s WHERE u.external_id = 'u1' AND s.track = 'Same'`); err != nil {
		t.Fatal(err)
	}
	const likes = "SELECT count(*) FROM reactions WHERE kind = 'like' AND updated_at < now() - interval '1 hour'"
	indexes := func() string {
		t.Helper()
		var defs string
		if err := db.Pool.QueryRow(ctx, `SELECT string_agg(pg_get_indexdef(i.indexrelid) || ' valid=' || i.indisvalid, E'\n' ORDER BY c.relname)
			FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = 'reactions'::regclass`).Scan(&defs); err != nil {
			t.Fatal(err)
		}
		return defs
	}
	migrated := indexes()
	stamp := func(track string) time.Time {
		t.Helper()
		var at time.Time
		if err := db.Pool.QueryRow(ctx, `SELECT r.updated_at FROM reactions r JOIN songs s ON s.id = r.song_id
			WHERE s.track = $1 AND r.kind = 'play'`, track).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at
	}
	same, kept := stamp("Same"), stamp("Kept")

	var file strings.Builder
	file.WriteString("user_id,artist,track,count\nu1,A,Same,3\nu1,A,Changed,5\n")
	for i := range 6 {
		fmt.Fprintf(&file, "n%d,C,New %d,%d\n", i%2, i, i+1)
	}
	sum, err := importBytes(t, db, "bulk.csv", []byte(file.String()), false)
	if err != nil {
		t.Fatal(err)
	}
	if r := sum.Reactions; r.Inserted != 6 || r.Updated != 1 || r.Unchanged != 1 || sum.RebuiltIndexes == 0 {
		t.Errorf("bulk import summary %+v, %d indexes rebuilt; want 6 inserted, 1 updated, 1 unchanged, indexes rebuilt", r, sum.RebuiltIndexes)
	}
	want := expect(t, strings.NewReader(seed))
	for p, w := range expect(t, strings.NewReader(file.String())).plays {
		want.plays[p] = w
		want.users[p.user] = true
		want.songs[p.artist+"\x00"+p.track] = true
	}
	// stored() reads every reaction as a play: leave the like out of it.
	var n int
	if err := db.Pool.QueryRow(ctx, likes).Scan(&n); err != nil || n != 1 {
		t.Fatalf("likes older than an hour: %d, %v; want the one made before the import", n, err)
	}
	if _, err := db.Pool.Exec(ctx, "DELETE FROM reactions WHERE kind = 'like'"); err != nil {
		t.Fatal(err)
	}
	assertStored(t, db, want)
	if got := stamp("Same"); !got.Equal(same) {
		t.Errorf("unchanged play's updated_at moved: %v, was %v", got, same)
	}
	if got := stamp("Kept"); !got.Equal(kept) {
		t.Errorf("a play absent from the file changed: updated_at %v, was %v", got, kept)
	}
	if got := stamp("Changed"); !got.After(same) {
		t.Errorf("changed play's updated_at %v did not move past %v", got, same)
	}
	if got := indexes(); got != migrated {
		t.Errorf("indexes after the bulk load:\n%s\nwant:\n%s", got, migrated)
	}
}

// TestImportStaging: however the file's rows are staged (a user's rows
// together or not, repeated songs within a user's rows, dictionaries and
// runs that fill up and start afresh), the stored reactions and the
// summary are what the file says, and a re-import changes nothing.
func TestImportStaging(t *testing.T) {
	var interleaved, grouped strings.Builder
	interleaved.WriteString("user_id,artist,track,count\n")
	for i := range 40 {
		// Users and songs interleave, and every (user, song) comes back
		// later to be summed.
		fmt.Fprintf(&interleaved, "u%d,A%d,T,%d\n", i%5, i%7, i)
	}
	grouped.WriteString("user_id,artist,track,count\n")
	for u := range 4 {
		for i := range 9 {
			// Each user's rows together, a song repeated within them.
			fmt.Fprintf(&grouped, "u%d,A%d,T,%d\n", u, i%4, i+u)
		}
	}
	tests := []struct {
		name        string
		file        string
		keys, songs int // stage bounds; 0 keeps the default
	}{
		{"grouped", grouped.String(), 0, 0},
		{"grouped, a run fills up", grouped.String(), 0, 2},
		{"grouped, dictionaries fill up", grouped.String(), 2, 0},
		{"interleaved", interleaved.String(), 0, 0},
		{"interleaved, dictionaries fill up", interleaved.String(), 2, 0},
		{"interleaved, both fill up", interleaved.String(), 2, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.keys > 0 || tt.songs > 0 {
				keys, songs := tt.keys, tt.songs
				if keys == 0 {
					keys = 1 << 18
				}
				if songs == 0 {
					songs = 1 << 16
				}
				defer postgres.SetStageBounds(keys, songs)()
			}
			want := expect(t, strings.NewReader(tt.file))
			db := pgtest.DB(t)
			sum, err := importBytes(t, db, "stage.csv", []byte(tt.file), false)
			if err != nil {
				t.Fatal(err)
			}
			assertStored(t, db, want)
			if sum.Users.Inserted != int64(len(want.users)) || sum.Users.Unchanged != 0 || sum.Songs.Inserted != int64(len(want.songs)) ||
				sum.Songs.Unchanged != 0 || sum.Reactions.Inserted != int64(len(want.plays)) || sum.Reactions.Unchanged != 0 {
				t.Errorf("summary %+v; want %d users, %d songs, %d reactions inserted", sum, len(want.users), len(want.songs), len(want.plays))
			}
			again, err := importBytes(t, db, "stage.csv", []byte(tt.file), false)
			if err != nil {
				t.Fatal(err)
			}
			if again.Users.Unchanged != int64(len(want.users)) || again.Songs.Unchanged != int64(len(want.songs)) ||
				again.Reactions.Unchanged != int64(len(want.plays)) || again.Reactions.Inserted+again.Reactions.Updated != 0 {
				t.Errorf("re-import summary %+v; want all %d users, %d songs and %d reactions unchanged",
					again, len(want.users), len(want.songs), len(want.plays))
			}
		})
	}
}
