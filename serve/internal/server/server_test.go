package server_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/keyspace/redistest"
	"github.com/setlist/setlist/internal/model"
	"github.com/setlist/setlist/internal/store"
	"github.com/setlist/setlist/serve/internal/fixture"
)

// world is a small published model: 60 songs, version 1 knows the first 40.
//
//	batchy      has a batch list (K=10) and plays on songs 0–9
//	"a b/c%"    has a batch list (an id that needs escaping)
//	folder      has no list, likes 0–4 and plays 5–9: fold-in
//	newbie      has no list and no reactions: popular
//	disliker    has no list and only dislikes 20, 21: popular minus those
type world struct {
	*env
	songs []setlist.SongID
	v1    fixture.Version
}

const weird = "a b/c%"

func newWorld(t testing.TB) *world {
	t.Helper()
	return newWorldIn(t, newEnv(t))
}

// newWorldOn is newWorld with the models in target's Redis.
func newWorldOn(t testing.TB, target redistest.Target) *world {
	t.Helper()
	return newWorldIn(t, newEnvOn(t, target))
}

// newWorldIn builds the world in e (e.g. on a private Redis).
func newWorldIn(t testing.TB, e *env) *world {
	t.Helper()
	ctx := context.Background()
	w := &world{env: e}
	var err error
	if w.songs, err = fixture.Songs(ctx, w.db, 0, 60); err != nil {
		t.Fatal(err)
	}
	users := []setlist.UserID{"batchy", weird, "folder", "newbie", "disliker"}
	if err := fixture.Users(ctx, w.db, users); err != nil {
		t.Fatal(err)
	}
	var rs []setlist.Reaction
	for i := range 10 {
		rs = append(rs, setlist.Reaction{User: "batchy", Song: w.songs[i], Kind: setlist.Play, Weight: 3})
		kind := setlist.Like
		if i >= 5 {
			kind = setlist.Play
		}
		rs = append(rs, setlist.Reaction{User: "folder", Song: w.songs[i], Kind: kind, Weight: 2})
	}
	rs = append(rs, setlist.Reaction{User: "disliker", Song: w.songs[20], Kind: setlist.Dislike, Weight: 1},
		setlist.Reaction{User: "disliker", Song: w.songs[21], Kind: setlist.Dislike, Weight: 1})
	if err := fixture.Reactions(ctx, w.db, rs); err != nil {
		t.Fatal(err)
	}
	w.v1 = w.version(1, w.songs[:40])
	if err := fixture.Publish(ctx, w.rdb, w.prefix, w.v1); err != nil {
		t.Fatal(err)
	}
	return w
}

// version builds a version over catalog with lists for batchy and weird and
// a popular list of the catalog's songs 20–39 (or the last 20).
func (w *world) version(v model.Version, catalog []setlist.SongID) fixture.Version {
	fv := fixture.Version{Version: v, Songs: catalog, Factors: 8, Seed: uint64(v), K: 10,
		Metrics: map[string]float64{"ndcg@5": 0.1 * float64(v), "precision@5": 0.05}}
	side := fv.ItemSide()
	rng := rand.New(rand.NewPCG(uint64(v), 9))
	fv.Lists = map[setlist.UserID][]model.Rec{
		"batchy": fv.TopK(side, rng, 10, []int32{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}),
		weird:    fv.TopK(side, rng, 10, nil),
	}
	for i, s := range catalog[len(catalog)-20:] {
		fv.Popular = append(fv.Popular, model.Rec{Song: s, Score: float32(50 - i)})
	}
	return fv
}

func songsOf(recs []model.Rec) []setlist.SongID {
	out := make([]setlist.SongID, len(recs))
	for i, r := range recs {
		out[i] = r.Song
	}
	return out
}

func TestRecommendations(t *testing.T) {
	eachTarget(t, func(t *testing.T, target redistest.Target) {
		w := newWorldOn(t, target)
		in := w.start(t, fastConfig(), nil)
		in.waitModel(t, 1)

		t.Run("Batch", func(t *testing.T) {
			a := in.recs(t, "batchy", 5)
			if a.Source != "batch" || a.ModelVersion != 1 || a.UserID != "batchy" {
				t.Fatalf("answer %+v, want a batch answer of version 1", a)
			}
			if want := songsOf(w.v1.Lists["batchy"][:5]); !slices.Equal(a.songs(), want) {
				t.Fatalf("songs %v, want the stored list %v", a.songs(), want)
			}
			it := a.Items[0]
			if it.Artist == "" || !strings.HasPrefix(it.Track, "Track ") || float32(it.Score) != w.v1.Lists["batchy"][0].Score {
				t.Fatalf("item %+v is not named and scored as stored", it)
			}
		})
		t.Run("EscapedUserID", func(t *testing.T) {
			a := in.recs(t, weird, 3)
			if a.Source != "batch" || a.UserID != weird || !slices.Equal(a.songs(), songsOf(w.v1.Lists[weird][:3])) {
				t.Fatalf("answer %+v", a)
			}
		})
		t.Run("LargerThanKFoldsIn", func(t *testing.T) {
			a := in.recs(t, "batchy", 20)
			if a.Source != "fold-in" || len(a.Items) != 20 {
				t.Fatalf("n=20 > K=10: source %s with %d items, want fold-in with 20", a.Source, len(a.Items))
			}
			for _, s := range a.songs() {
				if slices.Index(w.songs, s) < 10 {
					t.Fatalf("fold-in recommended song %d that batchy played", s)
				}
			}
		})
		t.Run("FoldIn", func(t *testing.T) {
			a := in.recs(t, "folder", 5)
			if a.Source != "fold-in" || len(a.Items) != 5 {
				t.Fatalf("answer %+v, want 5 fold-in songs", a)
			}
			for i, it := range a.Items {
				if idx := slices.Index(w.songs, it.SongID); idx < 10 || idx >= 40 {
					t.Fatalf("item %d: song index %d: reacted to, or not in the catalog", i, idx)
				}
				if i < 3 && (it.Because == nil || slices.Index(w.songs, it.Because.SongID) >= 10) {
					t.Fatalf("item %d: because %+v, want one of folder's songs", i, it.Because)
				}
			}
			// The answer is cached in Redis under the version.
			if n := w.rdb.Exists(context.Background(), keyspace.NewKeys(w.prefix).FoldIn(1, "folder")).Val(); n != 1 {
				t.Fatal("fold-in answer not cached in Redis")
			}
		})
		t.Run("Popular", func(t *testing.T) {
			a := in.recs(t, "newbie", 5)
			if a.Source != "popular" || !slices.Equal(a.songs(), songsOf(w.v1.Popular[:5])) {
				t.Fatalf("answer %+v, want the first 5 popular songs", a)
			}
		})
		t.Run("PopularWithoutDisliked", func(t *testing.T) {
			a := in.recs(t, "disliker", 5)
			if a.Source != "popular" || !slices.Equal(a.songs(), songsOf(w.v1.Popular[2:7])) {
				t.Fatalf("answer %v (%s), want popular minus the two disliked songs", a.songs(), a.Source)
			}
		})
		t.Run("Errors", func(t *testing.T) {
			wantStatus(t, in.get(t, "/v1/users/nobody/recommendations"), http.StatusNotFound)
			for _, n := range []string{"0", "101", "x", "-1"} {
				wantStatus(t, in.get(t, "/v1/users/batchy/recommendations?n="+n), http.StatusBadRequest)
			}
			wantStatus(t, in.get(t, "/v1/users/tab%09here/recommendations"), http.StatusBadRequest)
		})
	})
}

func TestReactionChangesAnswerAndNeverRecommendsReacted(t *testing.T) {
	eachTarget(t, func(t *testing.T, target redistest.Target) {
		w := newWorldOn(t, target)
		in := w.start(t, fastConfig(), nil)
		in.waitModel(t, 1)

		before := in.recs(t, "batchy", 5)
		liked, disliked := before.Items[0].SongID, before.Items[1].SongID
		r := in.do(t, http.MethodPost, "/v1/users/batchy/reactions", map[string]any{"song_id": liked, "kind": "like"})
		wantStatus(t, r, http.StatusCreated)
		after := in.recs(t, "batchy", 5)
		if after.Source != "fold-in" || slices.Contains(after.songs(), liked) {
			t.Fatalf("after liking %d: %s %v; want a fold-in without the liked song", liked, after.Source, after.songs())
		}
		r = in.do(t, http.MethodPost, "/v1/users/batchy/reactions", map[string]any{"song_id": disliked, "kind": "dislike"})
		wantStatus(t, r, http.StatusCreated)
		for _, n := range []int{5, 10, 30} {
			a := in.recs(t, "batchy", n)
			if slices.Contains(a.songs(), liked) || slices.Contains(a.songs(), disliked) {
				t.Fatalf("n=%d: %v recommends a liked (%d) or disliked (%d) song back", n, a.songs(), liked, disliked)
			}
		}
		// A user whose only signal is a dislike falls back to popular without it.
		pop := in.recs(t, "newbie", 3)
		wantStatus(t, in.do(t, http.MethodPost, "/v1/users/newbie/reactions", map[string]any{"song_id": pop.Items[0].SongID, "kind": "dislike"}), http.StatusCreated)
		if a := in.recs(t, "newbie", 3); a.Source != "popular" || slices.Contains(a.songs(), pop.Items[0].SongID) {
			t.Fatalf("after a dislike: %s %v", a.Source, a.songs())
		}
		// Deleting the like changes the answer again and is a 204, then 404.
		wantStatus(t, in.do(t, http.MethodDelete, fmt.Sprintf("/v1/users/batchy/reactions/%d?kind=like", liked), nil), http.StatusNoContent)
		gone := in.do(t, http.MethodDelete, fmt.Sprintf("/v1/users/batchy/reactions/%d?kind=like", liked), nil)
		wantStatus(t, gone, http.StatusNotFound)
		// The detail names the reaction, not an internal operation (issue 26 item 12).
		if want := fmt.Sprintf(`"detail":"like of song %d by \"batchy\" not found"`, liked); !strings.Contains(string(gone.body), want) {
			t.Errorf("404 body %s, want %s", gone.body, want)
		}
		if a := in.recs(t, "batchy", 5); a.Source != "fold-in" || slices.Contains(a.songs(), disliked) {
			t.Fatalf("after unliking: %s %v", a.Source, a.songs())
		}
	})
}

func TestNearCacheAcrossReplicas(t *testing.T) {
	eachTarget(t, func(t *testing.T, target redistest.Target) {
		w := newWorldOn(t, target)
		a := w.start(t, fastConfig(), nil)
		b := w.start(t, fastConfig(), nil)
		a.waitModel(t, 1)
		b.waitModel(t, 1)
		b.waitNearCache(t, "batchy")

		first := b.recs(t, "batchy", 5)
		hits := b.metric(t, "setlist_serve_near_cache_hits_total")
		if again := b.recs(t, "batchy", 5); !slices.Equal(again.songs(), first.songs()) {
			t.Fatal("a repeated request changed its answer")
		}
		if got := b.metric(t, "setlist_serve_near_cache_hits_total"); got != hits+1 {
			t.Fatalf("near cache hits %v → %v, want +1", hits, got)
		}
		// A reaction on replica a must reach b's near cache.
		liked := first.Items[0].SongID
		wantStatus(t, a.do(t, http.MethodPost, "/v1/users/batchy/reactions", map[string]any{"song_id": liked, "kind": "like"}), http.StatusCreated)
		waitFor(t, "replica b to drop batchy's cached answer", func() bool {
			got := b.recs(t, "batchy", 5)
			return got.Source == "fold-in" && !slices.Contains(got.songs(), liked)
		})
		if b.metric(t, `setlist_serve_near_cache_invalidations_total{reason="user"}`) < 1 {
			t.Fatal("replica b counted no user invalidation")
		}
	})
}

func TestVersionSwitchUnderLoad(t *testing.T) {
	eachTarget(t, func(t *testing.T, target redistest.Target) {
		w := newWorldOn(t, target)
		v2 := w.version(2, w.songs[20:60])
		// No polling within the test: the switch must reach the replicas
		// by the "version 2" event, on a cluster too.
		cfg := fastConfig()
		cfg.Recs.PollInterval = time.Hour
		a := w.start(t, cfg, nil)
		b := w.start(t, cfg, nil)
		a.waitModel(t, 1)
		b.waitModel(t, 1)

		catalogs := map[int64][]setlist.SongID{1: w.v1.Songs, 2: v2.Songs}
		lists := map[int64]map[setlist.UserID][]model.Rec{1: w.v1.Lists, 2: v2.Lists}
		users := []string{"batchy", weird, "folder", "newbie", "disliker"}
		ctx, stop := context.WithCancel(context.Background())
		var (
			wg       sync.WaitGroup
			requests atomic.Int64
			seen     [3]atomic.Int64
			mu       sync.Mutex
			failures []string
		)
		fail := func(format string, args ...any) {
			mu.Lock()
			defer mu.Unlock()
			if len(failures) < 10 {
				failures = append(failures, fmt.Sprintf(format, args...))
			}
		}
		for g := range 8 {
			in := []*instance{a, b}[g%2]
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ctx.Err() == nil && i < 20000; i++ {
					u, n := users[(g+i)%len(users)], 3+i%5
					r, err := in.try(http.MethodGet, fmt.Sprintf("/v1/users/%s/recommendations?n=%d", url.PathEscape(u), n), nil)
					requests.Add(1)
					if err != nil || r.status != http.StatusOK {
						fail("%s: %v status %d %s", u, err, r.status, r.body)
						continue
					}
					var ans recsAnswer
					if err := jsonUnmarshal(r.body, &ans); err != nil {
						fail("decode: %v", err)
						continue
					}
					v := ans.ModelVersion
					if v != 1 && v != 2 {
						fail("version %d", v)
						continue
					}
					seen[v].Add(1)
					for _, s := range ans.songs() {
						if !slices.Contains(catalogs[v], s) {
							fail("%s: song %d of a version-%d answer is not in that version", u, s, v)
						}
					}
					if ans.Source == "batch" {
						if want := songsOf(lists[v][setlist.UserID(u)][:n]); !slices.Equal(ans.songs(), want) {
							fail("%s: batch answer of version %d is %v, want %v", u, v, ans.songs(), want)
						}
					}
				}
			}()
		}
		time.Sleep(300 * time.Millisecond)
		if err := fixture.Publish(context.Background(), w.rdb, w.prefix, v2); err != nil {
			t.Fatal(err)
		}
		a.waitModel(t, 2)
		b.waitModel(t, 2)
		time.Sleep(300 * time.Millisecond)
		stop()
		wg.Wait()
		for _, f := range failures {
			t.Error(f)
		}
		if seen[1].Load() == 0 || seen[2].Load() == 0 {
			t.Fatalf("answers by version: v1 %d, v2 %d; the switch was not exercised under load", seen[1].Load(), seen[2].Load())
		}
		t.Logf("%d requests across the switch: %d on v1, %d on v2", requests.Load(), seen[1].Load(), seen[2].Load())
		if got := a.metric(t, "setlist_serve_model_version"); got != 2 {
			t.Fatalf("setlist_serve_model_version = %v, want 2", got)
		}
		if got := a.metric(t, `setlist_serve_model_metric{name="ndcg@5"}`); got != 0.2 {
			t.Fatalf("ndcg@5 gauge = %v, want version 2's 0.2", got)
		}
	})
}

func TestMetricsMove(t *testing.T) {
	w := newWorld(t)
	in := w.start(t, fastConfig(), nil)
	in.waitModel(t, 1)
	const route = `setlist_serve_http_request_duration_seconds_count{code="200",method="GET",route="/v1/users/:user_id/recommendations"}`
	series := []string{
		`setlist_serve_recommendations_total{source="batch"}`,
		`setlist_serve_recommendations_total{source="fold-in"}`,
		`setlist_serve_recommendations_total{source="popular"}`,
		`setlist_serve_foldin_duration_seconds_count{phase="solve"}`,
		`setlist_serve_foldin_duration_seconds_count{phase="postgres_read"}`,
		`setlist_serve_near_cache_misses_total`,
		route,
	}
	before := map[string]float64{}
	for _, s := range series {
		before[s] = in.metric(t, s)
	}
	in.recs(t, "batchy", 5)
	in.recs(t, "folder", 5)
	in.recs(t, "newbie", 5)
	want := map[string]float64{series[0]: 1, series[1]: 1, series[2]: 1, series[3]: 1, series[4]: 2, series[5]: 3, route: 3}
	for s, d := range want {
		if got := in.metric(t, s); got != before[s]+d {
			t.Errorf("%s: %v → %v, want +%v", s, before[s], got, d)
		}
	}
	wantStatus(t, in.get(t, "/v1/users/nobody/recommendations"), http.StatusNotFound)
	if in.metric(t, `setlist_serve_http_request_duration_seconds_count{code="404",method="GET",route="/v1/users/:user_id/recommendations"}`) != 1 {
		t.Error("a 404 was not recorded under its route pattern")
	}
	for _, s := range []string{"setlist_serve_model_version", "setlist_serve_model_age_seconds", `setlist_serve_model_metric{name="ndcg@5"}`, "setlist_serve_model_trained_timestamp_seconds"} {
		if in.metric(t, s) <= 0 {
			t.Errorf("%s is not set", s)
		}
	}
}

func TestEndpoints(t *testing.T) {
	w := newWorld(t)
	in := w.start(t, fastConfig(), nil)
	in.waitModel(t, 1)

	t.Run("CreateUser", func(t *testing.T) {
		r := in.do(t, http.MethodPost, "/v1/users", map[string]any{"user_id": "zoe", "display_name": "Zoë",
			"likes": []any{map[string]any{"song_id": w.songs[0]}, map[string]any{"artist": "Artist 1", "track": "Track 1"}}})
		wantStatus(t, r, http.StatusCreated)
		var u setlist.User
		r.json(t, &u)
		if u.ID != "zoe" || u.DisplayName != "Zoë" || r.header.Get("Location") != "/v1/users/zoe" {
			t.Fatalf("created %+v, Location %q", u, r.header.Get("Location"))
		}
		if a := in.recs(t, "zoe", 5); a.Source != "fold-in" {
			t.Fatalf("a new user with likes gets %s, want fold-in", a.Source)
		}
		wantStatus(t, in.do(t, http.MethodPost, "/v1/users", map[string]any{"user_id": "zoe"}), http.StatusConflict)
		for body, field := range map[string]string{
			`{"user_id": ""}`:                   "user_id",
			`{"user_id": 5}`:                    "user_id",
			`{"user_id": "x", "likes": [{}]}`:   "likes[0]",
			`{"user_id": "x", "colour": "red"}`: "colour",
			`{"user_id": "x", "likes": [{"artist": "No", "track": "Such"}]}`: "Such",
			`{"user_id": "x"`: "JSON",
			``:                "body",
		} {
			r := in.do(t, http.MethodPost, "/v1/users", body)
			wantStatus(t, r, http.StatusBadRequest)
			if !strings.Contains(string(r.body), field) {
				t.Errorf("%s: error %s does not name %s", body, r.body, field)
			}
		}
		wantStatus(t, in.get(t, "/v1/users/x"), http.StatusNotFound)
		r = in.get(t, "/v1/users/zoe")
		wantStatus(t, r, http.StatusOK)
		r = in.get(t, "/v1/users/zoe/reactions")
		wantStatus(t, r, http.StatusOK)
		var list struct{ Reactions []store.ReactedSong }
		r.json(t, &list)
		if len(list.Reactions) != 2 {
			t.Fatalf("zoe has %d reactions, want 2 likes", len(list.Reactions))
		}
	})
	t.Run("SearchUsers", func(t *testing.T) {
		r := in.get(t, "/v1/users?limit=2")
		wantStatus(t, r, http.StatusOK)
		var page struct {
			Users []setlist.User
			Next  string `json:"next_cursor"`
		}
		r.json(t, &page)
		if len(page.Users) != 2 || page.Next == "" {
			t.Fatalf("page %+v, want 2 users and a cursor", page)
		}
		r = in.get(t, "/v1/users?limit=100&cursor="+page.Next)
		wantStatus(t, r, http.StatusOK)
		var rest struct{ Users []setlist.User }
		r.json(t, &rest)
		if len(rest.Users) < 3 || slices.ContainsFunc(rest.Users, func(u setlist.User) bool { return u.ID == page.Users[0].ID }) {
			t.Fatalf("second page %+v overlaps the first or is short", rest.Users)
		}
		r = in.get(t, "/v1/users?query=name+of+fold")
		r.json(t, &rest)
		if len(rest.Users) != 1 || rest.Users[0].ID != "folder" {
			t.Fatalf("substring search found %+v", rest.Users)
		}
		wantStatus(t, in.get(t, "/v1/users?limit=0"), http.StatusBadRequest)
		wantStatus(t, in.get(t, "/v1/users?limit=101"), http.StatusBadRequest)
		wantStatus(t, in.get(t, "/v1/users?cursor=garbage"), http.StatusBadRequest)
	})
	t.Run("Reactions", func(t *testing.T) {
		wantStatus(t, in.do(t, http.MethodPost, "/v1/users/folder/reactions", map[string]any{"artist": "Artist 30", "track": "Track 30", "kind": "play"}), http.StatusCreated)
		r := in.do(t, http.MethodPost, "/v1/users/folder/reactions", map[string]any{"song_id": w.songs[30], "kind": "play"})
		wantStatus(t, r, http.StatusCreated)
		var re setlist.Reaction
		r.json(t, &re)
		if re.Weight != 2 || re.Kind != setlist.Play {
			t.Fatalf("second play %+v, want weight 2", re)
		}
		wantStatus(t, in.do(t, http.MethodPost, "/v1/users/nobody/reactions", map[string]any{"song_id": w.songs[0], "kind": "like"}), http.StatusNotFound)
		wantStatus(t, in.do(t, http.MethodPost, "/v1/users/folder/reactions", map[string]any{"song_id": 999999, "kind": "like"}), http.StatusBadRequest)
		wantStatus(t, in.do(t, http.MethodPost, "/v1/users/folder/reactions", map[string]any{"song_id": w.songs[0], "kind": "love"}), http.StatusBadRequest)
		wantStatus(t, in.do(t, http.MethodDelete, fmt.Sprintf("/v1/users/folder/reactions/%d", w.songs[0]), nil), http.StatusBadRequest)
		wantStatus(t, in.do(t, http.MethodDelete, fmt.Sprintf("/v1/users/folder/reactions/%d", w.songs[0]), `{"kind":"like"}`), http.StatusNoContent)
		wantStatus(t, in.do(t, http.MethodDelete, "/v1/users/folder/reactions/abc?kind=like", nil), http.StatusBadRequest)
	})
	t.Run("BodyTooLarge", func(t *testing.T) {
		wantStatus(t, in.oversized(t, "/v1/users", 70<<10), http.StatusRequestEntityTooLarge)
	})
	t.Run("Songs", func(t *testing.T) {
		r := in.get(t, "/v1/songs?query=track+1&limit=5")
		wantStatus(t, r, http.StatusOK)
		var res struct{ Songs []setlist.Song }
		r.json(t, &res)
		if len(res.Songs) != 5 {
			t.Fatalf("typeahead gave %d songs, want 5", len(res.Songs))
		}
		wantStatus(t, in.get(t, "/v1/songs?limit=1000"), http.StatusBadRequest)
	})
	t.Run("Similar", func(t *testing.T) {
		r := in.get(t, fmt.Sprintf("/v1/songs/%d/similar?n=4", w.songs[3]))
		wantStatus(t, r, http.StatusOK)
		var res struct {
			Song         setlist.Song
			ModelVersion int64 `json:"model_version"`
			Items        []setlist.Song
		}
		r.json(t, &res)
		if res.Song.ID != w.songs[3] || len(res.Items) != 4 || res.ModelVersion != 1 {
			t.Fatalf("similar %+v", res)
		}
		r = in.get(t, fmt.Sprintf("/v1/songs/%d/similar", w.songs[50]))
		wantStatus(t, r, http.StatusNotFound)
		if !strings.Contains(string(r.body), "not in model version 1") {
			t.Fatalf("a song the model does not know: %s", r.body)
		}
		r = in.get(t, "/v1/songs/999999/similar")
		wantStatus(t, r, http.StatusNotFound)
		if strings.Contains(string(r.body), "model version") {
			t.Fatalf("an unknown song is reported as unknown to the model: %s", r.body)
		}
		wantStatus(t, in.get(t, "/v1/songs/0/similar"), http.StatusBadRequest)
	})
	t.Run("Model", func(t *testing.T) {
		r := in.get(t, "/v1/model")
		wantStatus(t, r, http.StatusOK)
		var m struct {
			Version    int64
			Metrics    map[string]float64
			AgeSeconds float64 `json:"age_seconds"`
			Runs       []any
		}
		r.json(t, &m)
		if m.Version != 1 || m.Metrics["ndcg@5"] != 0.1 || m.AgeSeconds <= 0 || m.Runs == nil {
			t.Fatalf("model %s", r.body)
		}
	})
	t.Run("Health", func(t *testing.T) {
		wantStatus(t, in.get(t, "/healthz"), http.StatusOK)
		wantStatus(t, in.get(t, "/readyz"), http.StatusOK)
		wantStatus(t, in.get(t, "/v1/nothing"), http.StatusNotFound)
		r := in.get(t, "/readyz")
		var ready struct{ Checks map[string]string }
		r.json(t, &ready)
		if ready.Checks["postgres"] != "ok" || ready.Checks["redis"] != "ok" {
			t.Errorf("readyz checks %v, want postgres and redis ok", ready.Checks)
		}
	})
	t.Run("Methods", func(t *testing.T) {
		// A path that exists under other methods: 405 and Allow.
		for _, c := range []struct{ method, path, allow string }{
			{http.MethodPut, "/v1/users", "GET, HEAD, POST"},
			{http.MethodDelete, "/v1/users/zoe", "GET, HEAD"},
			{http.MethodPatch, "/v1/users/zoe/reactions", "GET, HEAD, POST"},
			{http.MethodGet, "/v1/users/zoe/reactions/12", "DELETE"},
			{http.MethodPost, "/v1/model", "GET, HEAD"},
			{http.MethodPost, "/readyz", "GET, HEAD"},
			{http.MethodPut, "/", "GET, HEAD"},
		} {
			r := in.do(t, c.method, c.path, nil)
			wantStatus(t, r, http.StatusMethodNotAllowed)
			if got := r.header.Get("Allow"); got != c.allow {
				t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, got, c.allow)
			}
			if !strings.Contains(string(r.body), c.method) || !strings.Contains(string(r.body), "allowed") {
				t.Errorf("%s %s: body %s does not say which methods are allowed", c.method, c.path, r.body)
			}
		}
		// A path that exists under no method is still 404.
		wantStatus(t, in.do(t, http.MethodPost, "/v1/nothing", nil), http.StatusNotFound)
		wantStatus(t, in.do(t, http.MethodGet, "/v1/users/zoe/likes", nil), http.StatusNotFound)
	})
	t.Run("RequestID", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, in.base+"/healthz", nil)
		req.Header.Set("X-Request-ID", "abc-123")
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if got := res.Header.Get("X-Request-ID"); got != "abc-123" {
			t.Fatalf("X-Request-ID %q, want it echoed", got)
		}
		if got := in.get(t, "/healthz").header.Get("X-Request-ID"); got == "" {
			t.Fatal("no request id generated")
		}
	})
	t.Run("Page", func(t *testing.T) {
		r := in.get(t, "/")
		wantStatus(t, r, http.StatusOK)
		if !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") || r.header.Get("Cache-Control") != "no-cache" || r.header.Get("ETag") == "" {
			t.Fatalf("page headers %v", r.header)
		}
		req, _ := http.NewRequest(http.MethodGet, in.base+"/", nil)
		req.Header.Set("If-None-Match", r.header.Get("ETag"))
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNotModified {
			t.Fatalf("revalidation: %d, want 304", res.StatusCode)
		}
		wantStatus(t, in.get(t, "/no-such-file.js"), http.StatusNotFound)
	})
}

func TestNoModelYet(t *testing.T) {
	e := newEnv(t)
	in := e.start(t, fastConfig(), nil)
	r := in.get(t, "/readyz")
	wantStatus(t, r, http.StatusServiceUnavailable)
	if !strings.Contains(string(r.body), "model") {
		t.Fatalf("readyz %s does not name the model", r.body)
	}
	if err := fixture.Users(context.Background(), e.db, []setlist.UserID{"u"}); err != nil {
		t.Fatal(err)
	}
	r = in.get(t, "/v1/users/u/recommendations")
	wantStatus(t, r, http.StatusServiceUnavailable)
	if r.header.Get("Retry-After") == "" || !strings.Contains(string(r.body), "no model is published yet") {
		t.Fatalf("503 %v %s: want Retry-After and a detail saying no model is published", r.header, r.body)
	}
}

func TestPostgresDown(t *testing.T) {
	w := newWorld(t)
	pg := newFaultProxy(t, "127.0.0.1:5432")
	db := openDB(t, strings.Replace(w.dbURL, "127.0.0.1:5432", pg.Addr(), 1))
	in := w.start(t, fastConfig(), db)
	in.waitModel(t, 1)
	wantStatus(t, in.get(t, "/readyz"), http.StatusOK)
	in.recs(t, "batchy", 5) // served from Redis and memory

	pg.Cut()
	r := in.do(t, http.MethodPost, "/v1/users/batchy/reactions", map[string]any{"song_id": w.songs[0], "kind": "like"})
	wantStatus(t, r, http.StatusServiceUnavailable)
	if r.header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	wantStatus(t, in.do(t, http.MethodPost, "/v1/users", map[string]any{"user_id": "new"}), http.StatusServiceUnavailable)
	r = in.get(t, "/readyz")
	wantStatus(t, r, http.StatusServiceUnavailable)
	if !strings.Contains(string(r.body), "postgres") || strings.Contains(string(r.body), `"redis":"ping`) {
		t.Fatalf("readyz %s should name postgres only", r.body)
	}
	// Batch hits need no database.
	if a := in.recs(t, weird, 3); a.Source != "batch" {
		t.Fatalf("batch answer with postgres down: %+v", a)
	}
	if in.metric(t, `setlist_serve_store_errors_total{op="user_reactions",store="postgres"}`) != 0 {
		t.Fatal("no fold-in was attempted, yet a postgres read error was counted")
	}
}

func TestGracefulShutdownDrainsInFlight(t *testing.T) {
	w := newWorld(t)
	in := w.start(t, fastConfig(), nil)
	in.waitModel(t, 1)
	addr := strings.TrimPrefix(in.base, "http://")

	// An in-flight request: headers sent, body not yet complete.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := fmt.Sprintf(`{"song_id": %d, "kind": "like"}`, w.songs[12])
	fmt.Fprintf(conn, "POST /v1/users/folder/reactions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body[:5])
	time.Sleep(100 * time.Millisecond)

	shut := make(chan error, 1)
	go func() { shut <- in.srv.Shutdown(context.Background()) }()
	waitFor(t, "the listener to close", func() bool {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	select {
	case err := <-shut:
		t.Fatalf("shutdown returned (%v) with a request in flight", err)
	default:
	}
	if _, err := conn.Write([]byte(body[5:])); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufioReader(conn), nil)
	if err != nil {
		t.Fatalf("the in-flight request got no response: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("in-flight request: status %d, want 201", res.StatusCode)
	}
	select {
	case err := <-shut:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("shutdown did not finish after the last request")
	}
	if err := <-in.done; err != nil {
		t.Fatalf("Serve returned %v after a clean shutdown", err)
	}
}

func TestRedisDownFallsBackToFoldIn(t *testing.T) {
	w := newWorld(t)
	rp := newFaultProxy(t, "127.0.0.1:6379")
	opts := *w.single(t).Options()
	opts.Addr = rp.Addr()
	opts.MaxRetries = -1
	viaProxy := redis.NewClient(&opts)
	t.Cleanup(func() { viaProxy.Close() })
	e := *w.env
	e.rdb = viaProxy
	in := e.start(t, fastConfig(), nil)
	in.waitModel(t, 1)
	if a := in.recs(t, "batchy", 5); a.Source != "batch" {
		t.Fatalf("before the outage: %s", a.Source)
	}

	rp.Cut()
	// Without the events channel the near cache is bypassed (and emptied):
	// another replica's invalidations could be missed.
	waitFor(t, "the near cache to be emptied", func() bool { return in.metric(t, "setlist_serve_near_cache_entries") == 0 })
	r := in.get(t, "/readyz")
	wantStatus(t, r, http.StatusServiceUnavailable)
	if !strings.Contains(string(r.body), "redis") || strings.Contains(string(r.body), `"postgres":"ping`) {
		t.Fatalf("readyz %s should name redis only", r.body)
	}
	// The model is in memory and the reactions in PostgreSQL: every user
	// still gets an answer, by fold-in, and liked songs stay excluded.
	a := in.recs(t, "batchy", 5)
	if a.Source != "fold-in" || a.ModelVersion != 1 {
		t.Fatalf("with redis down: %+v", a)
	}
	for _, s := range a.songs() {
		if slices.Index(w.songs, s) < 10 {
			t.Fatalf("recommended song %d batchy played", s)
		}
	}
	if in.metric(t, `setlist_serve_store_errors_total{op="user_state",store="redis"}`) < 1 {
		t.Fatal("the failed Redis read was not counted")
	}
	// A write cannot be marked in Redis, so it is not committed either (a
	// like committed without its mark would be served back from the batch
	// list once Redis returns): 503 saying so, nothing stored, nothing
	// counted.
	r = in.do(t, http.MethodPost, "/v1/users/batchy/reactions", map[string]any{"song_id": w.songs[30], "kind": "like"})
	wantStatus(t, r, http.StatusServiceUnavailable)
	if !strings.Contains(string(r.body), "not saved") {
		t.Errorf("a refused write's answer should say it was not saved: %s", r.body)
	}
	var n int
	if err := w.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM reactions r JOIN users u ON u.id = r.user_id
		WHERE u.external_id = 'batchy' AND r.song_id = $1`, w.songs[30]).Scan(&n); err != nil || n != 0 {
		t.Errorf("the refused like is stored: %d rows (%v)", n, err)
	}
	if n := in.metric(t, `setlist_serve_attributions_total{kind="like",outcome="unattributed"}`); n != 0 {
		t.Errorf("unattributed likes counted %v, want 0", n)
	}
}
