package setlist

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// TestParseUserIDASCII checks ParseUserID's printable-ASCII fast path gives
// exactly what the full path gives (id and error text): every single
// character and its neighbours outside the range, the boundary lengths and the outer spaces, and random strings
// over the whole printable range.
func TestParseUserIDASCII(t *testing.T) {
	var cases []string
	// The bytes just outside the range too: they must take the full path.
	for c := byte(0x1f); c <= 0x7f; c++ {
		cases = append(cases, string(c), "a"+string(c), string(c)+"a", "a"+string(c)+"b")
	}
	cases = append(cases, strings.Repeat("a", MaxUserIDLen), strings.Repeat("a", MaxUserIDLen+1),
		" "+strings.Repeat("a", MaxUserIDLen-1), "a b", " ", "  ", "ana_01.b-c")
	rng := rand.New(rand.NewPCG(27, 1))
	for range 20000 {
		b := make([]byte, 1+rng.IntN(MaxUserIDLen+8))
		for i := range b {
			b[i] = byte(0x20 + rng.IntN(0x7f-0x20))
		}
		cases = append(cases, string(b))
	}
	for _, s := range cases {
		got, gotErr := ParseUserID(s)
		want, wantErr := parseUserIDFull(s)

		if got != want || errText(gotErr) != errText(wantErr) {
			t.Errorf("ParseUserID(%q) = %q, %v; the full rule says %q, %v", s, got, gotErr, want, wantErr)
		}
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
