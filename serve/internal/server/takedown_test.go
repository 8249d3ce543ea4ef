package server_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/model"
	"github.com/setlist/setlist/internal/pipeline"
	"github.com/setlist/setlist/internal/store"
	"github.com/setlist/setlist/internal/synth"
	"github.com/setlist/setlist/serve/internal/fixture"
)

// takedownWorld is 60 songs and 150 users whose batch lists (K=10) all
// start with one hot song; "folder" is folded in (likes 0–4).
type takedownWorld struct {
	*world
	users []string
	hot   setlist.SongID
}

func newTakedownWorld(t *testing.T) *takedownWorld {
	t.Helper()
	w := newWorld(t)
	tw := &takedownWorld{world: w, hot: w.songs[30]}
	v := w.version(3, w.songs[:40])
	ids := v.HotLists(150, 10, tw.hot, w.songs[:30], 3) // songs 0–29: never the hot one
	for _, u := range ids {
		tw.users = append(tw.users, string(u))
	}
	if err := fixture.Users(context.Background(), w.db, ids); err != nil {
		t.Fatal(err)
	}
	if err := fixture.Publish(context.Background(), w.rdb, w.prefix, v); err != nil {
		t.Fatal(err)
	}
	return tw
}

// setAvailable hides or shows song as `batch catalog hide|show` does: the
// catalog write, then the announcement. It returns when the announcement
// was published.
func (tw *takedownWorld) setAvailable(t *testing.T, song setlist.SongID, available bool) {
	t.Helper()
	if err := fixture.SetAvailable(context.Background(), tw.db, tw.rdb, tw.prefix, song, available); err != nil {
		t.Fatal(err)
	}
}

// similarIDs is the song ids of a similar-songs answer, in order.
func similarIDs(t testing.TB, r response) []setlist.SongID {
	t.Helper()
	var a struct {
		Items []struct {
			SongID setlist.SongID `json:"song_id"`
		} `json:"items"`
	}
	r.json(t, &a)
	out := make([]setlist.SongID, len(a.Items))
	for i, it := range a.Items {
		out[i] = it.SongID
	}
	return out
}

// similar is GET /v1/songs/{song}/similar?n=.
func (in *instance) similarSongs(t *testing.T, song setlist.SongID, n int) []setlist.SongID {
	t.Helper()
	r := in.get(t, fmt.Sprintf("/v1/songs/%d/similar?n=%d", song, n))
	wantStatus(t, r, http.StatusOK)
	return similarIDs(t, r)
}

// TestTakedownWithinASecond hides a song that heads 150 users' batch lists
// on two replicas with warm near caches: one second later no batch,
// fold-in or similar-songs answer of either shows it, and every list still
// holds n songs (from the deeper stored list, source batch); showing it
// again restores the lists within a second. Polling is off: the event is
// what must carry the change.
func TestTakedownWithinASecond(t *testing.T) {
	tw := newTakedownWorld(t)
	cfg := fastConfig()
	cfg.Recs.PollInterval = time.Hour
	a := tw.start(t, cfg, nil)
	b := tw.start(t, cfg, nil)
	replicas := []*instance{a, b}
	for _, in := range replicas {
		in.waitModel(t, 3)
		in.waitNearCache(t, tw.users[0])
	}
	// Warm: every user's batch answer (and the fold-in's) is in both near
	// caches, and holds the hot song.
	seeds := tw.songs[:5]
	for _, in := range replicas {
		for _, u := range tw.users {
			if got := in.recs(t, u, 5); got.Source != "batch" || got.Items[0].SongID != tw.hot {
				t.Fatalf("before the takedown %s got %s %v, want batch starting with %d", u, got.Source, got.songs(), tw.hot)
			}
		}
		in.recs(t, "folder", 10)
	}
	sawHot := false
	for _, s := range seeds {
		sawHot = sawHot || slices.Contains(a.similarSongs(t, s, 39), tw.hot)
	}
	if !sawHot {
		t.Fatal("the hot song is in no similar-songs answer before the takedown: the test proves nothing")
	}

	tw.setAvailable(t, tw.hot, false)
	time.Sleep(time.Second)
	check := func(when string, wantHot bool) {
		t.Helper()
		for ri, in := range replicas {
			for _, u := range tw.users {
				got := in.recs(t, u, 5)
				if len(got.Items) != 5 || got.Source != "batch" || slices.Contains(got.songs(), tw.hot) != wantHot {
					t.Fatalf("%s: replica %d answered %s %s %v (hot song %d shown: want %v, 5 songs)", when, ri, u, got.Source, got.songs(), tw.hot, wantHot)
				}
			}
			if got := in.recs(t, "folder", 10); len(got.Items) != 10 || (!wantHot && slices.Contains(got.songs(), tw.hot)) {
				t.Fatalf("%s: replica %d folded folder in as %v", when, ri, got.songs())
			}
			for _, s := range seeds {
				if got := in.similarSongs(t, s, 39); !wantHot && (slices.Contains(got, tw.hot) || len(got) != 38) {
					t.Fatalf("%s: replica %d similar to %d: %v", when, ri, s, got)
				}
			}
		}
	}
	check("1 s after the takedown", false)
	for _, in := range replicas {
		if got := in.metric(t, "setlist_serve_catalog_hidden_songs"); got != 1 {
			t.Fatalf("hidden songs gauge %v, want 1", got)
		}
	}
	wantStatus(t, a.get(t, fmt.Sprintf("/v1/songs/%d/similar", tw.hot)), http.StatusNotFound)

	tw.setAvailable(t, tw.hot, true)
	time.Sleep(time.Second)
	check("1 s after showing it again", true)

	// Hide while a train publishes: the new version's lists still hold the
	// song (its snapshot predates the takedown); it never serves it.
	tw.setAvailable(t, tw.hot, false)
	v4 := tw.version(4, tw.songs[:40])
	for _, u := range tw.users {
		v4.Lists[setlist.UserID(u)] = tw.v1.Lists["batchy"][:0:0]
		v4.Lists[setlist.UserID(u)] = append(v4.Lists[setlist.UserID(u)], model.Rec{Song: tw.hot, Score: 5})
		for j := range 9 {
			v4.Lists[setlist.UserID(u)] = append(v4.Lists[setlist.UserID(u)], model.Rec{Song: tw.songs[j+10], Score: float32(4 - j/3)})
		}
	}
	if err := fixture.Publish(context.Background(), tw.rdb, tw.prefix, v4); err != nil {
		t.Fatal(err)
	}
	for _, in := range replicas {
		in.waitModel(t, 4)
	}
	for _, in := range replicas {
		for _, u := range tw.users {
			if got := in.recs(t, u, 5); got.ModelVersion != 4 || len(got.Items) != 5 || slices.Contains(got.songs(), tw.hot) {
				t.Fatalf("version 4 answered %s %d %v", u, got.ModelVersion, got.songs())
			}
		}
	}
}

// TestCatalogMissedMessageHeals: a replica that missed the catalog event
// (the key raised without a message) applies the change on its next poll.
func TestCatalogMissedMessageHeals(t *testing.T) {
	tw := newTakedownWorld(t)
	a := tw.start(t, fastConfig(), nil) // polls every 200 ms
	a.waitModel(t, 3)
	seq, err := tw.db.SetAvailable(context.Background(), []setlist.SongID{tw.hot}, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.rdb.Set(context.Background(), keyspace.NewKeys(tw.prefix).Catalog(), seq, 0).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the poll to apply the hidden song", func() bool {
		return !slices.Contains(a.recs(t, tw.users[0], 5).songs(), tw.hot)
	})
}

// hidingPublisher is a train's publisher that takes a song down as the
// publish starts: after the train's snapshot and top-N (its lists hold
// the song), before any of its keys are written and its switch.
type hidingPublisher struct {
	*keyspace.Publisher
	hide func()
}

func (p hidingPublisher) Publish(ctx context.Context, v keyspace.Version, r keyspace.Release) (keyspace.Report, error) {
	p.hide()
	return p.Publisher.Publish(ctx, v, r)
}

// TestHideWhileTrainPublishes (issue 22): a real train publishes while a
// song is taken down. Its snapshot predates the hide, so its stored lists
// hold the song; two replicas with warm near caches switch to it and never
// serve the song, and every answer still holds n songs from the deeper
// stored list (source batch). The next train, whose snapshot has the song
// hidden, withholds it: its lists hold K available songs and the song
// where it ranks, which no answer shows while it is hidden. Showing it
// again brings it back within a second to every batch answer whose list
// ranks it among the first n, with no train.
func TestHideWhileTrainPublishes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var buf bytes.Buffer
	if _, err := synth.Write(&buf, synth.Config{Users: 300, Songs: 800, Reactions: 12000, Clusters: 8, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Import(ctx, &buf, store.ImportOptions{Source: "synth"}); err != nil {
		t.Fatal(err)
	}
	keys := keyspace.NewKeys(e.prefix)
	reader := keyspace.NewReader(e.rdb, e.prefix)
	pub := keyspace.NewPublisher(e.rdb, keys)
	f, it := 16, 6
	cfg := pipeline.Config{K: 20, Force: true, Threads: 2, Overrides: pipeline.Overrides{Factors: &f, Iterations: &it}}
	deps := pipeline.Deps{Source: e.db, Registry: e.db, Locker: e.db, Publisher: pub}
	first, err := pipeline.Run(ctx, cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	users, counts := listedSongs(t, e, first.Version)
	var hot setlist.SongID
	for s, c := range counts {
		if c > counts[hot] || (c == counts[hot] && s < hot) {
			hot = s
		}
	}
	if counts[hot] < 30 {
		t.Fatalf("the most listed song is in %d lists: the test proves little", counts[hot])
	}

	scfg := fastConfig()
	scfg.Recs.PollInterval = time.Hour
	replicas := []*instance{e.start(t, scfg, nil), e.start(t, scfg, nil)}
	for _, in := range replicas {
		in.waitModel(t, first.RunID)
		in.waitNearCache(t, string(users[0]))
		for _, u := range users {
			in.recs(t, string(u), 5)
		}
	}

	deps.Publisher = hidingPublisher{Publisher: pub, hide: func() {
		seq, err := e.db.SetAvailable(ctx, []setlist.SongID{hot}, false)
		if err != nil {
			t.Error(err)
			return
		}
		if err := reader.CatalogChanged(ctx, seq); err != nil {
			t.Error(err)
		}
	}}
	second, err := pipeline.Run(ctx, cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	if _, c := listedSongs(t, e, second.Version); c[hot] < 30 {
		t.Fatalf("version %d lists the song in %d lists: the hide was not after its snapshot", second.Version, c[hot])
	}
	check := func(v int64) {
		t.Helper()
		for _, in := range replicas {
			in.waitModel(t, v)
		}
		time.Sleep(time.Second)
		for ri, in := range replicas {
			for _, u := range users {
				got := in.recs(t, string(u), 5)
				if got.ModelVersion != v || got.Source != "batch" || len(got.Items) != 5 || slices.Contains(got.songs(), hot) {
					t.Fatalf("replica %d answered %s from version %d (%s): %v; want version %d, 5 batch songs without %d",
						ri, u, got.ModelVersion, got.Source, got.songs(), v, hot)
				}
			}
		}
	}
	check(second.RunID)

	deps.Publisher = pub
	third, err := pipeline.Run(ctx, cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	if _, c := listedSongs(t, e, third.Version); c[hot] < 30 {
		t.Fatalf("version %d, trained with the song hidden, withholds it in %d lists", third.Version, c[hot])
	}
	check(third.RunID)

	seq, err := e.db.SetAvailable(ctx, []setlist.SongID{hot}, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := reader.CatalogChanged(ctx, seq); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	back := 0
	for ri, in := range replicas {
		for _, u := range users {
			b, err := e.rdb.Get(ctx, keys.Recs(third.Version, u)).Bytes()
			if err != nil {
				t.Fatal(err)
			}
			stored, err := model.DecodeRecs(b)
			if err != nil {
				t.Fatal(err)
			}
			want := make([]setlist.SongID, 5)
			for i, r := range stored[:5] {
				want[i] = r.Song
			}
			got := in.recs(t, string(u), 5)
			if got.ModelVersion != third.RunID || got.Source != "batch" || !slices.Equal(got.songs(), want) {
				t.Fatalf("1 s after showing song %d again replica %d answered %s from version %d (%s): %v; want the stored list's first 5 %v",
					hot, ri, u, got.ModelVersion, got.Source, got.songs(), want)
			}
			if slices.Contains(want, hot) {
				back++
			}
		}
	}
	if back < 10 {
		t.Fatalf("the song came back to %d answers: the test proves little", back)
	}
}

// listedSongs reads every stored list of version v: the users with one,
// and in how many lists each song is.
func listedSongs(t *testing.T, e *env, v keyspace.Version) ([]setlist.UserID, map[setlist.SongID]int) {
	t.Helper()
	ctx := context.Background()
	rows, err := e.db.Pool.Query(ctx, `SELECT external_id FROM users ORDER BY external_id`)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	keys := keyspace.NewKeys(e.prefix)
	counts := map[setlist.SongID]int{}
	var users []setlist.UserID
	for _, id := range ids {
		b, err := e.rdb.Get(ctx, keys.Recs(v, setlist.UserID(id))).Bytes()
		if err != nil {
			continue
		}
		recs, err := model.DecodeRecs(b)
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, setlist.UserID(id))
		for _, r := range recs {
			counts[r.Song]++
		}
	}
	if len(users) == 0 {
		t.Fatalf("version %d has no lists", v)
	}
	return users, counts
}
