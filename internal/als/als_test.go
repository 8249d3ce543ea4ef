package als

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/setlist/setlist/internal/feedback"
)

// planted builds users in groups that each like their own block of items
// (plus a little noise), with heavy-tailed counts and a few dislikes.
func planted(users, items, groups int, seed uint64) *feedback.CSR {
	rng := rand.New(rand.NewPCG(seed, 1))
	per := items / groups
	var e []feedback.Entry
	for u := 0; u < users; u++ {
		g := u % groups
		for j := 0; j < per; j++ {
			if rng.Float64() < 0.5 {
				e = append(e, feedback.Entry{Row: int32(u), Col: int32(g*per + j), Value: float32(1 + rng.ExpFloat64()*3)})
			}
		}
		for n := 0; n < 2; n++ {
			e = append(e, feedback.Entry{Row: int32(u), Col: int32(rng.IntN(items)), Value: 1})
		}
		if rng.Float64() < 0.3 {
			e = append(e, feedback.Entry{Row: int32(u), Col: int32(((g+1)%groups)*per + rng.IntN(per)), Value: -2})
		}
	}
	return feedback.NewCSR(users, items, e)
}

func TestValidate(t *testing.T) {
	ok := DefaultParams()
	if err := ok.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	tests := []struct {
		name string
		mod  func(*Params)
		want string
	}{
		{"factors", func(p *Params) { p.Factors = 0 }, "factors must be between 1 and 1024, got 0"},
		{"factors big", func(p *Params) { p.Factors = 2000 }, "got 2000"},
		{"reg", func(p *Params) { p.Regularization = -1 }, "regularization"},
		{"reg nan", func(p *Params) { p.Regularization = math.NaN() }, "regularization"},
		{"alpha", func(p *Params) { p.Alpha = 0 }, "alpha must be"},
		{"iterations", func(p *Params) { p.Iterations = 0 }, "iterations"},
		{"cg", func(p *Params) { p.CGSteps = -1 }, "cg steps"},
		{"weighting", func(p *Params) { p.Weighting = "tfidf" }, `got "tfidf"`},
		{"bm25 b", func(p *Params) { p.Weighting, p.BM25B = feedback.WeightBM25, 2 }, "bm25 b"},
		{"log eps", func(p *Params) { p.Weighting, p.LogEpsilon = feedback.WeightLog, 0 }, "log epsilon"},
		{"threads", func(p *Params) { p.Threads = -2 }, "threads"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := ok
			tc.mod(&p)
			err := p.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

// exactSolve solves the same normal equations cgRow targets in float64.
func exactSolve(a0 []float32, other []float32, k int, cols []int32, cm1, cp []float32) []float64 {
	a := make([]float64, k*k)
	for i, v := range a0 {
		a[i] = float64(v)
	}
	b := make([]float64, k)
	for j, c := range cols {
		y := other[int(c)*k : int(c+1)*k]
		for r := 0; r < k; r++ {
			b[r] += float64(cp[j]) * float64(y[r])
			for s := 0; s < k; s++ {
				a[r*k+s] += float64(cm1[j]) * float64(y[r]) * float64(y[s])
			}
		}
	}
	if err := cholesky(a, k); err != nil {
		panic(err)
	}
	choleskySolve(a, k, b)
	return b
}

func TestCGMatchesCholesky(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, k := range []int{4, 16, 24} {
		items := 50
		other := make([]float32, items*k)
		for i := range other {
			other[i] = float32(rng.NormFloat64() * 0.3)
		}
		a0 := withRidge(gram32(other, items, k, 1), k, 0.1)
		cols := []int32{1, 5, 9, 22, 30, 31, 47}
		cm1, cp := make([]float32, len(cols)), make([]float32, len(cols))
		for j := range cols {
			cm1[j] = float32(1 + rng.Float64()*10)
			cp[j] = 1 + cm1[j]
		}
		cp[2] = 0 // a dislike
		want := exactSolve(a0, other, k, cols, cm1, cp)
		x := make([]float32, k)
		for i := range x {
			x[i] = float32(rng.Float64() * 0.01)
		}
		cgRow(x, a0, other, k, cols, cm1, cp, 3*k, newScratch(k))
		var diff, norm float64
		for i := range x {
			diff += (float64(x[i]) - want[i]) * (float64(x[i]) - want[i])
			norm += want[i] * want[i]
		}
		if rel := math.Sqrt(diff / norm); rel > 1e-3 {
			t.Errorf("k=%d: CG relative error %.2e > 1e-3", k, rel)
		}
	}
}

func TestLossNeverIncreases(t *testing.T) {
	m := planted(200, 120, 6, 1)
	for _, w := range []feedback.Weighting{feedback.WeightRaw, feedback.WeightLog, feedback.WeightBM25} {
		p := DefaultParams()
		p.Factors, p.Iterations, p.Weighting, p.Alpha, p.Regularization = 12, 12, w, 3, 0.1
		var losses []float64
		if _, err := Train(context.Background(), m, p, func(s IterationStats) { losses = append(losses, s.Loss) }); err != nil {
			t.Fatal(err)
		}
		if len(losses) != p.Iterations {
			t.Fatalf("%s: %d callbacks, want %d", w, len(losses), p.Iterations)
		}
		for i := 1; i < len(losses); i++ {
			if losses[i] > losses[i-1]*(1+1e-6) {
				t.Errorf("%s: loss increased at iteration %d: %v → %v", w, i+1, losses[i-1], losses[i])
			}
		}
		if !(losses[len(losses)-1] < losses[0]) {
			t.Errorf("%s: loss did not decrease: %v", w, losses)
		}
	}
}

func TestFoldInReproducesTraining(t *testing.T) {
	m := planted(300, 200, 8, 2)
	for _, w := range []feedback.Weighting{feedback.WeightRaw, feedback.WeightBM25} {
		p := DefaultParams()
		p.Factors, p.Iterations, p.CGSteps, p.Weighting, p.Alpha, p.Regularization = 16, 40, 16, w, 2, 0.5
		model, err := Train(context.Background(), m, p, nil)
		if err != nil {
			t.Fatal(err)
		}
		s := model.ItemSide()
		agree, n := 0, 0
		for u := 0; u < m.Rows; u += 3 {
			cols, vals := m.Row(u)
			x, err := s.FoldIn(cols, vals)
			if err != nil {
				t.Fatal(err)
			}
			got := s.Recommend(x, 5, cols)
			want := s.Recommend(model.UserFactors[u*p.Factors:(u+1)*p.Factors], 5, cols)
			n++
			if sameItems(got, want) {
				agree++
			}
		}
		if float64(agree) < 0.95*float64(n) {
			t.Errorf("%s: fold-in top-5 agrees with training for %d/%d users, want ≥ 95%%", w, agree, n)
		}
	}
}

func sameItems(a, b []feedback.Scored) bool {
	if len(a) != len(b) {
		return false
	}
	ia, ib := make([]int32, len(a)), make([]int32, len(b))
	for i := range a {
		ia[i], ib[i] = a[i].Item, b[i].Item
	}
	slices.Sort(ia)
	slices.Sort(ib)
	return slices.Equal(ia, ib)
}

func TestFoldInErrors(t *testing.T) {
	m := planted(40, 30, 3, 3)
	p := DefaultParams()
	p.Factors, p.Iterations = 4, 2
	model, err := Train(context.Background(), m, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := model.ItemSide()
	if _, err := s.FoldIn([]int32{30}, []float32{1}); err == nil {
		t.Error("out-of-range column accepted")
	}
	if _, err := s.FoldIn([]int32{1, 2}, []float32{1}); err == nil {
		t.Error("length mismatch accepted")
	}
	if x, err := s.FoldIn(nil, nil); err != nil || len(x) != 4 {
		t.Errorf("empty fold-in = %v, %v", x, err)
	}
	// Duplicates sum, order does not matter.
	a, _ := s.FoldIn([]int32{5, 2, 5}, []float32{1, 2, 3})
	b, _ := s.FoldIn([]int32{2, 5}, []float32{2, 4})
	if !slices.Equal(a, b) {
		t.Errorf("fold-in depends on order/duplication: %v vs %v", a, b)
	}
}

func TestExplainSumsToScore(t *testing.T) {
	m := planted(100, 60, 4, 4)
	p := DefaultParams()
	p.Factors, p.Iterations = 8, 5
	model, err := Train(context.Background(), m, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := model.ItemSide()
	cols, vals := m.Row(7)
	x, _ := s.FoldIn(cols, vals)
	total, top, err := s.Explain(cols, vals, 3, 4)
	if err != nil {
		t.Fatal(err)
	}
	want := dot(x, s.ItemFactors[3*8:4*8])
	if math.Abs(float64(total-want)) > 1e-4*(1+math.Abs(float64(want))) {
		t.Errorf("explain total %v, fold-in score %v", total, want)
	}
	if len(top) != 4 || top[0].Score < top[3].Score {
		t.Errorf("top contributions %v", top)
	}
	if _, _, err := s.Explain(cols, vals, 60, 3); err == nil {
		t.Error("out-of-range item accepted")
	}
}

func handItemSide() *ItemSide {
	// 6 items, 2 factors; items 1 and 4 tie for user (1,0), as do 2 and 5.
	f := []float32{0, 1, 3, 0, 2, 0, 1, 1, 3, 0, 2, 0}
	m := &Model{Params: DefaultParams(), Items: 6, Factors: 2, ItemFactors: f}
	m.Params.Factors = 2
	return m.ItemSide()
}

func TestRecommendTiesAndExclusion(t *testing.T) {
	s := handItemSide()
	tests := []struct {
		name    string
		n       int
		exclude []int32
		want    []int32
	}{
		{"ties by index", 4, nil, []int32{1, 4, 2, 5}},
		{"exclude unsorted with dup", 3, []int32{4, 1, 4, 99}, []int32{2, 5, 3}},
		{"n larger than catalogue", 10, []int32{0, 1, 2, 3}, []int32{4, 5}},
		{"zero n", 0, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := s.Recommend([]float32{1, 0}, tc.n, tc.exclude)
			var items []int32
			for _, g := range got {
				items = append(items, g.Item)
			}
			if !slices.Equal(items, tc.want) {
				t.Fatalf("got %v, want %v", items, tc.want)
			}
		})
	}
}

func TestTopNAllMatchesRecommend(t *testing.T) {
	m := planted(97, 300, 5, 5) // not a multiple of the user block or item panel
	for _, k := range []int{8, 13} {
		p := DefaultParams()
		p.Factors, p.Iterations = k, 3
		model, err := Train(context.Background(), m, p, nil)
		if err != nil {
			t.Fatal(err)
		}
		s := model.ItemSide()
		all, err := TopNAll(context.Background(), model.UserFactors, s, 7, m, nil, 2)
		if err != nil {
			t.Fatal(err)
		}
		for u := 0; u < m.Rows; u++ {
			cols, _ := m.Row(u)
			want := s.Recommend(model.UserFactors[u*k:(u+1)*k], 7, cols)
			if !sameItems(all[u], want) {
				t.Fatalf("k=%d user %d: TopNAll %v, Recommend %v", k, u, all[u], want)
			}
			for _, sc := range all[u] {
				if _, found := slices.BinarySearch(cols, sc.Item); found {
					t.Fatalf("user %d got excluded item %d", u, sc.Item)
				}
			}
		}
	}
	// Ties: the hand-built catalogue, user (1,0), nothing excluded.
	s := handItemSide()
	all, err := TopNAll(context.Background(), []float32{1, 0, 1, 0}, s, 4, nil, nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range all {
		if got := []int32{r[0].Item, r[1].Item, r[2].Item, r[3].Item}; !slices.Equal(got, []int32{1, 4, 2, 5}) {
			t.Fatalf("tie order %v", got)
		}
	}
}

func TestSimilar(t *testing.T) {
	s := handItemSide()
	got := s.Similar(1, 3)
	// item 1 = (3,0): items 2, 4, 5 are parallel (cos 1), item 3 = (1,1) cos 0.707.
	want := []int32{2, 4, 5}
	for i, g := range got {
		if g.Item != want[i] || math.Abs(float64(g.Score-1)) > 1e-6 {
			t.Fatalf("similar = %v, want items %v with cosine 1", got, want)
		}
	}
	if s.Similar(6, 3) != nil || s.Similar(-1, 3) != nil {
		t.Fatal("out-of-range item not nil")
	}
}

func TestDeterminism(t *testing.T) {
	m := planted(150, 90, 5, 6)
	p := DefaultParams()
	p.Factors, p.Iterations, p.Threads = 10, 4, 2
	a, err := Train(context.Background(), m, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Train(context.Background(), m, p, nil)
	p.Threads = 1
	c, _ := Train(context.Background(), m, p, nil)
	for _, o := range []*Model{b, c} {
		if !slices.Equal(a.UserFactors, o.UserFactors) || !slices.Equal(a.ItemFactors, o.ItemFactors) {
			t.Fatal("same seed gave different factors")
		}
	}
	p.Seed++
	d, _ := Train(context.Background(), m, p, nil)
	if slices.Equal(a.UserFactors, d.UserFactors) {
		t.Fatal("different seed gave identical factors")
	}
}

func TestTrainCancelAndErrors(t *testing.T) {
	m := planted(50, 40, 4, 7)
	ctx, cancel := context.WithCancel(context.Background())
	p := DefaultParams()
	p.Factors, p.Iterations = 4, 50
	n := 0
	_, err := Train(ctx, m, p, func(IterationStats) {
		if n++; n == 2 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) || n != 2 {
		t.Fatalf("err %v after %d iterations, want context.Canceled after 2", err, n)
	}
	p.Factors = 0
	if _, err := Train(context.Background(), m, p, nil); err == nil || !strings.Contains(err.Error(), "factors") {
		t.Fatalf("bad params: %v", err)
	}
	bad := &feedback.CSR{Rows: 1, Cols: 1, Indptr: []int64{0, 1}, Indices: []int32{3}, Data: []float32{1}}
	if _, err := Train(context.Background(), bad, DefaultParams(), nil); err == nil {
		t.Fatal("out-of-range column accepted")
	}
}

func TestItemSideRoundTrip(t *testing.T) {
	m := planted(60, 50, 5, 8)
	for _, w := range []feedback.Weighting{feedback.WeightRaw, feedback.WeightBM25} {
		p := DefaultParams()
		p.Factors, p.Iterations, p.Weighting = 6, 2, w
		model, err := Train(context.Background(), m, p, nil)
		if err != nil {
			t.Fatal(err)
		}
		s := model.ItemSide()
		b, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var got ItemSide
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(&got, s) {
			t.Fatalf("%s: round trip differs", w)
		}
		for cut := 0; cut < len(b); cut += 1 + cut/7 {
			if err := new(ItemSide).UnmarshalBinary(b[:cut]); err == nil {
				t.Fatalf("truncated input (%d of %d bytes) accepted", cut, len(b))
			}
		}
		for _, pos := range []int{0, 9, 20, len(b) / 2, len(b) - 1} {
			c := slices.Clone(b)
			c[pos] ^= 0x40
			if err := new(ItemSide).UnmarshalBinary(c); err == nil {
				t.Fatalf("corrupt byte %d accepted", pos)
			}
		}
		if err := new(ItemSide).UnmarshalBinary(append(slices.Clone(b), 0)); err == nil {
			t.Fatal("trailing byte accepted")
		}
	}
}

// naiveTopN is the reference: every item scored one by one in float64
// (exact here: factors are small integers), excluded items skipped, sorted
// by score desc then item asc.
func naiveTopN(x, y []float32, k, items, n int, ex []int32) []feedback.Scored {
	var all []feedback.Scored
	for i := 0; i < items; i++ {
		if _, found := slices.BinarySearch(ex, int32(i)); found {
			continue
		}
		var s float64
		for f := 0; f < k; f++ {
			s += float64(x[f]) * float64(y[i*k+f])
		}
		all = append(all, feedback.Scored{Item: int32(i), Score: float32(s)})
	}
	slices.SortStableFunc(all, func(a, b feedback.Scored) int {
		switch {
		case a.Score > b.Score:
			return -1
		case a.Score < b.Score:
			return 1
		}
		return int(a.Item) - int(b.Item)
	})
	return all[:min(n, len(all))]
}

// TestTopNAllMatchesNaive compares the blocked GEMM + threshold top-k with
// the naive reference on integer-valued factors, where every summation
// order gives the same float32 score, so the lists must be identical,
// including the many ties (duplicated item rows, a coarse value range).
func TestTopNAllMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, tc := range []struct{ users, items, k, n, threads int }{
		{1, 1, 1, 1, 1},
		{5, 17, 3, 4, 1},
		{53, 1000, 8, 7, 2},
		{97, 300, 13, 5, 3},
		{31, 2049, 64, 10, 2},
		{25, 260, 150, 300, 2}, // n > items left after exclusion
	} {
		x := make([]float32, tc.users*tc.k)
		y := make([]float32, tc.items*tc.k)
		for i := range x {
			x[i] = float32(rng.IntN(7) - 3)
		}
		for i := range y {
			y[i] = float32(rng.IntN(5) - 2)
		}
		for i := 1; i < tc.items; i += 3 { // exact duplicates tie everywhere
			copy(y[i*tc.k:(i+1)*tc.k], y[(i-1)*tc.k:i*tc.k])
		}
		var entries []feedback.Entry
		for u := 0; u < tc.users; u++ {
			for i := 0; i < tc.items; i++ {
				if rng.IntN(4) == 0 {
					entries = append(entries, feedback.Entry{Row: int32(u), Col: int32(i), Value: 1})
				}
			}
		}
		ex := feedback.NewCSR(tc.users-tc.users/5, tc.items, entries) // the last users have no row
		s := &ItemSide{Items: tc.items, Factors: tc.k, ItemFactors: y}
		// Items left out for everyone (songs taken down): a tenth,
		// the first and the last among them, across item chunks.
		var except []int32
		for i := 0; i < tc.items; i++ {
			if i == 0 || i == tc.items-1 || rng.IntN(10) == 0 {
				except = append(except, int32(i))
			}
		}
		except = slices.Compact(except)
		// nil, a tenth, and all but that tenth (the withheld songs' own
		// ranking, which scores only the allowed items: topNAllowed).
		for _, out := range [][]int32{nil, except, feedback.Complement(except, tc.items)} {
			got, err := TopNAll(context.Background(), x, s, tc.n, ex, out, tc.threads)
			if err != nil {
				t.Fatal(err)
			}
			for u := 0; u < tc.users; u++ {
				cols, _ := ex.Row(u)
				cols = slices.Sorted(slices.Values(slices.Concat(cols, out)))
				want := naiveTopN(x[u*tc.k:(u+1)*tc.k], y, tc.k, tc.items, tc.n, slices.Compact(cols))
				if !slices.Equal(got[u], want) {
					t.Fatalf("%+v (%d left out) user %d:\n got %v\nwant %v", tc, len(out), u, got[u], want)
				}
			}
		}
	}
	s := &ItemSide{Items: 3, Factors: 1, ItemFactors: []float32{1, 2, 3}}
	for _, bad := range [][]int32{{2, 1}, {0, 0}, {3}, {-1}} {
		if _, err := TopNAll(context.Background(), []float32{1}, s, 2, nil, bad, 1); err == nil {
			t.Errorf("TopNAll accepted items left out %v", bad)
		}
	}
}

// TestTrainFrom: a warm start continues from the given factors (one more
// iteration from a 3-iteration model lowers the loss below where it
// started), is deterministic, and rejects a model of the wrong shape.
func TestTrainFrom(t *testing.T) {
	m := planted(60, 40, 4, 11)
	p := DefaultParams()
	p.Factors, p.Iterations, p.Threads = 10, 3, 2
	ctx := context.Background()
	var losses []float64
	base, err := Train(ctx, m, p, func(s IterationStats) { losses = append(losses, s.Loss) })
	if err != nil {
		t.Fatal(err)
	}
	p.Iterations = 1
	var warmLoss float64
	a, err := TrainFrom(ctx, m, p, base, func(s IterationStats) { warmLoss = s.Loss })
	if err != nil {
		t.Fatal(err)
	}
	if warmLoss > losses[len(losses)-1]*(1+1e-6) {
		t.Fatalf("warm iteration loss %v above the start's %v", warmLoss, losses[len(losses)-1])
	}
	b, err := TrainFrom(ctx, m, p, base, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.UserFactors, b.UserFactors) || !slices.Equal(a.ItemFactors, b.ItemFactors) {
		t.Fatal("warm start is not deterministic")
	}
	if slices.Equal(a.ItemFactors, base.ItemFactors) {
		t.Fatal("warm start did not move the factors")
	}
	p.Factors = 12
	if _, err := TrainFrom(ctx, m, p, base, nil); err == nil {
		t.Fatal("TrainFrom accepted a model with other factors")
	}
}
