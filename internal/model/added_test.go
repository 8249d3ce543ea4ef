package model

import (
	"math"
	"slices"
	"testing"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/als"
	"github.com/setlist/setlist/internal/feedback"
)

func TestAddedCodec(t *testing.T) {
	in := []AddedSong{
		{Song: 7, Listeners: 3, Weight: 1.5, Vector: []float32{1, -2, 0.5}},
		{Song: 1 << 40, Listeners: 0, Vector: []float32{0, 0, float32(math.Inf(1))}},
	}
	b, err := EncodeAdded(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := DecodeAdded(b)
	if err != nil || len(out) != 2 || out[0].Song != 7 || out[0].Listeners != 3 || out[0].Weight != 1.5 ||
		!slices.Equal(out[0].Vector, in[0].Vector) || out[1].Song != 1<<40 || !math.IsInf(float64(out[1].Vector[2]), 1) {
		t.Fatalf("round trip = %+v, %v", out, err)
	}
	if b, err := EncodeAdded(nil); err != nil {
		t.Fatal(err)
	} else if out, err := DecodeAdded(b); err != nil || len(out) != 0 {
		t.Errorf("empty = %v, %v", out, err)
	}
	for name, bad := range map[string][]byte{"empty": nil, "format": {9, 0, 0}, "short": b[:len(b)-1], "long": append(slices.Clone(b), 0)} {
		if _, err := DecodeAdded(bad); err == nil && name != "empty-ok" {
			t.Errorf("%s: decoded", name)
		}
	}
	if _, err := EncodeAdded([]AddedSong{{Vector: []float32{1}}, {Vector: []float32{1, 2}}}); err == nil {
		t.Error("ragged vectors encoded")
	}
}

// TestWithAdded: the grown version is what the item side would be with the
// songs trained in: factors, norms, the Gram matrix, bm25's weights; a user
// folded in with a new song in their history is excluded from it, and
// similar songs find it.
func TestWithAdded(t *testing.T) {
	p := als.DefaultParams()
	p.Factors, p.Weighting = 2, feedback.WeightBM25
	side := &als.ItemSide{Params: p, Items: 2, Factors: 2, ItemFactors: []float32{1, 0, 0, 1}, ItemWeights: []float32{0.5, 0.7, 3}}
	side.Gram = []float64{1, 0, 0, 1}
	side.ItemNorms = []float32{1, 1}
	pub := &Published{Catalog: NewCatalog([]setlist.SongID{10, 20}), Side: side}
	grown, err := pub.WithAdded([]AddedSong{
		{Song: 30, Listeners: 2, Weight: 0.9, Vector: []float32{3, 4}},
		{Song: 10, Vector: []float32{9, 9}}, // trained already: skipped
	})
	if err != nil {
		t.Fatal(err)
	}
	g := grown.Side
	if grown.Catalog.Len() != 3 || g.Items != 3 || !slices.Equal(g.ItemFactors, []float32{1, 0, 0, 1, 3, 4}) ||
		!slices.Equal(g.ItemNorms, []float32{1, 1, 5}) || !slices.Equal(g.Gram, []float64{10, 12, 12, 17}) ||
		!slices.Equal(g.ItemWeights, []float32{0.5, 0.7, 0.9, 3}) {
		t.Fatalf("grown side = %+v", g)
	}
	if side.Items != 2 || len(side.ItemFactors) != 4 || side.Gram[0] != 1 || pub.Catalog.Len() != 2 {
		t.Fatal("WithAdded modified the original")
	}
	if i, ok := grown.Catalog.Index(30); !ok || i != 2 {
		t.Fatalf("song 30 at %d, %v", i, ok)
	}
	if sim := grown.Items.Similar(1, 1); len(sim) != 1 || sim[0].Item != 2 {
		t.Errorf("similar to song 20 = %v, want the new song", sim)
	}
	recs, err := grown.FoldIn([]setlist.Reaction{{Song: 30, Kind: setlist.Play, Weight: 3}}, 3)
	if err != nil || len(recs) != 2 || slices.ContainsFunc(recs, func(r Rec) bool { return r.Song == 30 }) {
		t.Errorf("fold-in of a listener of song 30 = %v, %v; want the two trained songs", recs, err)
	}
	ease := &Published{Meta: Meta{Family: FamilyEASE}, Catalog: NewCatalog(nil)}
	if _, err := ease.WithAdded([]AddedSong{{Song: 1}}); err == nil {
		t.Error("EASE version took a song")
	}
}
