package als

import (
	"context"
	"math"
	"testing"

	"github.com/setlist/setlist/internal/feedback"
)

// TestFoldItemReproducesTraining: training updates the items last, given
// the final user factors, so folding a trained item in from its column must
// give back (up to the CG's tolerance) the vector training gave it, under
// every weighting.
func TestFoldItemReproducesTraining(t *testing.T) {
	m := planted(300, 200, 8, 3)
	rowLen := make([]float64, m.Rows)
	for u := 0; u < m.Rows; u++ {
		_, vals := m.Row(u)
		for _, v := range vals {
			rowLen[u] += math.Abs(float64(v))
		}
	}
	mt := m.Transpose()
	for _, w := range []feedback.Weighting{feedback.WeightRaw, feedback.WeightLog, feedback.WeightBM25} {
		p := DefaultParams()
		p.Factors, p.Iterations, p.CGSteps, p.Weighting, p.Alpha, p.Regularization = 16, 30, 32, w, 2, 0.5
		model, err := Train(context.Background(), m, p, nil)
		if err != nil {
			t.Fatal(err)
		}
		us, err := NewUserSide(p, model.UserFactors, model.Users, model.ItemWeights)
		if err != nil {
			t.Fatal(err)
		}
		worst := 1.0
		for i := 0; i < m.Cols; i += 7 {
			users, vals := mt.Row(i)
			ls := make([]Listener, len(users))
			for j, u := range users {
				ls[j] = Listener{User: u, Value: vals[j], RowLength: rowLen[u]}
			}
			y, err := us.FoldItem(ls)
			if err != nil {
				t.Fatal(err)
			}
			want := model.ItemFactors[i*p.Factors : (i+1)*p.Factors]
			worst = min(worst, cosine(y, want))
		}
		if worst < 0.999 {
			t.Errorf("%s: folded item vs trained item cosine ≥ %.5f for every item, want ≥ 0.999", w, worst)
		}
	}
}

// TestFoldItemMatchesDirectSolve checks the system against a dense
// Gaussian elimination of (XᵀX + λI + Σ cm1 x xᵀ) y = Σ cp x written out in
// the test, for each weighting and for dislikes (preference 0).
func TestFoldItemMatchesDirectSolve(t *testing.T) {
	x := []float32{ // 5 users × 3 factors
		0.9, 0.1, -0.2,
		0.3, 0.8, 0.1,
		-0.4, 0.2, 0.7,
		0.5, 0.5, 0.5,
		0.1, -0.3, 0.2,
	}
	tests := []struct {
		name      string
		weighting feedback.Weighting
		listeners []Listener
	}{
		{"raw one listener", feedback.WeightRaw, []Listener{{User: 0, Value: 3}}},
		{"raw with a dislike", feedback.WeightRaw, []Listener{{User: 0, Value: 2}, {User: 3, Value: 1}, {User: 2, Value: -1}}},
		{"log", feedback.WeightLog, []Listener{{User: 1, Value: 5}, {User: 3, Value: 1}}},
		{"bm25", feedback.WeightBM25, []Listener{{User: 1, Value: 5, RowLength: 9}, {User: 4, Value: 1, RowLength: 2}}},
		{"no listeners", feedback.WeightRaw, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := DefaultParams()
			p.Factors, p.Weighting, p.Alpha, p.Regularization = 3, tc.weighting, 2, 0.3
			itemWeights := []float32{0.5, 4} // bm25: some item's idf, then the mean row length 4
			us, err := NewUserSide(p, x, 5, itemWeights)
			if err != nil {
				t.Fatal(err)
			}
			got, err := us.FoldItem(tc.listeners)
			if err != nil {
				t.Fatal(err)
			}
			// The direct solve, written out from the formulas.
			k := 3
			a := make([][]float64, k)
			for r := range a {
				a[r] = make([]float64, k+1)
			}
			for u := 0; u < 5; u++ {
				for r := 0; r < k; r++ {
					for c := 0; c < k; c++ {
						a[r][c] += float64(x[u*k+r]) * float64(x[u*k+c])
					}
				}
			}
			for r := 0; r < k; r++ {
				a[r][r] += p.Regularization
			}
			idf := math.Log(5) - math.Log1p(float64(len(tc.listeners)))
			for _, l := range tc.listeners {
				w := math.Abs(float64(l.Value))
				var f float64
				switch tc.weighting {
				case feedback.WeightLog:
					f = math.Log1p(w / p.LogEpsilon)
				case feedback.WeightBM25:
					norm := 1 - p.BM25B + p.BM25B*l.RowLength/4
					f = w * (p.BM25K1 + 1) / (p.BM25K1*norm + w) * idf
				default:
					f = w
				}
				f = max(f, 0)
				c := p.Alpha * f
				pref := 0.0
				if l.Value > 0 {
					pref = 1
				}
				xu := x[int(l.User)*k : int(l.User+1)*k]
				for r := 0; r < k; r++ {
					for cc := 0; cc < k; cc++ {
						a[r][cc] += c * float64(xu[r]) * float64(xu[cc])
					}
					a[r][k] += (1 + c) * pref * float64(xu[r])
				}
			}
			want := gauss(a)
			for i := range want {
				if math.Abs(float64(got[i])-want[i]) > 1e-5 {
					t.Fatalf("y = %v, direct solve %v", got, want)
				}
			}
		})
	}
}

func TestFoldItemErrors(t *testing.T) {
	p := DefaultParams()
	p.Factors = 2
	us, err := NewUserSide(p, []float32{1, 0, 0, 1}, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, ls := range map[string][]Listener{
		"unknown user": {{User: 2, Value: 1}},
		"twice":        {{User: 1, Value: 1}, {User: 1, Value: 2}},
		"NaN":          {{User: 0, Value: float32(math.NaN())}},
	} {
		if _, err := us.FoldItem(ls); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := NewUserSide(p, []float32{1, 0, 0}, 2, nil); err == nil {
		t.Error("short factors: no error")
	}
	p.Weighting = feedback.WeightBM25
	if _, err := NewUserSide(p, []float32{1, 0, 0, 1}, 2, nil); err == nil {
		t.Error("bm25 without item weights: no error")
	}
}

// gauss solves the augmented system a (k×(k+1)) by elimination with
// partial pivoting.
func gauss(a [][]float64) []float64 {
	k := len(a)
	for c := 0; c < k; c++ {
		p := c
		for r := c + 1; r < k; r++ {
			if math.Abs(a[r][c]) > math.Abs(a[p][c]) {
				p = r
			}
		}
		a[c], a[p] = a[p], a[c]
		for r := c + 1; r < k; r++ {
			f := a[r][c] / a[c][c]
			for cc := c; cc <= k; cc++ {
				a[r][cc] -= f * a[c][cc]
			}
		}
	}
	x := make([]float64, k)
	for r := k - 1; r >= 0; r-- {
		v := a[r][k]
		for c := r + 1; c < k; c++ {
			v -= a[r][c] * x[c]
		}
		x[r] = v / a[r][r]
	}
	return x
}

func cosine(a, b []float32) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += float64(a[i]) * float64(b[i])
		aa += float64(a[i]) * float64(a[i])
		bb += float64(b[i]) * float64(b[i])
	}
	return ab / math.Sqrt(aa*bb)
}
