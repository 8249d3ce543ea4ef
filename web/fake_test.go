package web_test

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/setlist/setlist/web"
)

// fakeAPI is a small in-memory stand-in for serve's REST API, answering in
// the same JSON shapes, so the page can be tested in a browser quickly and
// with hostile data (names holding markup, RTL marks, emoji, 10 KB strings)
// that the sample data set lacks. The real-binary test is in e2e_test.go.
type fakeAPI struct {
	mu        sync.Mutex
	songs     []fakeSong
	users     []fakeUser
	byID      map[string]int
	reactions map[string]map[int64]string // user → song → kind
	catalog   map[int64]fakeMeta          // metadata PATCH changed
	patches   int                         // PATCH /v1/songs that changed a song
	version   int                         // the served model version (6 unless published)
	exps      []map[string]any            // experiments, newest first
	// token, when set, is the one token every /v1 request needs (401
	// without it), as a production serve with --api-tokens-file.
	token string
}

// publish makes version the served one, as a train and publish would.
func (f *fakeAPI) publish(version int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.version = version
}

// requireToken makes every /v1 request need token (or the admin token).
func (f *fakeAPI) requireToken(token string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.token = token
}

// authorized wraps the API: 401 without the required token, when one is.
func (f *fakeAPI) authorized(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		token := f.token
		f.mu.Unlock()
		if token != "" && strings.HasPrefix(r.URL.Path, "/v1/") {
			if got := r.Header.Get("Authorization"); got != "Bearer "+token && got != "Bearer "+fakeAdminToken {
				writeErr(w, 401, "unauthorized", "a valid API token is required")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

type fakeSong struct {
	ID     int64  `json:"song_id"`
	Artist string `json:"artist"`
	Track  string `json:"track"`
}

// fakeMeta is a song's catalog metadata (GET /v1/songs/{id}).
type fakeMeta struct {
	Tags      []string
	Released  string
	Available bool
}

// fakeAdminToken is the fake API's admin-scope token; any other token
// has a lower scope.
const fakeAdminToken = "fake-admin-token-0123456789"

// meta is song s's generated catalog metadata, with what PATCH changed.
func (f *fakeAPI) meta(s fakeSong) fakeMeta {
	if m, ok := f.catalog[s.ID]; ok {
		return m
	}
	m := fakeMeta{Tags: []string{}, Released: "2001-01-01", Available: true}
	switch s.ID % 3 {
	case 0:
		m.Tags = []string{"rock"}
	case 1:
		m.Tags = []string{"explicit", "pop"}
	}
	if s.ID%5 == 0 {
		m.Released = time.Now().UTC().AddDate(0, 0, -3).Format("2006-01-02")
	}
	return m
}

func (f *fakeAPI) catalogSong(s fakeSong) map[string]any {
	m := f.meta(s)
	return map[string]any{"song_id": s.ID, "artist": s.Artist, "track": s.Track, "tags": m.Tags, "released": m.Released,
		"available": m.Available, "created_at": "2026-01-01T00:00:00Z"}
}

func (f *fakeAPI) getSong(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.songByID(id)
	if !ok {
		writeErr(w, 404, "not_found", "no such song")
		return
	}
	writeJSON(w, 200, f.catalogSong(s))
}

// patchSong is PATCH /v1/songs/{id}: admin scope first (403), then the id
// (400 for 0, 404 unknown), as serve checks them.
func (f *fakeAPI) patchSong(w http.ResponseWriter, r *http.Request) {
	if !admin(w, r) {
		return
	}
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if id <= 0 {
		writeErr(w, 400, "invalid_input", "song_id must be a positive integer")
		return
	}
	var body struct {
		Available *bool `json:"available"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Available == nil {
		writeErr(w, 400, "invalid_input", "want {available}")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.songByID(id)
	if !ok {
		writeErr(w, 404, "not_found", "no such song")
		return
	}
	m := f.meta(s)
	m.Available = *body.Available
	f.catalog[id] = m
	f.patches++
	writeJSON(w, 200, f.catalogSong(s))
}

type fakeUser struct {
	ID          string `json:"user_id"`
	DisplayName string `json:"display_name"`
	CreatedAt   string `json:"created_at"`
}

// hostileNames are display names a page must show as text, never as markup.
var hostileNames = []string{
	`<img src=x onerror="window.__xss=1">`,
	`<script>window.__xss=1</script>`,
	"\u202eevil\u202c and \u05e9\u05dc\u05d5\u05dd",
	"🎧 emoji fan 🎶",
	strings.Repeat("long", 2500), // 10 KB
}

// newFakeAPI serves the page and a fake API with nUsers generated users.
func newFakeAPI(t *testing.T, nUsers int) (*fakeAPI, string) {
	t.Helper()
	f := &fakeAPI{byID: map[string]int{}, reactions: map[string]map[int64]string{}, catalog: map[int64]fakeMeta{}, version: 6}
	artists := []string{"Bruno Mars", "Avril Lavigne", "Becky G", "All Time Low", "Daft Punk", "Nina Simone", "Sigur Rós", "Fela Kuti"}
	for i := 0; i < 120; i++ {
		f.songs = append(f.songs, fakeSong{ID: int64(i + 1), Artist: artists[i%len(artists)], Track: fmt.Sprintf("Track %d", i+1)})
	}
	f.songs = append(f.songs, fakeSong{ID: 999, Artist: `<b>Bold</b> & "quoted"`, Track: `<script>window.__xss=1</script>`})
	for i := 0; i < nUsers; i++ {
		f.addUser(fakeUser{ID: fmt.Sprintf("user-%05d", i), DisplayName: fmt.Sprintf("Listener %d", i)})
	}
	for i, name := range hostileNames {
		f.addUser(fakeUser{ID: fmt.Sprintf("hostile-%d", i), DisplayName: name})
	}
	// A listener who only played a song: their "because" must not say liked.
	f.reactions["user-00042"] = map[int64]string{7: "play"}
	mux := http.NewServeMux()
	mux.Handle("GET /", http.FileServerFS(web.Static()))
	mux.HandleFunc("GET /v1/users", f.searchUsers)
	mux.HandleFunc("POST /v1/users", f.createUser)
	mux.HandleFunc("GET /v1/users/{id}", f.getUser)
	mux.HandleFunc("GET /v1/users/{id}/recommendations", f.recommendations)
	mux.HandleFunc("GET /v1/users/{id}/reactions", f.reactionList)
	mux.HandleFunc("POST /v1/users/{id}/reactions", f.react)
	mux.HandleFunc("DELETE /v1/users/{id}/reactions/{song}", f.unreact)
	mux.HandleFunc("GET /v1/songs", f.searchSongs)
	mux.HandleFunc("GET /v1/songs/{id}/similar", f.similar)
	mux.HandleFunc("GET /v1/songs/{id}", f.getSong)
	mux.HandleFunc("PATCH /v1/songs/{id}", f.patchSong)
	mux.HandleFunc("GET /v1/model", f.model)
	mux.HandleFunc("GET /v1/runs", f.runs)
	mux.HandleFunc("GET /v1/runs/{id}", f.run)
	mux.HandleFunc("GET /v1/experiments", f.experiments)
	mux.HandleFunc("POST /v1/admin/experiments", f.startExperiment)
	mux.HandleFunc("POST /v1/admin/experiments/stop", f.stopExperiment)
	srv := httptest.NewServer(f.authorized(mux))
	t.Cleanup(srv.Close)
	return f, srv.URL
}

func (f *fakeAPI) addUser(u fakeUser) {
	u.CreatedAt = "2026-01-01T00:00:00Z"
	f.byID[u.ID] = len(f.users)
	f.users = append(f.users, u)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, status int, code, detail string) {
	writeJSON(w, status, map[string]string{"error": code, "detail": detail})
}

func limit(r *http.Request, def int) int {
	if n, err := strconv.Atoi(r.URL.Query().Get("limit")); err == nil && n > 0 {
		return n
	}
	if n, err := strconv.Atoi(r.URL.Query().Get("n")); err == nil && n > 0 {
		return n
	}
	return def
}

func (f *fakeAPI) searchUsers(w http.ResponseWriter, r *http.Request) {
	q := strings.ToLower(r.URL.Query().Get("query"))
	n := limit(r, 20)
	f.mu.Lock()
	defer f.mu.Unlock()
	// The cursor is the index to go on from (serve's is opaque too).
	from, _ := strconv.Atoi(r.URL.Query().Get("cursor"))
	out := []fakeUser{}
	next := ""
	for i := from; i < len(f.users); i++ {
		u := f.users[i]
		if strings.HasPrefix(strings.ToLower(u.ID), q) || (len(q) >= 3 && strings.Contains(strings.ToLower(u.DisplayName), q)) {
			if len(out) == n {
				next = strconv.Itoa(i)
				break
			}
			out = append(out, u)
		}
	}
	page := map[string]any{"users": out}
	if next != "" {
		page["next_cursor"] = next
	}
	writeJSON(w, 200, page)
}

func (f *fakeAPI) getUser(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, ok := f.byID[r.PathValue("id")]
	if !ok {
		writeErr(w, 404, "not_found", "no such user")
		return
	}
	writeJSON(w, 200, f.users[i])
}

func (f *fakeAPI) createUser(w http.ResponseWriter, r *http.Request) {
	var body struct {
		UserID      string `json:"user_id"`
		DisplayName string `json:"display_name"`
		Likes       []struct {
			SongID int64 `json:"song_id"`
		} `json:"likes"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.UserID == "" {
		writeErr(w, 400, "invalid", "user_id is required")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.byID[body.UserID]; ok {
		writeErr(w, 409, "conflict", "user_id is taken")
		return
	}
	u := fakeUser{ID: body.UserID, DisplayName: body.DisplayName}
	f.addUser(u)
	f.reactions[u.ID] = map[int64]string{}
	for _, l := range body.Likes {
		f.reactions[u.ID][l.SongID] = "like"
	}
	writeJSON(w, 201, u)
}

func (f *fakeAPI) songByID(id int64) (fakeSong, bool) {
	for _, s := range f.songs {
		if s.ID == id {
			return s, true
		}
	}
	return fakeSong{}, false
}

// recommendations is "batch" for a user without reactions made through the
// API and "fold-in" after one; liked and disliked songs are never listed.
func (f *fakeAPI) recommendations(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	n := limit(r, 5)
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.byID[id]; !ok {
		writeErr(w, 404, "not_found", "no such user")
		return
	}
	seen := f.reactions[id]
	source := "batch"
	if seen != nil {
		source = "fold-in"
	}
	h := fnv.New32a()
	h.Write([]byte(id))
	start := int(h.Sum32() % uint32(len(f.songs)))
	// The because is a liked song if there is one, else a played one.
	var because any
	for _, want := range []string{"like", "play"} {
		for sid, kind := range seen {
			if s, ok := f.songByID(sid); ok && kind == want && because == nil {
				because = s
			}
		}
	}
	var tags []string
	if raw := r.URL.Query().Get("tags"); raw != "" {
		tags = strings.Split(raw, ",")
	}
	perArtist, _ := strconv.Atoi(r.URL.Query().Get("max_per_artist"))
	artists := map[string]int{}
	items := []map[string]any{}
	for i := 0; len(items) < n && i < len(f.songs); i++ {
		s := f.songs[(start+i)%len(f.songs)]
		if _, ok := seen[s.ID]; ok {
			continue
		}
		if m := f.meta(s); !m.Available || (tags != nil && !anyOf(m.Tags, tags)) {
			continue
		}
		if perArtist > 0 && artists[s.Artist] >= perArtist {
			continue
		}
		artists[s.Artist]++
		item := map[string]any{"song_id": s.ID, "artist": s.Artist, "track": s.Track, "score": 1 - float64(len(items))/10}
		if because != nil {
			item["because"] = because
		}
		items = append(items, item)
	}
	writeJSON(w, 200, map[string]any{"user_id": id, "model_version": f.version, "source": source, "items": items})
}

// reactionList is GET /v1/users/{id}/reactions: {song, kind} per reaction.
func anyOf(have, want []string) bool {
	for _, w := range want {
		for _, h := range have {
			if h == w {
				return true
			}
		}
	}
	return false
}

func (f *fakeAPI) reactionList(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.byID[id]; !ok {
		writeErr(w, 404, "not_found", "no such user")
		return
	}
	list := []map[string]any{}
	for sid, kind := range f.reactions[id] {
		if s, ok := f.songByID(sid); ok {
			list = append(list, map[string]any{"song": s, "kind": kind, "weight": 1})
		}
	}
	writeJSON(w, 200, map[string]any{"user_id": id, "reactions": list})
}

func (f *fakeAPI) react(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var body struct {
		SongID int64  `json:"song_id"`
		Kind   string `json:"kind"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeErr(w, 400, "invalid", err.Error())
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reactions[id] == nil {
		f.reactions[id] = map[int64]string{}
	}
	f.reactions[id][body.SongID] = body.Kind
	writeJSON(w, 201, map[string]any{"user_id": id, "song_id": body.SongID, "kind": body.Kind})
}

func (f *fakeAPI) unreact(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	song, _ := strconv.ParseInt(r.PathValue("song"), 10, 64)
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.reactions[id], song)
	w.WriteHeader(204)
}

// searchSongs is GET /v1/songs: query, tag and available filter as the
// API's do; without a query the list pages by cursor.
func (f *fakeAPI) searchSongs(w http.ResponseWriter, r *http.Request) {
	q := strings.ToLower(r.URL.Query().Get("query"))
	tag := r.URL.Query().Get("tag")
	available, err := strconv.ParseBool(r.URL.Query().Get("available"))
	filterAvailable := err == nil
	n := limit(r, 10)
	from, _ := strconv.Atoi(r.URL.Query().Get("cursor"))
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []map[string]any{}
	next := ""
	for i := from; i < len(f.songs); i++ {
		s := f.songs[i]
		m := f.meta(s)
		if tag != "" && !slices.Contains(m.Tags, strings.ToLower(tag)) || filterAvailable && m.Available != available {
			continue
		}
		if strings.Contains(strings.ToLower(s.Artist+" "+s.Track), q) {
			if len(out) == n {
				if q == "" {
					next = strconv.Itoa(i)
				}
				break
			}
			out = append(out, f.catalogSong(s))
		}
	}
	page := map[string]any{"songs": out}
	if next != "" {
		page["next_cursor"] = next
	}
	writeJSON(w, 200, page)
}

func (f *fakeAPI) similar(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	n := limit(r, 5)
	out := []map[string]any{}
	for i := 1; len(out) < n; i++ {
		s := f.songs[(int(id)+i*7)%len(f.songs)]
		out = append(out, map[string]any{"song_id": s.ID, "artist": s.Artist, "track": s.Track, "score": 0.9 - float64(i)/20})
	}
	writeJSON(w, 200, map[string]any{"song_id": id, "items": out})
}

// model is GET /v1/model, revalidated by an ETag of the served version as
// serve's is by a hash of the body.
func (f *fakeAPI) model(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	version := f.version
	f.mu.Unlock()
	etag := fmt.Sprintf(`"fake-v%d"`, version)
	w.Header().Set("ETag", etag)
	w.Header().Set("Cache-Control", "no-cache")
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	now := time.Now().UTC()
	var runs []map[string]any
	for v := 1; v <= version; v++ {
		runs = append(runs, map[string]any{
			"version": v, "status": "published",
			"finished_at": now.Add(-time.Duration(7-v) * 24 * time.Hour),
			"metrics":     map[string]float64{"precision_at_k": 0.05 + 0.01*float64(v), "ndcg_at_k": 0.07 + 0.015*float64(v%4+v)},
		})
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i]["version"].(int) > runs[j]["version"].(int) })
	writeJSON(w, 200, map[string]any{
		"version":    version,
		"family":     "als",
		"trained_at": now.Add(-5 * time.Minute),
		"params":     fakeParams(64, "bm25"),
		"scheme":     map[string]any{"like_weight": 4, "dislike_weight": 1},
		"metrics":    map[string]float64{"precision_at_k": 0.11, "ndcg_at_k": 0.19, "recall_at_k": 0.08, "map_at_k": 0.06, "coverage_at_k": 0.31, "k": 5},
		"runs":       runs,
		"tuning":     fakeTuning(),
		"refresh": map[string]any{"supported": true, "last": map[string]any{"id": 4, "version": 6, "status": "done",
			"songs_added": 3, "users_updated": 41, "songs": []int{5, 10, 15},
			"started_at": now.Add(-11 * time.Minute), "finished_at": now.Add(-10 * time.Minute)}},
		"online": map[string]any{
			"since": now.AddDate(0, 0, -6).Format("2006-01-02"),
			"versions": []map[string]any{
				{"model_version": 6, "source": "", "arm": "", "answers": 900, "users": 120, "likes": 30, "dislikes": 6, "positive_rate": 0.25, "negative_rate": 0.05, "mrr": 0.41},
				{"model_version": 5, "source": "", "arm": "", "answers": 400, "users": 80, "likes": 12, "dislikes": 8, "positive_rate": 0.15, "negative_rate": 0.1, "mrr": 0.33},
			},
			"sources": []map[string]any{
				{"model_version": 6, "source": "batch", "arm": "none", "answers": 800, "users": 100, "likes": 28, "dislikes": 5, "positive_rate": 0.28, "negative_rate": 0.05, "mrr": 0.43},
				{"model_version": 6, "source": "fold-in", "arm": "none", "answers": 100, "users": 20, "likes": 2, "dislikes": 1, "positive_rate": 0.1, "negative_rate": 0.05, "mrr": 0.2},
			},
			"daily": []map[string]any{},
		},
	})
}

func fakeParams(factors int, weighting string) map[string]any {
	return map[string]any{"factors": factors, "iterations": 15, "regularization": 0.05, "alpha": 0.63, "cg_steps": 3,
		"weighting": weighting, "bm25_k1": 8.4, "bm25_b": 0.79, "log_epsilon": 1, "seed": 42, "threads": 0}
}

// fakeTuning is a search of 20 trials in /v1/model's shape: the incumbent,
// then low-rung trials of which some are promoted to the top rung.
func fakeTuning() map[string]any {
	var trials []map[string]any
	var best *float64
	for i := 0; i < 20; i++ {
		rung := 0
		if i == 0 || i%4 == 3 {
			rung = 1
		}
		ndcg := 0.12 + 0.004*float64(i%7) + 0.02*float64(rung)
		t := map[string]any{"run_id": 5, "number": i, "rung": rung, "split": 0, "params": fakeParams(32+16*(i%8), []string{"raw", "log", "bm25"}[i%3]),
			"iterations": 5 + 10*rung, "user_fraction": []float64{0.25, 1}[rung], "metrics": map[string]float64{"ndcg_at_5": ndcg},
			"seconds": 0.5 + float64(i%5), "pruned": rung == 0 && i%2 == 0, "promoted": rung == 0 && i%2 == 1, "incumbent": i == 0,
			"ndcg_at_5": ndcg, "full_fidelity": rung == 1}
		if rung == 1 && (best == nil || ndcg > *best) {
			v := ndcg
			best = &v
		}
		t["best_so_far"] = best
		trials = append(trials, t)
	}
	return map[string]any{"run": 5, "best_trial": 19, "kept_incumbent": false, "incumbent_score": 0.14, "best_score": 0.164,
		"noise_margin": 0.003, "budget_seconds": 600, "used_seconds": 597.3, "stop_reason": "budget", "trial_count": 20,
		"pruned_count": 8, "trials": trials}
}

// runs is GET /v1/runs: the model's versions as runs, and run 5, the
// search (a tune, no version).
func (f *fakeAPI) runs(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	version := f.version
	f.mu.Unlock()
	list := []map[string]any{}
	for id := version + 1; id >= 1; id-- {
		list = append(list, fakeRun(id))
	}
	writeJSON(w, 200, map[string]any{"runs": list})
}

func fakeRun(id int) map[string]any {
	run := map[string]any{"id": id, "status": "published", "params": map[string]any{}, "metrics": map[string]float64{"ndcg_at_5": 0.1 + 0.01*float64(id)},
		"counts": map[string]any{}, "timings": map[string]any{}, "version": id, "started_at": "2026-01-01T00:00:00Z", "finished_at": "2026-01-01T00:02:30Z"}
	if id == 5 {
		run["status"], run["notes"] = "tuned", "weekly search"
		delete(run, "version")
	}
	return run
}

// run is GET /v1/runs/{id}: run 5 is the search, 6 trained with its pick,
// the others searched nothing.
func (f *fakeAPI) run(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil || id < 1 || id > 50 {
		writeErr(w, 404, "not found", "run not found")
		return
	}
	var tuning any
	if id == 5 || id == 6 {
		tuning = fakeTuning()
	}
	writeJSON(w, 200, map[string]any{"run": fakeRun(id), "tuning": tuning})
}

// experiments is GET /v1/experiments: the running one (if any) and all.
func (f *fakeAPI) experiments(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var running any
	if len(f.exps) > 0 && f.exps[0]["status"] == "running" {
		running = f.exps[0]
	}
	list := f.exps
	if list == nil {
		list = []map[string]any{}
	}
	writeJSON(w, 200, map[string]any{"running": running, "experiments": list})
}

// admin answers 401 or 403 unless the request carries the admin token.
func admin(w http.ResponseWriter, r *http.Request) bool {
	switch r.Header.Get("Authorization") {
	case "Bearer " + fakeAdminToken:
		return true
	case "":
		writeErr(w, 401, "unauthorized", "a token is required")
	default:
		writeErr(w, 403, "forbidden", "this token's scope does not allow it")
	}
	return false
}

func (f *fakeAPI) startExperiment(w http.ResponseWriter, r *http.Request) {
	if !admin(w, r) {
		return
	}
	var body struct {
		Challenger int64   `json:"challenger_version"`
		Share      float64 `json:"share"`
		Name       string  `json:"name"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Challenger <= 0 {
		writeErr(w, 400, "bad request", "challenger_version must be a positive integer")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.exps) > 0 && f.exps[0]["status"] == "running" {
		writeErr(w, 409, "conflict", "an experiment is running")
		return
	}
	if body.Name == "" {
		body.Name = fmt.Sprintf("v%d vs v%d", body.Challenger, f.version)
	}
	e := map[string]any{"id": len(f.exps) + 1, "name": body.Name, "control_version": f.version, "challenger_version": body.Challenger,
		"share": body.Share, "alpha": 0.05, "mde": 0.02, "status": "running", "started_at": time.Now().UTC(), "serving": true}
	f.exps = append([]map[string]any{e}, f.exps...)
	writeJSON(w, 201, e)
}

func (f *fakeAPI) stopExperiment(w http.ResponseWriter, r *http.Request) {
	if !admin(w, r) {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.exps) == 0 || f.exps[0]["status"] != "running" {
		writeErr(w, 404, "not found", "no experiment is running")
		return
	}
	f.exps[0]["status"], f.exps[0]["ended_at"], f.exps[0]["serving"] = "stopped", time.Now().UTC(), false
	writeJSON(w, 200, f.exps[0])
}
