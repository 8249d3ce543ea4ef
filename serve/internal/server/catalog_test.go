package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/store"
	"github.com/setlist/setlist/serve/internal/server"
)

// notified records the catalog numbers the API announces.
type notified struct {
	mu   sync.Mutex
	seqs []int64
}

func (n *notified) CatalogChanged(_ context.Context, seq int64) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.seqs = append(n.seqs, seq)
	return nil
}

func (n *notified) list() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return fmt.Sprint(n.seqs)
}

// TestCatalogAPI: POST /v1/songs and PATCH /v1/songs/{id} need the admin
// scope; a create answers 201 with the song, a duplicate 409, an unknown
// field 400 naming it, an unknown song 404; every committed change (and
// only those) is announced with its catalog number; GET /v1/songs filters
// by tag and availability.
func TestCatalogAPI(t *testing.T) {
	e := newEnv(t)
	note := &notified{}
	cfg := fastConfig()
	cfg.API.Tokens, cfg.API.RequireAuth = testTokens(t), true
	in := e.startDeps(t, cfg, func(d *server.Deps) { d.Catalog = note })
	admin, write, read := bearer(adminToken), bearer(writeToken), bearer(readToken)

	body := `{"artist": "Dua Lipa", "track": "Houdini", "tags": ["Pop", "dance"], "released": "2023-11-09", "external_id": "GBAHT2300569"}`
	wantStatus(t, in.doHeaders(t, "POST", "/v1/songs", body, write), http.StatusForbidden)
	r := in.doHeaders(t, "POST", "/v1/songs", body, admin)
	wantStatus(t, r, http.StatusCreated)
	var s setlist.CatalogSong
	r.json(t, &s)
	if s.ID == 0 || fmt.Sprint(s.Tags) != "[dance pop]" || s.Released.String() != "2023-11-09" || !s.Available || s.ExternalID != "GBAHT2300569" {
		t.Fatalf("created %s", r.body)
	}
	if loc := r.header.Get("Location"); loc != fmt.Sprintf("/v1/songs/%d", s.ID) {
		t.Errorf("Location %q", loc)
	}
	if got := note.list(); got != "[1]" {
		t.Errorf("notified %s after a create, want [1]", got)
	}
	wantStatus(t, in.doHeaders(t, "POST", "/v1/songs", `{"artist": "Dua Lipa", "track": "Houdini"}`, admin), http.StatusConflict)
	wantStatus(t, in.doHeaders(t, "POST", "/v1/songs", `{"artist": "X", "track": "Y", "external_id": "GBAHT2300569"}`, admin), http.StatusConflict)
	wantStatus(t, in.doHeaders(t, "POST", "/v1/songs", `{"artist": "X", "track": "Y", "tags": ["no spaces"]}`, admin), http.StatusBadRequest)
	wantStatus(t, in.doHeaders(t, "POST", "/v1/songs", `{"artist": "X"}`, admin), http.StatusBadRequest)

	path := fmt.Sprintf("/v1/songs/%d", s.ID)
	for _, tc := range []struct {
		name, body, want string
	}{
		{"unknown field", `{"available": false, "genre": "pop"}`, "genre"},
		{"artist cannot change", `{"artist": "Someone"}`, "artist"},
		{"bad date", `{"released": "2023-13-01"}`, "released"},
		{"empty patch", `{}`, "changes nothing"},
		{"null tags", `{"tags": null}`, "tags"},
		{"empty external id", `{"external_id": ""}`, "external_id"},
	} {
		r := in.doHeaders(t, "PATCH", path, tc.body, admin)
		wantStatus(t, r, http.StatusBadRequest)
		if !strings.Contains(string(r.body), tc.want) {
			t.Errorf("%s: %s does not name %q", tc.name, r.body, tc.want)
		}
	}
	wantStatus(t, in.doHeaders(t, "PATCH", "/v1/songs/999999", `{"available": false}`, admin), http.StatusNotFound)
	// The page's probe of its token's scope (web/static/js/api.js
	// canEditCatalog): an admin token reaches the song id check, any
	// other is refused for its scope; neither changes anything.
	wantStatus(t, in.doHeaders(t, "PATCH", "/v1/songs/0", `{"available": true}`, admin), http.StatusBadRequest)
	wantStatus(t, in.doHeaders(t, "PATCH", "/v1/songs/0", `{"available": true}`, write), http.StatusForbidden)
	wantStatus(t, in.doHeaders(t, "PATCH", path, `{"available": false}`, write), http.StatusForbidden)
	if got := note.list(); got != "[1]" {
		t.Errorf("notified %s after refused writes, want [1]", got)
	}

	r = in.doHeaders(t, "PATCH", path, `{"available": false, "released": null, "external_id": null}`, admin)
	wantStatus(t, r, http.StatusOK)
	s = setlist.CatalogSong{}
	r.json(t, &s)
	if s.Available || s.Released != nil || s.ExternalID != "" || fmt.Sprint(s.Tags) != "[dance pop]" {
		t.Errorf("patched %s", r.body)
	}
	wantStatus(t, in.doHeaders(t, "PATCH", path, `{"available": false}`, admin), http.StatusOK) // changes nothing: no event
	if got := note.list(); got != "[1 2]" {
		t.Errorf("notified %s, want [1 2] (a patch that changes nothing is not announced)", got)
	}
	r = in.doHeaders(t, "GET", path, "", read)
	wantStatus(t, r, http.StatusOK)
	var got setlist.CatalogSong
	r.json(t, &got)
	if got.ID != s.ID || got.Available || got.Artist != "Dua Lipa" {
		t.Errorf("GET %s = %s", path, r.body)
	}
	wantStatus(t, in.doHeaders(t, "GET", "/v1/songs/999999", "", read), http.StatusNotFound)

	if _, _, err := e.db.CreateSong(context.Background(), setlist.NewSong{Artist: "Abba", Track: "Waterloo", Tags: []string{"pop"}}); err != nil {
		t.Fatal(err)
	}
	for q, want := range map[string]string{
		"tag=pop":                  "Waterloo Houdini",
		"tag=POP&available=true":   "Waterloo",
		"available=false":          "Houdini",
		"tag=dance&query=houd":     "Houdini",
		"tag=rock":                 "",
		"available=true&query=dua": "",
	} {
		r := in.doHeaders(t, "GET", "/v1/songs?"+q, "", read)
		wantStatus(t, r, http.StatusOK)
		var page struct{ Songs []setlist.CatalogSong }
		r.json(t, &page)
		var names []string
		for _, s := range page.Songs {
			names = append(names, s.Track)
		}
		if strings.Join(names, " ") != want {
			t.Errorf("GET /v1/songs?%s = %v, want %s", q, names, want)
		}
	}
	for _, q := range []string{"available=maybe", "tag=not%20a%20tag"} {
		wantStatus(t, in.doHeaders(t, "GET", "/v1/songs?"+q, "", read), http.StatusBadRequest)
	}
}

// TestCatalogBadInputAPI: on both backends, a PATCH or POST of a song with
// a member the API does not define (a misspelling, another case, a nested
// object, a member given twice) is a 400 naming it, and hiding an unknown
// song is a 404; none changes the catalog or its number.
func TestCatalogBadInputAPI(t *testing.T) {
	eachBackend(t, func(t *testing.T, w *filterWorld) {
		ctx := context.Background()
		admin := bearer(adminToken)
		seq := w.in.srv.Recs().CatalogSeq()
		s := w.stored[1]
		path := fmt.Sprintf("/v1/songs/%d", s)
		before, err := w.db.CatalogSong(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ method, path, body, names string }{
			{"PATCH", path, `{"available": false, "genre": "pop"}`, "genre"},
			{"PATCH", path, `{"Available": false}`, "Available"},
			{"PATCH", path, `{"available": false, "extra": {"available": true}}`, "extra"},
			{"PATCH", path, `{"available": false, "available": true}`, "available"},
			{"PATCH", path, `{"tags": ["pop"], "song_id": 5}`, "song_id"},
			{"PATCH", path, `{"available": "no"}`, "available"},
			{"POST", "/v1/songs", `{"artist": "New", "track": "Song", "genre": "pop"}`, "genre"},
			{"POST", "/v1/songs", `{"artist": "New", "track": "Song", "Tags": ["pop"]}`, "Tags"},
		} {
			r := w.in.doHeaders(t, tc.method, tc.path, tc.body, admin)
			if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), tc.names) {
				t.Errorf("%s %s %s: %d %s, want 400 naming %s", tc.method, tc.path, tc.body, r.status, r.body, tc.names)
			}
		}
		for _, id := range []string{"999999", "9223372036854775807"} {
			wantStatus(t, w.in.doHeaders(t, "PATCH", "/v1/songs/"+id, `{"available": false}`, admin), http.StatusNotFound)
		}
		after, err := w.db.CatalogSong(ctx, s)
		if err != nil || !after.Available || fmt.Sprint(after.Tags) != fmt.Sprint(before.Tags) {
			t.Errorf("refused patches changed song %d: %+v → %+v (%v)", s, before, after, err)
		}
		if got, err := w.db.SearchCatalog(ctx, store.SongQuery{Query: "new song", Limit: 5}); err != nil || len(got) != 0 {
			t.Errorf("a refused create wrote %v (%v)", got, err)
		}
		if now, err := w.db.(interface {
			CatalogSeq(context.Context) (int64, error)
		}).CatalogSeq(ctx); err != nil || now != seq {
			t.Errorf("catalog number %d → %d (%v) after refused writes", seq, now, err)
		}
	})
}
