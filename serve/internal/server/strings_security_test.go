package server_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/store"
)

// oddStrings are hostile or unusual texts every string field must store and
// return byte for byte, never executing or reinterpreting them.
var oddStrings = []struct{ name, s string }{
	{"quotes", `O'Brien "the" ` + "`x`"},
	{"sql-injection", `'; DROP TABLE users; --`},
	{"sql-injection-2", `x" OR 1=1; DELETE FROM songs; --`},
	{"like-wildcards", `100%_off`},
	{"backslashes", `C:\new\%\_\\`},
	{"rtl-override", "abc\u202eevil\u202c"},
	{"zero-width-joiner", "👨\u200d👩\u200d👧 family"},
	{"emoji", "🎸🔥 tune"},
	{"combining", "cafe\u0301 e\u0301\u0308"},
	{"cjk", "日本語の曲"},
	{"html", `<script>alert(1)</script>&amp;`},
	{"inner-spaces", "a   b  c"},
	// Over the display name's and the id's limits, within the song names'
	// (setlist.MaxSongNameLen, 1 KiB: the import refuses more at its line).
	{"long-1k", strings.Repeat("ab🎸", 160)}, // 960 bytes
}

// songName is s cut, at a character boundary, to what a song's artist
// and track may hold with " (track)" appended: a longer name is refused
// with its limit (setlist.MaxSongNameLen), which the import's own tests check.
func songName(s string) string {
	limit := setlist.MaxSongNameLen - len(" (track)")
	if len(s) <= limit {
		return s
	}
	for !utf8.RuneStart(s[limit]) {
		limit--
	}
	return s[:limit]
}

// TestOddStringsRoundTrip sends every odd string through every string field
// of the API and the import, and checks that each comes back byte-equal,
// that nothing was executed (the tables are intact) and that limits are
// explicit 400s naming the limit.
func TestOddStringsRoundTrip(t *testing.T) {
	w := newWorld(t)
	in := w.start(t, fastConfig(), nil)
	in.waitModel(t, 1)
	ctx := context.Background()

	// Songs only enter through the import: one song per odd string, by an
	// importer who plays each.
	var buf bytes.Buffer
	cw := csv.NewWriter(&buf)
	_ = cw.Write([]string{"user_id", "artist", "track"})
	for _, o := range oddStrings {
		_ = cw.Write([]string{"importer", songName(o.s), songName(o.s) + " (track)"})
	}
	cw.Flush()
	if _, err := w.db.Import(ctx, &buf, store.ImportOptions{Source: "odd.csv"}); err != nil {
		t.Fatalf("import of odd strings: %v", err)
	}

	for _, o := range oddStrings {
		t.Run(o.name, func(t *testing.T) {
			// display_name: bounded at 200 bytes, an explicit 400 beyond.
			name := o.s
			if len(name) > setlist.MaxDisplayNameLen {
				r := in.do(t, http.MethodPost, "/v1/users", map[string]any{"user_id": "long-name", "display_name": name})
				wantStatus(t, r, http.StatusBadRequest)
				if !strings.Contains(string(r.body), "display_name") || !strings.Contains(string(r.body), "200") {
					t.Fatalf("over-long display_name: %s does not name the field and its limit", r.body)
				}
				name = name[:0]
			}
			// display_name never holds a bidirectional control or a
			// control character (issue 24 item 9): a 400 naming the field
			// and the character.
			if err := setlist.ValidateDisplayName(name); err != nil {
				r := in.do(t, http.MethodPost, "/v1/users", map[string]any{"user_id": "bad-name", "display_name": name})
				wantStatus(t, r, http.StatusBadRequest)
				if !strings.Contains(string(r.body), "display_name") || !strings.Contains(string(r.body), "U+") {
					t.Fatalf("display_name %q: %s does not name the field and the character", name, r.body)
				}
				name = ""
			}
			// user_id: bounded at 128 bytes.
			id := o.s
			if len(id) > setlist.MaxUserIDLen {
				r := in.do(t, http.MethodPost, "/v1/users", map[string]any{"user_id": id})
				wantStatus(t, r, http.StatusBadRequest)
				if !strings.Contains(string(r.body), "user_id") || !strings.Contains(string(r.body), "128") {
					t.Fatalf("over-long user_id: %s does not name the field and its limit", r.body)
				}
				id = "long-" + o.name
			}
			// user_id also obeys the id rule (issue 18 item 10): invisible
			// characters are refused naming the field, another normal form
			// is stored as NFC and found by either spelling.
			stored, err := setlist.ParseUserID(id)
			if err != nil {
				r := in.do(t, http.MethodPost, "/v1/users", map[string]any{"user_id": id})
				wantStatus(t, r, http.StatusBadRequest)
				if !strings.Contains(string(r.body), "user_id") || !strings.Contains(string(r.body), "U+") {
					t.Fatalf("user_id %q: %s does not name the field and the character", id, r.body)
				}
				id, stored = "odd-"+o.name, setlist.UserID("odd-"+o.name)
			}
			r := in.do(t, http.MethodPost, "/v1/users", map[string]any{"user_id": id, "display_name": name,
				"likes": []map[string]string{{"artist": songName(o.s), "track": songName(o.s) + " (track)"}}})
			wantStatus(t, r, http.StatusCreated)
			if loc := r.header.Get("Location"); loc != "/v1/users/"+url.PathEscape(string(stored)) {
				t.Fatalf("Location %q, want the escaped id", loc)
			}
			var u setlist.User
			in.get(t, "/v1/users/"+url.PathEscape(id)).json(t, &u)
			if u.ID != stored || u.DisplayName != name {
				t.Fatalf("user read back as %q / %q, want %q / %q", u.ID, u.DisplayName, stored, name)
			}

			// artist and track: the import stored them verbatim; the API
			// finds the song by them and returns them unchanged.
			r = in.do(t, http.MethodPost, "/v1/users/"+url.PathEscape(id)+"/reactions",
				map[string]any{"artist": songName(o.s), "track": songName(o.s) + " (track)", "kind": "play"})
			wantStatus(t, r, http.StatusCreated)
			var list struct {
				Reactions []store.ReactedSong `json:"reactions"`
			}
			in.get(t, "/v1/users/"+url.PathEscape(id)+"/reactions").json(t, &list)
			found := 0
			for _, rs := range list.Reactions {
				if rs.Song.Artist == songName(o.s) && rs.Song.Track == songName(o.s)+" (track)" {
					found++
				}
			}
			if found != 2 { // the like at sign-up and the play
				t.Fatalf("reactions %+v: want the like and the play of the song with artist %q verbatim", list.Reactions, songName(o.s))
			}

			// Search: up to 200 bytes, matching literally; longer is a 400
			// naming the limit.
			q := o.s
			if len(q) > 200 {
				for _, p := range []string{"/v1/songs", "/v1/users"} {
					r := in.get(t, p+"?query="+url.QueryEscape(q[:400]))
					wantStatus(t, r, http.StatusBadRequest)
					if !strings.Contains(string(r.body), "200 bytes") {
						t.Fatalf("over-long query: %s does not name the limit", r.body)
					}
					// A URL beyond the server's header buffer (4 KiB) is
					// refused before routing, still with a JSON error.
					wantStatus(t, in.get(t, p+"?query="+url.QueryEscape(strings.Repeat(q, 3))), http.StatusRequestHeaderFieldsTooLarge)
				}
				return
			}
			var songs struct{ Songs []setlist.Song }
			in.get(t, "/v1/songs?limit=100&query="+url.QueryEscape(q)).json(t, &songs)
			if !containsSong(songs.Songs, songName(o.s)) {
				t.Fatalf("song search for %q: %+v does not contain it verbatim", q, songs.Songs)
			}
			var users struct{ Users []setlist.User }
			in.get(t, "/v1/users?limit=100&query="+url.QueryEscape(string(stored))).json(t, &users)
			if !containsUser(users.Users, string(stored)) {
				t.Fatalf("user search for %q: %+v does not contain it", id, users.Users)
			}
		})
	}

	t.Run("NUL", func(t *testing.T) {
		// PostgreSQL text cannot hold NUL: every field rejects it with a
		// 400 naming the field, before any write.
		for _, c := range []struct {
			path       string
			body       any
			field, why string
		}{
			{"/v1/users", map[string]any{"user_id": "nul\x00id"}, "user_id", "U+0000"},
			{"/v1/users", map[string]any{"user_id": "nul-name", "display_name": "a\x00b"}, "display_name", "NUL"},
			{"/v1/users", map[string]any{"user_id": "nul-like", "likes": []map[string]string{{"artist": "a\x00", "track": "b"}}}, "likes[0]", "NUL"},
			{"/v1/users/folder/reactions", map[string]any{"artist": "a", "track": "b\x00", "kind": "like"}, "track", "NUL"},
		} {
			r := in.do(t, http.MethodPost, c.path, c.body)
			wantStatus(t, r, http.StatusBadRequest)
			if !strings.Contains(string(r.body), c.field) || !strings.Contains(string(r.body), c.why) {
				t.Fatalf("POST %s %v: %s does not name %s and %q", c.path, c.body, r.body, c.field, c.why)
			}
		}
		wantStatus(t, in.get(t, "/v1/users/nul-name"), http.StatusNotFound)
		for _, p := range []string{"/v1/songs?query=a%00b", "/v1/users?query=a%00b", "/v1/users?query=%00", "/v1/users/a%00b"} {
			wantStatus(t, in.get(t, p), http.StatusBadRequest)
		}
		// The import names the line.
		_, err := w.db.Import(ctx, strings.NewReader("user_id,artist,track\nx,a,b\ny,a\x00,b\n"), store.ImportOptions{Source: "nul.csv"})
		if err == nil || !strings.HasPrefix(err.Error(), "nul.csv:3:") || !strings.Contains(err.Error(), "NUL") {
			t.Fatalf("import with a NUL: %v, want nul.csv:3: … NUL", err)
		}
	})

	t.Run("TablesIntact", func(t *testing.T) {
		for _, table := range []string{"users", "songs", "reactions", "model_runs"} {
			var n int
			if err := w.db.Pool.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
				t.Fatalf("table %s: %v", table, err)
			}
			if n == 0 && table != "model_runs" {
				t.Fatalf("table %s is empty", table)
			}
		}
		var songs int
		_ = w.db.Pool.QueryRow(ctx, "SELECT count(*) FROM songs").Scan(&songs)
		if want := 60 + len(oddStrings); songs != want {
			t.Fatalf("%d songs, want %d: something was deleted or duplicated", songs, want)
		}
	})
}

func containsSong(songs []setlist.Song, artist string) bool {
	for _, s := range songs {
		if s.Artist == artist && s.Track == artist+" (track)" {
			return true
		}
	}
	return false
}

func containsUser(users []setlist.User, id string) bool {
	for _, u := range users {
		if string(u.ID) == id {
			return true
		}
	}
	return false
}

// TestSearchWildcardsAreLiteral checks LIKE escaping: % and _ and \ in a
// query match those characters only, in song and user search, on both the
// short (prefix) and long (trigram) paths.
func TestSearchWildcardsAreLiteral(t *testing.T) {
	w := newWorld(t)
	in := w.start(t, fastConfig(), nil)
	in.waitModel(t, 1)
	ctx := context.Background()
	csvText := "user_id,artist,track\n" +
		"wild,Pct,zq100%off\n" + "wild,Pct,zq1000off\n" +
		"wild,Und,zq_zq\n" + "wild,Und,zqxzq\n" +
		"wild,Bsl,zq\\zq\n" + "wild,Bsl,zqzq\n"
	if _, err := w.db.Import(ctx, strings.NewReader(csvText), store.ImportOptions{Source: "wild.csv"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"pct100%x", "pct1000x", "usr_ab", "usrxab", "%lead", "_lead", "xlead"} {
		wantStatus(t, in.do(t, http.MethodPost, "/v1/users", map[string]any{"user_id": id}), http.StatusCreated)
	}
	for _, c := range []struct{ query, want string }{
		{"zq100%", "zq100%off"},
		{"zq_zq", "zq_zq"},
		{`zq\zq`, `zq\zq`},
		{"100%off", "zq100%off"},
	} {
		var got struct{ Songs []setlist.Song }
		in.get(t, "/v1/songs?query="+url.QueryEscape(c.query)).json(t, &got)
		if len(got.Songs) != 1 || got.Songs[0].Track != c.want {
			t.Errorf("song search %q: %+v, want only %q", c.query, got.Songs, c.want)
		}
	}
	for _, c := range []struct {
		query string
		want  []string
	}{
		{"pct100%", []string{"pct100%x"}},
		{"usr_a", []string{"usr_ab"}},
		{"%", []string{"%lead"}},  // prefix path (< 3 characters)
		{"_", []string{"_lead"}},  // prefix path
		{"%l", []string{"%lead"}}, // prefix path
		{"_le", []string{"_lead"}},
	} {
		var got struct{ Users []setlist.User }
		in.get(t, "/v1/users?query="+url.QueryEscape(c.query)).json(t, &got)
		var ids []string
		for _, u := range got.Users {
			ids = append(ids, string(u.ID))
		}
		if fmt.Sprint(ids) != fmt.Sprint(c.want) {
			t.Errorf("user search %q: %v, want %v", c.query, ids, c.want)
		}
	}
}
