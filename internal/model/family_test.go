package model_test

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/ease"
	"github.com/setlist/setlist/internal/feedback"
	"github.com/setlist/setlist/internal/model"
)

// easeVersion trains EASE on random clustered rows over songs 1000+i and
// returns the dense model and a published version holding it pruned to keep.
func easeVersion(t *testing.T, items, keep int) (*ease.Model, *model.Published, *feedback.CSR) {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 4))
	var e []feedback.Entry
	for u := 0; u < 200; u++ {
		base := rng.IntN(items)
		for k := 0; k < 10; k++ {
			e = append(e, feedback.Entry{Row: int32(u), Col: int32((base + rng.IntN(items/5)) % items), Value: float32(1 + rng.IntN(4))})
		}
	}
	x := feedback.NewCSR(200, items, e)
	m, _, err := ease.Train(context.Background(), x, ease.DefaultParams(), ease.Options{})
	if err != nil {
		t.Fatal(err)
	}
	songs := make([]setlist.SongID, items)
	for i := range songs {
		songs[i] = setlist.SongID(1000 + i)
	}
	cat := model.NewCatalog(songs)
	b, err := model.EncodeItemModel(cat, model.EASEItems(m.Prune(keep, 0)))
	if err != nil {
		t.Fatal(err)
	}
	// Serve reads the version back from its Redis value.
	cat2, im, err := model.DecodeItemModel(b)
	if err != nil {
		t.Fatal(err)
	}
	if im.Family() != model.FamilyEASE || model.ALSSide(im) != nil {
		t.Fatalf("decoded family %s", im.Family())
	}
	if _, _, err := model.DecodeItems(b); err == nil {
		t.Fatal("DecodeItems returned an ALS side for an EASE version")
	}
	p := &model.Published{Meta: model.Meta{Family: model.FamilyEASE, Scheme: model.DefaultScheme()}, Catalog: cat2, Items: im}
	return m, p, x
}

// TestEASEFoldInThroughPublished: a published EASE version answers the same
// FoldIn, explanations and similar songs as the family-agnostic path asks,
// and with every entry kept its fold-in of a listener equals the batch list.
func TestEASEFoldInThroughPublished(t *testing.T) {
	m, p, _ := easeVersion(t, 120, 1000)
	for seed := range uint64(4) {
		rs := reactions(15, seed, 120)
		cols, vals := p.Catalog.Row(p.Meta.Scheme, rs)
		f, err := m.Fold(cols, vals)
		if err != nil {
			t.Fatal(err)
		}
		want := p.Catalog.Recs(f.Recommend(10, cols))
		got, _, err := p.FoldInExplained(rs, 10, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) || len(got) == 0 {
			t.Fatalf("seed %d: %d recs, the dense model %d", seed, len(got), len(want))
		}
		for i := range want {
			d := got[i].Score - want[i].Score
			if got[i].Song != want[i].Song || d > 1e-5 || d < -1e-5 {
				t.Fatalf("seed %d rec %d: published %+v, dense %+v", seed, i, got[i].Rec, want[i])
			}
		}
		for i := 0; i < 3; i++ {
			item, _ := p.Catalog.Index(got[i].Song)
			_, top, _ := f.Explain(item, 1)
			if len(top) > 0 && top[0].Score > 0 && got[i].Because != p.Catalog.Song(top[0].Item) {
				t.Fatalf("seed %d rec %d: because %d, the dense model says %d", seed, i, got[i].Because, p.Catalog.Song(top[0].Item))
			}
		}
	}
	sim, ok := p.Similar(1005, 5)
	if !ok || len(sim) != 5 {
		t.Fatalf("similar: %v %v", sim, ok)
	}
	want := m.Similar(5, 5)
	for i := range want {
		if sim[i].Song != p.Catalog.Song(want[i].Item) {
			t.Fatalf("similar %v, dense %v", sim, want)
		}
	}
}
