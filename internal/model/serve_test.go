package model_test

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/als"
	"github.com/setlist/setlist/internal/feedback"
	"github.com/setlist/setlist/internal/model"
)

// synthetic builds a published version of items random item factors, with
// song ids 1000+i, under weighting w.
func synthetic(tb testing.TB, items, factors int, w feedback.Weighting) *model.Published {
	tb.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	f := make([]float32, items*factors)
	for i := range f {
		f[i] = float32(rng.NormFloat64()) / 4
	}
	p := als.DefaultParams()
	p.Factors, p.Weighting = factors, w
	var iw []float32
	if w == feedback.WeightBM25 {
		iw = make([]float32, items+1)
		for i := range iw {
			iw[i] = 1 + rng.Float32()
		}
		iw[items] = 50
	}
	m := &als.Model{Params: p, Items: items, Factors: factors, ItemFactors: f, ItemWeights: iw}
	songs := make([]setlist.SongID, items)
	for i := range songs {
		songs[i] = setlist.SongID(1000 + i)
	}
	return &model.Published{Meta: model.Meta{Scheme: model.DefaultScheme()}, Catalog: model.NewCatalog(songs), Side: m.ItemSide()}
}

func reactions(n int, seed uint64, items int) []setlist.Reaction {
	rng := rand.New(rand.NewPCG(seed, 7))
	kinds := []setlist.ReactionKind{setlist.Play, setlist.Play, setlist.Like, setlist.Dislike}
	out := make([]setlist.Reaction, n)
	for i := range out {
		out[i] = setlist.Reaction{User: "u", Song: setlist.SongID(1000 + rng.IntN(items)), Kind: kinds[rng.IntN(len(kinds))], Weight: float64(1 + rng.IntN(5))}
	}
	return out
}

func TestFoldInExplainedMatchesALS(t *testing.T) {
	for _, w := range []feedback.Weighting{feedback.WeightRaw, feedback.WeightLog, feedback.WeightBM25} {
		p := synthetic(t, 300, 8, w)
		for seed := range uint64(5) {
			rs := reactions(20, seed, 300)
			// The expected list straight from the ALS layer, independent of
			// FoldIn (which is FoldInExplained without explanations).
			cols, vals := p.Catalog.Row(p.Meta.Scheme, rs)
			user, err := p.Side.FoldIn(cols, vals)
			if err != nil {
				t.Fatal(err)
			}
			want := p.Catalog.Recs(p.Side.Recommend(user, 10, cols))
			if plain, err := p.FoldIn(rs, 10); err != nil || len(plain) != len(want) {
				t.Fatalf("%s: FoldIn gave %d recs (err %v), the ALS layer %d", w, len(plain), err, len(want))
			}
			got, _, err := p.FoldInExplained(rs, 10, 3)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("%s: %d recs, the ALS layer gave %d", w, len(got), len(want))
			}
			reacted := map[setlist.SongID]bool{}
			for _, r := range rs {
				reacted[r.Song] = true
			}
			for i := range want {
				if got[i].Rec != want[i] {
					t.Fatalf("%s seed %d: rec %d = %+v, the ALS layer gave %+v", w, seed, i, got[i].Rec, want[i])
				}
				if reacted[got[i].Song] {
					t.Fatalf("%s: recommended song %d the user reacted to", w, got[i].Song)
				}
				if i < 3 && !reacted[got[i].Because] {
					t.Fatalf("%s: because %d of rec %d is not one of the user's songs", w, got[i].Because, i)
				}
				if i >= 3 && got[i].Because != 0 {
					t.Fatalf("rec %d explained beyond the limit", i)
				}
			}
		}
	}
}

func TestFoldInExplainedNoSignal(t *testing.T) {
	p := synthetic(t, 50, 4, feedback.WeightRaw)
	for _, rs := range [][]setlist.Reaction{
		nil,
		{{Song: 1001, Kind: setlist.Dislike, Weight: 1}},
		{{Song: 99, Kind: setlist.Like, Weight: 1}}, // not in the catalog
	} {
		if _, _, err := p.FoldInExplained(rs, 5, 5); err != model.ErrNoSignal {
			t.Errorf("FoldInExplained(%v) err = %v, want ErrNoSignal", rs, err)
		}
	}
}

func TestSimilar(t *testing.T) {
	p := synthetic(t, 100, 8, feedback.WeightRaw)
	got, ok := p.Similar(1005, 5)
	if !ok || len(got) != 5 {
		t.Fatalf("Similar = %v, %v", got, ok)
	}
	if slices.ContainsFunc(got, func(r model.Rec) bool { return r.Song == 1005 }) {
		t.Fatal("a song is similar to itself")
	}
	if _, ok := p.Similar(5, 5); ok || p.Knows(5) {
		t.Fatal("a song outside the catalog is known")
	}
}

// BenchmarkFoldInExplained is the in-memory part of serve's fold-in at the
// production shape: 10k items, 64 factors, 200 reactions, top 5 explained.
func BenchmarkFoldInExplained(b *testing.B) {
	p := synthetic(b, 10000, 64, feedback.WeightBM25)
	rs := reactions(200, 1, 10000)
	var sum model.FoldInTimings
	for b.Loop() {
		_, t, err := p.FoldInExplained(rs, 5, 5)
		if err != nil {
			b.Fatal(err)
		}
		sum.Solve += t.Solve
		sum.Recommend += t.Recommend
		sum.Explain += t.Explain
	}
	n := float64(b.N)
	b.ReportMetric(float64(sum.Solve.Microseconds())/n, "solve-µs/op")
	b.ReportMetric(float64(sum.Recommend.Microseconds())/n, "recommend-µs/op")
	b.ReportMetric(float64(sum.Explain.Microseconds())/n, "explain-µs/op")
}
