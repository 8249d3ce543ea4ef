package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/setlist/setlist"
)

// TestLookAlikeIDs is issue 18 item 10 through the API: one spelling of an
// id per user (NFC), no invisible or look-alike characters, JSON member
// names matched exactly and never twice.
func TestLookAlikeIDs(t *testing.T) {
	w := newWorld(t)
	in := w.start(t, fastConfig(), nil)
	in.waitModel(t, 1)
	wantStatus(t, in.do(t, http.MethodPost, "/v1/users", `{"user_id": "caf\u00e9"}`), http.StatusCreated)
	// The decomposed spelling is the same id: taken, and it finds the user.
	wantStatus(t, in.do(t, http.MethodPost, "/v1/users", `{"user_id": "cafe\u0301"}`), http.StatusConflict)
	var u struct {
		ID string `json:"user_id"`
	}
	r := in.get(t, "/v1/users/"+url.PathEscape("cafe\u0301"))
	wantStatus(t, r, http.StatusOK)
	r.json(t, &u)
	if u.ID != "caf\u00e9" {
		t.Fatalf("the NFD path found %q, want the NFC id", u.ID)
	}
	for name, id := range map[string]string{
		"zero-width space": "caf\u200bé", "bidi override": "\u202ecafé", "NBSP": "caf\u00a0é",
		"soft hyphen": "ca\u00adfé", "fullwidth": "\uff43\uff41\uff46é", "Cyrillic а": "c\u0430fé",
		"leading space": " café", "trailing space": "café ", "BOM": "\ufeffcafé",
	} {
		body, _ := json.Marshal(map[string]string{"user_id": id})
		r := in.do(t, http.MethodPost, "/v1/users", string(body))
		wantStatus(t, r, http.StatusBadRequest)
		if !strings.Contains(string(r.body), "user_id") {
			t.Errorf("%s: %s does not name user_id", name, r.body)
		}
		wantStatus(t, in.get(t, "/v1/users/"+url.PathEscape(id)), http.StatusBadRequest)
	}
	for body, want := range map[string]string{
		"{\"user_id\": \"a\xff\"}":                                   "UTF-8",
		`{"user_id": "a\ud800"}`:                                     "UTF-8",
		`{"USER_ID": "shout"}`:                                       `unknown field USER_ID`,
		`{"user_id": "twice", "user_id": "thrice"}`:                  "user_id is given twice",
		`{"user_id": "x", "display_name": "a", "Display_Name": "b"}`: "unknown field Display_Name",
	} {
		r := in.do(t, http.MethodPost, "/v1/users", body)
		wantStatus(t, r, http.StatusBadRequest)
		if !strings.Contains(string(r.body), want) {
			t.Errorf("%q: %s does not say %q", body, r.body, want)
		}
	}
	for _, id := range []string{"shout", "SHOUT", "twice", "thrice"} {
		wantStatus(t, in.get(t, "/v1/users/"+url.PathEscape(id)), http.StatusNotFound)
	}
	if _, err := w.db.User(context.Background(), "a\ufffd"); !errors.Is(err, setlist.ErrNotFound) {
		t.Errorf("invalid UTF-8 was stored as U+FFFD: %v", err)
	}
}

// TestErrorDetails is issue 16 item 6: a 4xx detail names the field as the
// client wrote it, says what is allowed, and says it once, without the
// sentinel's words trailing it or the layers' context repeated.
func TestErrorDetails(t *testing.T) {
	w := newWorld(t)
	in := w.start(t, fastConfig(), nil)
	in.waitModel(t, 1)
	detail := func(r response) string {
		t.Helper()
		var e struct{ Detail string }
		r.json(t, &e)
		return e.Detail
	}
	for _, c := range []struct {
		method, path, body string
		code               int
		want               string
	}{
		{http.MethodPost, "/v1/users/folder/reactions", `{"song_id": 1e3, "kind": "like"}`, 400, "song_id must be an integer, got 1e3"},
		{http.MethodPost, "/v1/users/folder/reactions", `{"song_id": "7", "kind": "like"}`, 400, "song_id must be an integer, got a string"},
		{http.MethodPost, "/v1/users/folder/reactions", `[]`, 400, "the body must be a JSON object"},
		{http.MethodPost, "/v1/users/folder/reactions", `{"song_id": 1, "kind": "love"}`, 400, `kind must be like, dislike or play, got "love"`},
		{http.MethodPost, "/v1/users", `{"user_id": "d", "likes": [{"song_id": 1}, {"song_id": true}]}`, 400, "likes[1].song_id must be an integer, got a boolean"},
		{http.MethodPost, "/v1/users", `{"user_id": "d", "likes": {}}`, 400, "likes must be an array, got an object"},
		{http.MethodPost, "/v1/users", `{"user_id": "d"} {}`, 400, "the body has data after its JSON value"},
		{http.MethodGet, "/v1/users/x/recommendations", "", 404, `user "x" not found`},
		{http.MethodGet, "/v1/users/x", "", 404, `user "x" not found`},
		{http.MethodPost, "/v1/users", `{"user_id": "folder"}`, 409, `user "folder" already exists`},
	} {
		var body any
		if c.body != "" {
			body = c.body
		}
		r := in.do(t, c.method, c.path, body)
		wantStatus(t, r, c.code)
		if got := detail(r); got != c.want {
			t.Errorf("%s %s %.60s: detail %q, want %q", c.method, c.path, c.body, got, c.want)
		}
	}
	big := in.oversized(t, "/v1/users", 70<<10)
	wantStatus(t, big, http.StatusRequestEntityTooLarge)
	if got := detail(big); got != "the body is larger than the limit of 64 KiB" {
		t.Errorf("a 70 KiB body: detail %q, want the limit of 64 KiB", got)
	}
	// No 4xx detail ends in a sentinel's words.
	r := in.do(t, http.MethodPost, "/v1/users/folder/reactions", `{"song_id": 99999999, "kind": "like"}`)
	wantStatus(t, r, http.StatusBadRequest)
	if d := detail(r); strings.HasSuffix(d, "invalid input") || strings.Count(d, "99999999") != 1 {
		t.Errorf("unknown song: detail %q repeats itself or ends in the sentinel", d)
	}
}
