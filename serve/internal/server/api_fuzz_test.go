package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
)

// checkAnswer is the contract every fuzzed request must meet: no 5xx (these
// fuzzers cause no outage, so even 503 is a bug), a {error, detail} JSON
// body on every 4xx, and JSON on every 2xx that has a body. A panic in a
// handler would show as a dropped connection (the client's error) or a 500.
func checkAnswer(t *testing.T, what string, r response, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	switch {
	case r.status >= 500:
		t.Fatalf("%s: status %d: %s", what, r.status, r.body)
	case r.status >= 400:
		var e struct {
			Error, Detail *string
		}
		if json.Unmarshal(r.body, &e) != nil || e.Error == nil || e.Detail == nil || *e.Error == "" || *e.Detail == "" {
			t.Fatalf("%s: status %d with body %q, want {error, detail}", what, r.status, r.body)
		}
	case r.status == http.StatusNoContent:
	default:
		if !json.Valid(r.body) {
			t.Fatalf("%s: status %d with non-JSON body %q", what, r.status, r.body)
		}
	}
}

// FuzzJSONBodies sends arbitrary bytes as the body of every endpoint that
// reads one, through the real handlers and stores.
func FuzzJSONBodies(f *testing.F) {
	w := newWorld(f)
	in := w.start(f, fastConfig(), nil)
	in.waitModel(f, 1)
	song := w.songs[3]
	for _, s := range []string{
		`{"user_id": "zoe", "display_name": "Zoë", "likes": [{"song_id": 1}, {"artist": "Artist 1", "track": "Track 1"}]}`,
		`{"user_id": "x", "likes": [{"song_id": -1}]}`,
		`{"user_id": "x", "likes": [{"song_id": 1, "artist": "a"}]}`,
		`{"user_id": "x", "display_name": "a\u0000b"}`,
		`{"user_id": "\u0000"}`,
		`{"user_id": "x", "colour": 1}`,
		`{"song_id": 1, "kind": "like"}`,
		`{"artist": "Artist 2", "track": "Track 2", "kind": "play"}`,
		`{"artist": "a\u0000", "track": "b", "kind": "play"}`,
		`{"song_id": 9223372036854775807, "kind": "dislike"}`,
		`{"song_id": 1e400, "kind": "like"}`,
		`{"kind": "like"} {}`,
		`{"user_id": "a", "user_id": "b"}`, `{"USER_ID": "x"}`, "{\"user_id\": \"a\xff\"}", `{"user_id": "a\u200bb"}`,
		`{"user_id": "cafe\u0301"}`, `{"user_id": "\ud800"}`, `{"likes": [{"song_id": 1}, {"song_id": "x"}]}`,
		`[]`, `null`, `"`, `{"kind": null}`, ``, "\xff",
	} {
		for k := range uint8(3) {
			f.Add(k, []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, kind uint8, body []byte) {
		var method, path string
		switch kind % 3 {
		case 0:
			method, path = http.MethodPost, "/v1/users"
		case 1:
			method, path = http.MethodPost, "/v1/users/folder/reactions"
		case 2:
			method, path = http.MethodDelete, fmt.Sprintf("/v1/users/folder/reactions/%d", song)
		}
		r, err := in.try(method, path, body)
		checkAnswer(t, fmt.Sprintf("%s %s %q", method, path, body), r, err)
	})
}

// FuzzQueryParams sends arbitrary values (URL-escaped, so the server sees
// exactly these bytes) for every query parameter and path id of the API.
func FuzzQueryParams(f *testing.F) {
	w := newWorld(f)
	in := w.start(f, fastConfig(), nil)
	in.waitModel(f, 1)
	for _, c := range []struct {
		user, n, limit, cursor, query, kind string
	}{
		{"batchy", "5", "20", "", "", "like"},
		{weird, "100", "100", "", "Artist 1", "play"},
		{"folder", "101", "0", "garbage", "%", "x"},
		{"newbie", "-1", "1e3", "AAAA", "_", ""},
		{"nobody", "0x10", " 5", "\x00", "a\x00b", "like\x00"},
		{"", "", "", "", "'; DROP TABLE users; --", "dislike"},
		{"\x00", "99999999999999999999", "-0", "%", "\\", "PLAY"},
		{"a/b", "5 ", "+5", "eyJyIjoxfQ", "\u202e\u200d", "like"},
	} {
		f.Add(c.user, c.n, c.limit, c.cursor, c.query, c.kind, uint8(0))
	}
	f.Fuzz(func(t *testing.T, user, n, limit, cursor, query, kind string, which uint8) {
		u := url.PathEscape(user)
		song := fmt.Sprint(w.songs[int(which)%len(w.songs)])
		if which&0x80 != 0 {
			song = url.PathEscape(n) // a bad song id in the path
		}
		q := url.Values{"n": {n}, "limit": {limit}, "cursor": {cursor}, "query": {query}, "kind": {kind}}.Encode()
		reqs := []struct{ method, path string }{
			{http.MethodGet, "/v1/users/" + u + "/recommendations?" + q},
			{http.MethodGet, "/v1/users?" + q},
			{http.MethodGet, "/v1/users/" + u + "?" + q},
			{http.MethodGet, "/v1/users/" + u + "/reactions?" + q},
			{http.MethodGet, "/v1/songs?" + q},
			{http.MethodGet, "/v1/songs/" + song + "/similar?" + q},
			{http.MethodDelete, "/v1/users/" + u + "/reactions/" + song + "?" + q},
		}
		if user == "" {
			reqs = reqs[1:2] // an empty path segment is another route
		}
		for _, r := range reqs {
			res, err := in.try(r.method, r.path, nil)
			checkAnswer(t, r.method+" "+r.path, res, err)
		}
	})
}
