package main

import (
	"context"
	"strings"
	"testing"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/als"
	"github.com/setlist/setlist/internal/ease"
	"github.com/setlist/setlist/internal/feedback"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/keyspace/redistest"
	"github.com/setlist/setlist/internal/model"
)

// TestLoadModelEitherFamily publishes a small ALS and a small EASE version
// to the real Redis and runs the load test's preparation of them (load,
// describe, one fold-in past the stored list as the fold-in scenario asks
// serve for): an EASE version has no ALS item side, which the load test
// used to read and crash on.
func TestLoadModelEitherFamily(t *testing.T) {
	const users, songs = 40, 12
	var entries []feedback.Entry
	for u := range users {
		for s := range songs {
			if (u*7+s*3)%5 < 2 {
				entries = append(entries, feedback.Entry{Row: int32(u), Col: int32(s), Value: float32(1 + (u+s)%3)})
			}
		}
	}
	m := feedback.NewCSR(users, songs, entries)
	ctx := context.Background()
	ids := make([]setlist.SongID, songs)
	for i := range ids {
		ids[i] = setlist.SongID(100 + i)
	}
	cat := model.NewCatalog(ids)

	ap := als.DefaultParams()
	ap.Factors, ap.Iterations = 4, 3
	am, err := als.Train(ctx, m, ap, nil)
	if err != nil {
		t.Fatal(err)
	}
	em, _, err := ease.Train(ctx, m, ease.DefaultParams(), ease.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		family string
		items  model.ItemModel
		want   string
	}{
		{model.FamilyALS, model.ALSItems(am.ItemSide()), "als, 12 items × 4 factors"},
		{model.FamilyEASE, model.EASEItems(em.Prune(ease.DefaultPrune, 0)), "ease, 12 items, B pruned to 11 a row"},
	} {
		t.Run(tc.family, func(t *testing.T) {
			rdb, prefix := redistest.Client(t)
			b, err := model.EncodeItemModel(cat, tc.items)
			if err != nil {
				t.Fatal(err)
			}
			meta := model.Meta{Family: tc.family, K: 3, Items: songs, Scheme: model.DefaultScheme()}
			if tc.family == model.FamilyEASE {
				p := ease.DefaultParams()
				meta.EASE = &p
			}
			rel := keyspace.Release{Meta: meta, Items: b, Popular: []model.Rec{{Song: ids[0], Score: 1}}, Users: 1,
				List: func(int) (setlist.UserID, []model.Rec) { return "u1", []model.Rec{{Song: ids[1], Score: 1}} }}
			if _, err := keyspace.NewPublisher(rdb, keyspace.NewKeys(prefix)).Publish(ctx, 1, rel); err != nil {
				t.Fatal(err)
			}
			v, pub, err := loadModel(ctx, keyspace.NewReader(rdb, prefix))
			if err != nil {
				t.Fatal(err)
			}
			if v != 1 {
				t.Errorf("version %d, want 1", v)
			}
			if got := describeModel(pub); got != tc.want {
				t.Errorf("describeModel = %q, want %q", got, tc.want)
			}
			recs, err := pub.FoldIn([]setlist.Reaction{{Song: ids[2], Kind: setlist.Like, Weight: 1}, {Song: ids[5], Kind: setlist.Play, Weight: 3}}, pub.Meta.K+5)
			if err != nil {
				t.Fatal(err)
			}
			if want := min(pub.Meta.K+5, songs-2); len(recs) != want {
				t.Errorf("fold-in returned %d songs, want %d", len(recs), want)
			}
			for _, r := range recs {
				if r.Song == ids[2] || r.Song == ids[5] {
					t.Errorf("fold-in recommends reacted song %d", r.Song)
				}
			}
		})
	}
	if args := strings.Join(trainArgs("ease"), " "); strings.Contains(args, "--factors") || !strings.Contains(args, "--family ease") {
		t.Errorf("an EASE load test trains with %q", args)
	}
}

func TestMedianOf(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{0.97}, 0.97},
		{[]float64{1.04, 0.96, 0.98}, 0.98},
		{[]float64{0.9, 1.0, 0.95, 0.99}, 0.97},
	} {
		in := append([]float64(nil), c.in...)
		if got := medianOf(c.in); got < c.want-1e-12 || got > c.want+1e-12 {
			t.Errorf("medianOf(%v) = %v, want %v", c.in, got, c.want)
		}
		for i := range in {
			if in[i] != c.in[i] {
				t.Errorf("medianOf reordered its argument: %v", c.in)
			}
		}
	}
}
