package storetest

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/store"
)

// testOnline: likes and dislikes stored with their attribution (kept on a
// repeated opinion, none for plays or when serve could not read what it
// shows), exposure upserts that add answers and raise users, and the
// online metrics of a hand-computed case.
func testOnline(t *testing.T, b Backend) {
	ctx := context.Background()
	importSample(t, b.DB)
	if _, err := b.DB.CreateUser(ctx, setlist.NewUser{ID: "dave"}); err != nil {
		t.Fatal(err)
	}
	w, l, bl := songID(t, b.DB, "Abba", "Waterloo"), songID(t, b.DB, "Beck", "Loser"), songID(t, b.DB, "Cher", "Believe")
	today := store.Day(time.Now())

	react := func(u setlist.UserID, song setlist.SongID, kind setlist.ReactionKind, shown *store.Shown) *store.Outcome {
		t.Helper()
		_, o, err := b.DB.ReactAttributed(ctx, u, setlist.SongRef{ID: song}, kind, shown)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	want := func(what string, got *store.Outcome, want store.Outcome) {
		t.Helper()
		if got == nil || *got != want {
			t.Errorf("%s: outcome %+v, want %+v", what, got, want)
		}
	}
	none, chal := setlist.ArmNone, setlist.ArmChallenger
	batch := func(songs ...setlist.SongID) *store.Shown {
		return &store.Shown{Version: 7, Arm: none, Source: setlist.SourceBatch, Songs: songs}
	}
	want("alice likes batch #2", react("alice", l, setlist.Like, batch(w, l, bl)),
		store.Outcome{Version: 7, Arm: none, Source: setlist.SourceBatch, Position: 2})
	want("alice likes it again, no longer shown", react("alice", l, setlist.Like, batch(w)),
		store.Outcome{Version: 7, Arm: none, Source: setlist.SourceBatch, Position: 2})
	if o := react("alice", w, setlist.Play, batch(w)); o != nil {
		t.Errorf("a play was attributed: %+v", o)
	}
	fold := &store.Shown{Version: 7, Arm: none, Source: setlist.SourceFoldIn, Songs: []setlist.SongID{bl, w}}
	want("bob likes fold-in #1", react("bob", bl, setlist.Like, fold),
		store.Outcome{Version: 7, Arm: none, Source: setlist.SourceFoldIn, Position: 1})
	want("bob dislikes fold-in #2", react("bob", w, setlist.Dislike, fold),
		store.Outcome{Version: 7, Arm: none, Source: setlist.SourceFoldIn, Position: 2})
	want("carol likes a song not shown", react("carol", l, setlist.Like, batch(w)), store.Outcome{Version: 7, Arm: none})
	want("carol dislikes batch #1", react("carol", w, setlist.Dislike, batch(w)),
		store.Outcome{Version: 7, Arm: none, Source: setlist.SourceBatch, Position: 1})
	if o := react("carol", bl, setlist.Like, nil); o != nil {
		t.Errorf("a like serve could not attribute: %+v", o)
	}
	pop := &store.Shown{Version: 8, Arm: chal, Source: setlist.SourcePopular, Songs: []setlist.SongID{w, l, bl}}
	want("dave likes popular #3", react("dave", bl, setlist.Like, pop),
		store.Outcome{Version: 8, Arm: chal, Source: setlist.SourcePopular, Position: 3})
	// A dislike turned like is a new opinion: attributed anew.
	want("dave dislikes popular #1", react("dave", w, setlist.Dislike, pop),
		store.Outcome{Version: 8, Arm: chal, Source: setlist.SourcePopular, Position: 1})
	want("dave turns it into a like, not shown now", react("dave", w, setlist.Like, &store.Shown{Version: 8, Arm: chal}),
		store.Outcome{Version: 8, Arm: chal})

	yesterday := store.Day(time.Now().Add(-24 * time.Hour))
	for _, rows := range [][]store.Exposure{
		{{Day: today, Version: 7, Source: setlist.SourceBatch, Arm: none, Answers: 5, Users: 2},
			{Day: today, Version: 8, Source: setlist.SourcePopular, Arm: chal, Answers: 4, Users: 2},
			{Day: yesterday, Version: 6, Source: setlist.SourceBatch, Arm: none, Answers: 9, Users: 9}},
		// A second replica: answers add up, users never go down.
		{{Day: today, Version: 7, Source: setlist.SourceBatch, Arm: none, Answers: 3, Users: 1},
			{Day: today, Version: 7, Source: setlist.SourceFoldIn, Arm: none, Answers: 2, Users: 1},
			{Day: today, Version: 8, Source: setlist.SourcePopular, Arm: chal, Answers: 0, Users: 3}},
	} {
		if err := b.DB.AddExposure(ctx, rows); err != nil {
			t.Fatal(err)
		}
	}
	if store.Day(time.Now()) != today {
		t.Skip("the UTC day changed during the test")
	}
	got, err := b.DB.OnlineMetrics(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	wantRows := []store.OnlineMetric{
		{Day: today, Version: 8, Source: setlist.SourcePopular, Arm: chal, Answers: 4, Users: 3, Likes: 1,
			PositiveRate: 1.0 / 3, MRR: 1.0 / 3},
		{Day: today, Version: 7, Source: setlist.SourceBatch, Arm: none, Answers: 8, Users: 2, Likes: 1, Dislikes: 1,
			PositiveRate: 0.5, NegativeRate: 0.5, MRR: 0.5},
		{Day: today, Version: 7, Source: setlist.SourceFoldIn, Arm: none, Answers: 2, Users: 1, Likes: 1, Dislikes: 1,
			PositiveRate: 1, NegativeRate: 1, MRR: 1},
	}
	wantMetrics(t, "today", got, wantRows)
	all, err := b.DB.OnlineMetrics(ctx, time.Now().Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	wantMetrics(t, "since yesterday", all, append(wantRows,
		store.OnlineMetric{Day: yesterday, Version: 6, Source: setlist.SourceBatch, Arm: none, Answers: 9, Users: 9}))
}

func wantMetrics(t *testing.T, what string, got, want []store.OnlineMetric) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows %+v, want %d %+v", what, len(got), got, len(want), want)
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	for i := range want {
		g, w := got[i], want[i]
		if g.Day != w.Day || g.Version != w.Version || g.Source != w.Source || g.Arm != w.Arm || g.Answers != w.Answers ||
			g.Users != w.Users || g.Likes != w.Likes || g.Dislikes != w.Dislikes ||
			!near(g.PositiveRate, w.PositiveRate) || !near(g.NegativeRate, w.NegativeRate) || !near(g.MRR, w.MRR) {
			t.Errorf("%s: row %d\n got %+v\nwant %+v", what, i, g, w)
		}
	}
}
