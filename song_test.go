package setlist_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/setlist/setlist"
)

// TestCatalogRules is the catalog's validation rules as a table: tags,
// external ids, release days and names.
func TestCatalogRules(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	day := func(s string) *setlist.Date {
		d, err := setlist.ParseDate(s)
		if err != nil {
			t.Fatal(err)
		}
		return &d
	}
	for _, tc := range []struct {
		name     string
		song     setlist.NewSong
		wantTags string // normalised tags, when valid
		wantErr  string // a fragment of the error, "" when valid
	}{
		{"minimal", setlist.NewSong{Artist: "A", Track: "T"}, "[]", ""},
		{"tags lowercased, deduplicated, sorted", setlist.NewSong{Artist: "A", Track: "T", Tags: []string{" Rock", "explicit", "rock"}}, "[explicit rock]", ""},
		{"inner punctuation", setlist.NewSong{Artist: "A", Track: "T", Tags: []string{"hip-hop", "r&b", "lo_fi", "2.0", "k+pop"}}, "[2.0 hip-hop k+pop lo_fi r&b]", ""},
		{"tag with a space", setlist.NewSong{Artist: "A", Track: "T", Tags: []string{"hip hop"}}, "", "tags[0]"},
		{"tag starting with -", setlist.NewSong{Artist: "A", Track: "T", Tags: []string{"-rock"}}, "", "tags[0]"},
		{"empty tag", setlist.NewSong{Artist: "A", Track: "T", Tags: []string{"rock", " "}}, "", "tags[1]"},
		{"non-ASCII tag", setlist.NewSong{Artist: "A", Track: "T", Tags: []string{"café"}}, "", "tags[0]"},
		{"longest tag", setlist.NewSong{Artist: "A", Track: "T", Tags: []string{strings.Repeat("a", 32)}}, "[" + strings.Repeat("a", 32) + "]", ""},
		{"tag too long", setlist.NewSong{Artist: "A", Track: "T", Tags: []string{strings.Repeat("a", 33)}}, "", "1 to 32 bytes"},
		{"too many tags", setlist.NewSong{Artist: "A", Track: "T", Tags: strings.Fields("a b c d e f g h i j k l m n o p q")}, "", "at most 16"},
		{"16 tags", setlist.NewSong{Artist: "A", Track: "T", Tags: strings.Fields("a b c d e f g h i j k l m n o p")}, "[a b c d e f g h i j k l m n o p]", ""},
		{"ISRC", setlist.NewSong{Artist: "A", Track: "T", ExternalID: "USRC17607839"}, "[]", ""},
		{"external id with a space", setlist.NewSong{Artist: "A", Track: "T", ExternalID: "US RC"}, "", "external_id"},
		{"external id non-ASCII", setlist.NewSong{Artist: "A", Track: "T", ExternalID: "é"}, "", "external_id"},
		{"external id too long", setlist.NewSong{Artist: "A", Track: "T", ExternalID: strings.Repeat("x", 65)}, "", "longer than 64"},
		{"released", setlist.NewSong{Artist: "A", Track: "T", Released: day("1999-12-31")}, "[]", ""},
		{"released a year ahead", setlist.NewSong{Artist: "A", Track: "T", Released: day("2027-12-04")}, "[]", ""},
		{"released too far ahead", setlist.NewSong{Artist: "A", Track: "T", Released: day("2027-12-05")}, "", "released"},
		{"released before 1900", setlist.NewSong{Artist: "A", Track: "T", Released: day("1899-12-31")}, "", "released"},
		{"no artist", setlist.NewSong{Artist: "  ", Track: "T"}, "", "artist is required"},
		{"no track", setlist.NewSong{Artist: "A"}, "", "track is required"},
		{"NUL in track", setlist.NewSong{Artist: "A", Track: "T\x00"}, "", "track must be valid"},
		{"artist too long", setlist.NewSong{Artist: strings.Repeat("a", 1025), Track: "T"}, "", "artist is longer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := tc.song.Normalize(now)
			if tc.wantErr != "" {
				if err == nil || !errors.Is(err, setlist.ErrInvalid) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("err = %v, want ErrInvalid containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(n.Tags); got != tc.wantTags || n.Available == nil || !*n.Available {
				t.Errorf("tags %s available %v, want tags %s, available", got, n.Available, tc.wantTags)
			}
		})
	}
}

func TestParseDate(t *testing.T) {
	for in, ok := range map[string]bool{"2026-01-02": true, "2026-1-2": false, "2026-02-30": false, "": false, "2026-01-02T00:00:00Z": false} {
		d, err := setlist.ParseDate(in)
		if (err == nil) != ok || (ok && d.String() != in) {
			t.Errorf("ParseDate(%q) = %v, %v", in, d, err)
		}
	}
	var d setlist.Date
	if err := d.UnmarshalJSON([]byte(`"2026-03-04"`)); err != nil || d.String() != "2026-03-04" {
		t.Errorf("UnmarshalJSON = %v, %v", d, err)
	}
	if b, _ := d.MarshalJSON(); string(b) != `"2026-03-04"` {
		t.Errorf("MarshalJSON = %s", b)
	}
}
