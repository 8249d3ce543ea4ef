package store_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/store"
)

// errAt is the shape every import error must have: SOURCE:LINE: problem.
var errAt = regexp.MustCompile(`^fuzz:[1-9][0-9]*: \S`)

type parsed struct {
	rows [][4]any
	err  error
}

// parseAll runs the parser to the end, checking each accepted row.
func parseAll(t *testing.T, data []byte, skip bool) parsed {
	t.Helper()
	rows, err := store.NewRows(bytes.NewReader(data), store.ImportOptions{Source: "fuzz", SkipInvalid: skip})
	if err != nil {
		return parsed{err: err}
	}
	var out parsed
	for rows.Next() {
		v, err := rows.Values()
		if err != nil || len(v) != 4 {
			t.Fatalf("Values() = %v, %v", v, err)
		}
		for i, name := range []string{"user_id", "artist", "track"} {
			s, ok := v[i].(string)
			switch {
			case !ok:
				t.Fatalf("%s is %T, want string", name, v[i])
			case s == "" || s != strings.TrimSpace(s):
				t.Fatalf("%s %q accepted empty or untrimmed", name, s)
			case !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0:
				t.Fatalf("%s %q accepted with invalid UTF-8 or NUL (PostgreSQL would fail the whole COPY)", name, s)
			}
		}
		c, ok := v[3].(float64)
		if !ok || math.IsNaN(c) || math.IsInf(c, 0) || c < 0 || c > math.MaxFloat32 {
			t.Fatalf("count %v (%T) accepted; want a finite, non-negative float64 in REAL range", v[3], v[3])
		}
		out.rows = append(out.rows, [4]any{v[0], v[1], v[2], v[3]})
		if len(out.rows) > len(data) {
			t.Fatalf("%d rows from %d bytes", len(out.rows), len(data))
		}
	}
	out.err = rows.Err()
	accepted, skipped, listed := rows.Counts()
	if accepted != int64(len(out.rows)) {
		t.Fatalf("Counts() accepted %d, but %d rows came out", accepted, len(out.rows))
	}
	if !skip && skipped != 0 {
		t.Fatalf("skipped %d rows without SkipInvalid", skipped)
	}
	for _, e := range listed {
		checkInputError(t, e)
	}
	return out
}

func checkInputError(t *testing.T, err error) {
	t.Helper()
	var ie *store.InputError
	if !errors.As(err, &ie) {
		t.Fatalf("error %v (%T) is not an *InputError", err, err)
	}
	if !errors.Is(err, setlist.ErrInvalid) {
		t.Fatalf("error %v does not match setlist.ErrInvalid", err)
	}
	if !errAt.MatchString(err.Error()) || ie.Line < 1 {
		t.Fatalf("error %q does not start with fuzz:LINE:", err)
	}
	if !utf8.ValidString(err.Error()) {
		t.Fatalf("error text %q is not valid UTF-8", err)
	}
}

// FuzzParseImport feeds the CSV import parser arbitrary bytes (plain or
// gzipped): it must not panic, and must end in rows that PostgreSQL can hold
// or one FILE:LINE error. Without SkipInvalid any row error stops the import
// (Import then rolls back, so nothing is written); with it, the same input
// yields the same good rows plus skips, unless the error breaks the framing.
func FuzzParseImport(f *testing.F) {
	for _, s := range []string{
		"user_id,artist,track\nana,Queen,Bohemian Rhapsody\n",
		"user_id,artist,track,count\nana,Queen,Bohemian Rhapsody,3\nbo,Muse,Uprising,0.5\n",
		"\ufeffUSER_ID , Artist,TRACK\r\nana,\"Queen, the band\",\"Line\nbreak\"\r\n",
		"user_id,artist,track,count\nana,Queen,X,NaN\n",
		"user_id,artist,track,count\nana,Queen,X,1e39\n",
		"user_id,artist,track,count\nana,Queen,X,-1\n",
		"user_id,artist,track\nana,Queen\n",
		"user_id,artist,track\nana,\"Queen,X\n",
		"user_id,artist,track\nana,Que\"en,X\n",
		"user_id,artist,track\nana,\x00,X\n",
		"user_id,artist,track\nana,\xff\xfe,X\n",
		"user_id,artist,track\n'; DROP TABLE users; --,100%_\\,\u202eRTL\u200d\U0001F3B8e\u0301\n",
		"user_id,artist,track\n ,x,y\n",
		"artist,track\n",
		"",
		"\x1f\x8b",
		"user_id,artist,track\n\"" + strings.Repeat("x", store.MaxRowBytes+10) + "\n",
	} {
		f.Add([]byte(s), false)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	fmt.Fprint(zw, "user_id,artist,track\nana,Queen,X\n")
	zw.Close()
	f.Add(gz.Bytes(), false)
	f.Add(gz.Bytes()[:gz.Len()-5], false) // truncated stream

	f.Fuzz(func(t *testing.T, data []byte, _ bool) {
		// A parse that hangs is a bug too: fail loudly (a panic from
		// another goroutine makes the fuzzer record the input).
		hung := time.AfterFunc(10*time.Second, func() { panic(fmt.Sprintf("parse of %d bytes still running after 10s", len(data))) })
		defer hung.Stop()
		strict := parseAll(t, data, false)
		if strict.err != nil {
			checkInputError(t, strict.err)
		}
		lenient := parseAll(t, data, true)
		if lenient.err != nil {
			checkInputError(t, lenient.err)
		}
		// Skipping never drops a row the strict parse accepted, and a clean
		// strict parse is the lenient one.
		if len(lenient.rows) < len(strict.rows) {
			t.Fatalf("lenient parse accepted %d rows, strict %d", len(lenient.rows), len(strict.rows))
		}
		for i, r := range strict.rows {
			if lenient.rows[i] != r {
				t.Fatalf("row %d: strict %v, lenient %v", i, r, lenient.rows[i])
			}
		}
		if strict.err == nil && (lenient.err != nil || len(lenient.rows) != len(strict.rows)) {
			t.Fatalf("clean input parsed differently with SkipInvalid: %d rows / %v vs %d rows", len(lenient.rows), lenient.err, len(strict.rows))
		}
	})
}
