package store

import (
	"encoding/base64"
	"errors"
	"testing"

	"github.com/setlist/setlist"
)

// TestDecodeCursor: a cursor this server did not issue is ErrInvalid (400),
// including one whose id holds a NUL or invalid UTF-8, which reached
// PostgreSQL and answered 500 (issue 24 item 10).
func TestDecodeCursor(t *testing.T) {
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, c := range []struct {
		cursor string
		rank   int
		after  string
	}{
		{"", 0, ""},
		{EncodeCursor(1, "alice"), 1, "alice"},
		{b64("0:bob"), 0, "bob"},
	} {
		rank, after, err := DecodeCursor(c.cursor)
		if err != nil || rank != c.rank || after != c.after {
			t.Errorf("%q: %d %q %v", c.cursor, rank, after, err)
		}
	}
	for _, bad := range []string{"\x00", "%00", b64("0:a\x00b"), b64("1:\xff\xfe"), b64("0:\x00"), b64("2:a"), b64("0:"), b64("x:a"), "!!"} {
		if _, _, err := DecodeCursor(bad); !errors.Is(err, setlist.ErrInvalid) {
			t.Errorf("%q: %v, want ErrInvalid", bad, err)
		}
	}
}
