package ease

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/setlist/setlist/internal/feedback"
)

// TestHandExample checks the closed form on three songs computed by hand.
// Users: {0,1}, {1,2}, {0,1,2}, raw weights 1, λ = 1:
//
//	XᵀX + I = [[3,2,1],[2,4,2],[1,2,3]], det 16,
//	P = 1/16·[[8,−4,0],[−4,8,−4],[0,−4,8]], diag(P) = ½,
//	B = −P/diag(P) = [[0,½,0],[½,0,½],[0,½,0]].
func TestHandExample(t *testing.T) {
	x := feedback.NewCSR(3, 3, []feedback.Entry{
		{Row: 0, Col: 0, Value: 1}, {Row: 0, Col: 1, Value: 1},
		{Row: 1, Col: 1, Value: 1}, {Row: 1, Col: 2, Value: 1},
		{Row: 2, Col: 0, Value: 1}, {Row: 2, Col: 1, Value: 1}, {Row: 2, Col: 2, Value: 1},
	})
	p := DefaultParams()
	p.Weighting, p.Lambda = feedback.WeightRaw, 1
	g, err := Gram(context.Background(), x, p)
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range [][]float64{{3}, {2, 4}, {1, 2, 3}} { // the lower triangle
		if got := g[i*3 : i*3+i+1]; !slices.Equal(got, w) {
			t.Fatalf("Gram row %d = %v, want %v (XᵀX + I's lower triangle)", i, got, w)
		}
	}
	m, _, err := Train(context.Background(), x, p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{0, 0.5, 0, 0.5, 0, 0.5, 0, 0.5, 0}
	for i, w := range want {
		if math.Abs(float64(m.B[i]-w)) > 1e-6 {
			t.Fatalf("B = %v, want %v", m.B, want)
		}
	}
	// A listener of song 0 alone: scores are B's row 0, so song 1 (½) first.
	f, err := m.Fold([]int32{0}, []float32{1})
	if err != nil {
		t.Fatal(err)
	}
	got := f.Recommend(2, []int32{0})
	if len(got) != 2 || got[0].Item != 1 || math.Abs(float64(got[0].Score)-0.5) > 1e-6 || got[1].Item != 2 || got[1].Score != 0 {
		t.Fatalf("recommend for {0} = %v, want song 1 (0.5) then song 2 (0)", got)
	}
	// Listener of 0 and 2: song 1 scores ½ + ½, each half explained by one.
	f, _ = m.Fold([]int32{2, 0}, []float32{1, 1})
	total, top, err := f.Explain(1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(float64(total)-1) > 1e-6 || len(top) != 2 || top[0].Item != 0 || top[1].Item != 2 || math.Abs(float64(top[0].Score)-0.5) > 1e-6 {
		t.Fatalf("explain song 1 for {0,2} = %v %v, want 1 = ½ (song 0) + ½ (song 2)", total, top)
	}
	if sim := m.Similar(1, 2); len(sim) != 2 || sim[0].Item != 0 || sim[1].Item != 2 {
		t.Fatalf("similar to song 1 = %v, want songs 0 and 2", sim)
	}
}

// TestInverseAccuracy checks the blocked sweep against the definition on a
// matrix whose size is not a multiple of the block, tile or column chunk.
func TestInverseAccuracy(t *testing.T) {
	for _, n := range []int{1, 7, 133, 301} {
		rng := rand.New(rand.NewPCG(1, uint64(n)))
		r := make([]float64, n*n)
		for i := range r {
			r[i] = rng.NormFloat64()
		}
		a := make([]float64, n*n)
		for i := 0; i < n; i++ {
			for j := 0; j < n; j++ {
				var s float64
				for k := 0; k < n; k++ {
					s += r[k*n+i] * r[k*n+j]
				}
				a[i*n+j] = s
			}
			a[i*n+i] += float64(n)
		}
		inv := slices.Clone(a)
		if err := invertSPD(context.Background(), inv, n, 2, nil); err != nil {
			t.Fatal(err)
		}
		at := func(i, j int) float64 { return inv[max(i, j)*n+min(i, j)] }
		var worst float64
		for i := 0; i < n; i++ {
			for j := 0; j < n; j++ {
				var s float64
				for k := 0; k < n; k++ {
					s += a[i*n+k] * at(k, j)
				}
				if i == j {
					s--
				}
				worst = max(worst, math.Abs(s))
			}
		}
		if worst > 1e-10 {
			t.Errorf("n=%d: max |A·A⁻¹ − I| = %g", n, worst)
		}
	}
}

// synthetic builds users × songs with taste clusters, heavy-tailed counts
// and a few dislikes.
func synthetic(users, songs int, seed uint64) *feedback.CSR {
	rng := rand.New(rand.NewPCG(seed, 99))
	var e []feedback.Entry
	for u := 0; u < users; u++ {
		taste := rng.IntN(5)
		for k := 0; k < 5+rng.IntN(25); k++ {
			s := (taste*songs/5 + rng.IntN(songs/4)) % songs
			if rng.IntN(6) == 0 {
				s = rng.IntN(songs)
			}
			v := float32(1 + rng.ExpFloat64()*3)
			if rng.IntN(40) == 0 {
				v = -1
			}
			e = append(e, feedback.Entry{Row: int32(u), Col: int32(s), Value: v})
		}
	}
	return feedback.NewCSR(users, songs, e)
}

func TestFoldInEqualsBatchAndDeterminism(t *testing.T) {
	x := synthetic(400, 290, 1)
	ctx := context.Background()
	for _, w := range []feedback.Weighting{feedback.WeightRaw, feedback.WeightLog, feedback.WeightBM25} {
		p := DefaultParams()
		p.Weighting, p.Lambda, p.Threads = w, 20, 1
		m1, _, err := Train(ctx, x, p, Options{})
		if err != nil {
			t.Fatal(err)
		}
		p.Threads = 2
		m2, _, err := Train(ctx, x, p, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(m1.B, m2.B) {
			t.Fatalf("%s: B differs between 1 and 2 threads", w)
		}
		all, err := m2.TopNAll(ctx, x, 10, x, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range []int{0, 17, 123, 399} {
			cols, vals := x.Row(u)
			// Shuffled and split into duplicates: fold-in normalises as
			// training's matrix did.
			c2, v2 := slices.Clone(cols), slices.Clone(vals)
			slices.Reverse(c2)
			slices.Reverse(v2)
			c2, v2 = append(c2, c2[0]), append(v2, v2[0]/2)
			v2[0] /= 2
			f, err := m2.Fold(c2, v2)
			if err != nil {
				t.Fatal(err)
			}
			got := f.Recommend(10, cols)
			if !slices.Equal(got, all[u]) {
				t.Fatalf("%s: user %d fold-in %v\n batch %v", w, u, got, all[u])
			}
			if len(got) == 0 {
				t.Fatalf("%s: user %d has no list", w, u)
			}
			// The explanation's terms add up to the score.
			total, _, err := f.Explain(got[0].Item, 3)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(float64(total-got[0].Score)) > 1e-4*math.Max(1, math.Abs(float64(total))) {
				t.Fatalf("%s: explain total %v, score %v", w, total, got[0].Score)
			}
		}
		b, err := m2.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var back Model
		if err := back.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(back.B, m2.B) || !slices.Equal(back.ItemWeights, m2.ItemWeights) || back.Params != m2.Params {
			t.Fatalf("%s: codec round trip changed the model", w)
		}
		b[len(b)/2] ^= 1
		if err := back.UnmarshalBinary(b); err == nil || !strings.Contains(err.Error(), "checksum") {
			t.Fatalf("%s: corrupt model accepted: %v", w, err)
		}
	}
}

// TestEvaluateBeatsPopularity: on clustered data EASE must rank held-out
// songs better than the popularity floor, with ALS's own metrics.
func TestEvaluateBeatsPopularity(t *testing.T) {
	x := synthetic(600, 200, 3)
	train, test := feedback.SplitHoldout(x, 0.2, 1)
	m, _, err := Train(context.Background(), train, DefaultParams(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	met, err := m.Evaluate(context.Background(), train, test, 5, 0)
	if err != nil {
		t.Fatal(err)
	}
	pop := feedback.PopularityBaseline(train, test, 5)
	if met.Users != pop.Users || !(met.NDCG > pop.NDCG) {
		t.Fatalf("ease %v vs popularity %v", met, pop)
	}
}

func TestMemoryGuard(t *testing.T) {
	x := synthetic(50, 300, 2)
	limit := NeedBytes(300) - 1
	_, _, err := Train(context.Background(), x, DefaultParams(), Options{MemoryLimit: limit})
	var me *MemoryError
	if !errors.As(err, &me) || me.Items != 300 || me.Need != NeedBytes(300) || me.Limit != limit {
		t.Fatalf("err = %v, want a MemoryError for 300 songs", err)
	}
	for _, s := range []string{"300 songs", "over the memory limit", "--memory-limit", "at most 299 songs", "ALS"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
	if _, _, err := Train(context.Background(), x, DefaultParams(), Options{MemoryLimit: NeedBytes(300)}); err != nil {
		t.Fatalf("a catalog that fits exactly was refused: %v", err)
	}
	if got := MaxItems(24 << 30); NeedBytes(got) > 24<<30 || NeedBytes(got+1) <= 24<<30 {
		t.Fatalf("MaxItems(24 GiB) = %d is not the largest that fits", got)
	}
}

func TestInvalidParams(t *testing.T) {
	p := DefaultParams()
	p.Lambda, p.Weighting = 0, "tfidf"
	_, _, err := Train(context.Background(), synthetic(10, 20, 1), p, Options{})
	if err == nil || !strings.Contains(err.Error(), "lambda") || !strings.Contains(err.Error(), "weighting") {
		t.Fatalf("err = %v, want lambda and weighting named", err)
	}
}

// TestPruned: with every entry kept the pruned model ranks as the dense
// one; with fewer it keeps each row's largest weights; the codec round
// trips and refuses corruption.
func TestPruned(t *testing.T) {
	x := synthetic(300, 150, 4)
	ctx := context.Background()
	m, _, err := Train(ctx, x, DefaultParams(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	all, err := m.TopNAll(ctx, x, 5, x, 0)
	if err != nil {
		t.Fatal(err)
	}
	full := m.Prune(1000, 0)
	if full.M != 149 {
		t.Fatalf("m = %d, want 149 (all but the diagonal)", full.M)
	}
	for _, u := range []int{0, 50, 299} {
		cols, vals := x.Row(u)
		f, err := full.Fold(cols, vals)
		if err != nil {
			t.Fatal(err)
		}
		got := f.Recommend(5, cols)
		for i := range got {
			if got[i].Item != all[u][i].Item || math.Abs(float64(got[i].Score-all[u][i].Score)) > 1e-5 {
				t.Fatalf("user %d: pruned-to-all %v, dense %v", u, got, all[u])
			}
		}
	}
	p := m.Prune(10, 0)
	row := m.B[7*150 : 8*150]
	var kept float32 = math.MaxFloat32
	for t2, i := range p.Idx[70:80] {
		if row[i] != p.Val[70+t2] || i == 7 {
			t.Fatalf("row 7 keeps song %d with %v, B has %v", i, p.Val[70+t2], row[i])
		}
		kept = min(kept, float32(math.Abs(float64(row[i]))))
	}
	for i, v := range row {
		if _, ok := slices.BinarySearch(p.Idx[70:80], int32(i)); !ok && i != 7 && float32(math.Abs(float64(v))) > kept {
			t.Fatalf("row 7 dropped song %d (|%v|) but kept one of |%v|", i, v, kept)
		}
	}
	if sim := p.Similar(7, 3); len(sim) != 3 || sim[0].Score < sim[1].Score {
		t.Fatalf("similar = %v", sim)
	}
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back Pruned
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back.Idx, p.Idx) || !slices.Equal(back.Val, p.Val) || back.Params != p.Params {
		t.Fatal("pruned codec round trip changed the model")
	}
	b[40] ^= 1
	if err := back.UnmarshalBinary(b); err == nil {
		t.Fatal("corrupt pruned model accepted")
	}
}

// TestWeightsInPlace checks B, written over the inverse's own buffer in
// stages, against B computed from a copy of P, at a size that is not a
// power of two (several stages, the last one partial) and with threads.
func TestWeightsInPlace(t *testing.T) {
	for _, n := range []int{1, 2, 3, 133, 300} {
		rng := rand.New(rand.NewPCG(3, uint64(n)))
		p := make([]float64, n*n)
		for i := 0; i < n; i++ {
			for j := 0; j <= i; j++ {
				p[i*n+j] = rng.NormFloat64()
			}
			p[i*n+i] = 1 + rng.Float64()
		}
		want := make([]float32, n*n)
		for j := 0; j < n; j++ {
			for i := 0; i < n; i++ {
				if i != j {
					want[j*n+i] = float32(-p[max(i, j)*n+min(i, j)] / p[i*n+i])
				}
			}
		}
		for _, threads := range []int{1, 2} {
			got := weightsFromInverse(slices.Clone(p), n, threads)
			if !slices.Equal(got, want) {
				t.Fatalf("n %d, %d threads: in-place B differs from B computed from a copy", n, threads)
			}
		}
	}
}

// TestPruneLossBound: a pruned model's score of any song is within
// Σ_j |x_j|·d_j of the dense one, d_j being row j's smallest kept
// magnitude (Prune's documented bound), for every user and several m.
func TestPruneLossBound(t *testing.T) {
	x := synthetic(200, 120, 5)
	m, _, err := Train(context.Background(), x, DefaultParams(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := m.Items
	dense, pruned := make([]float32, n), make([]float32, n)
	for _, keep := range []int{1, 8, 40} {
		p := m.Prune(keep, 0)
		d := make([]float64, n)
		for j := range d {
			d[j] = math.Inf(1)
			for _, v := range p.Val[j*keep : (j+1)*keep] {
				d[j] = min(d[j], math.Abs(float64(v)))
			}
		}
		worst := 0.0
		for u := 0; u < x.Rows; u++ {
			cols, vals := x.Row(u)
			fd, err := m.Fold(cols, vals)
			if err != nil {
				continue
			}
			fp, _ := p.Fold(cols, vals)
			fd.Scores(dense)
			fp.Scores(pruned)
			var bound float64
			for k, c := range fd.Cols {
				bound += math.Abs(float64(fd.X[k])) * d[c]
			}
			for i := range dense {
				diff := math.Abs(float64(dense[i] - pruned[i]))
				if diff > bound*(1+1e-5)+1e-6 {
					t.Fatalf("m %d, user %d, song %d: pruning moved the score by %g, over the bound %g", keep, u, i, diff, bound)
				}
				if bound > 0 {
					worst = max(worst, diff/bound)
				}
			}
		}
		if worst == 0 {
			t.Errorf("m %d: pruning changed no score; the bound was not exercised", keep)
		}
	}
}
