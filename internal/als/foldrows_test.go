package als

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/setlist/setlist/internal/feedback"
)

// foldSide is an item side of random factors over items items.
func foldSide(t *testing.T, items, k int, w feedback.Weighting, seed uint64) (*ItemSide, *feedback.CSR) {
	t.Helper()
	m := planted(60, items, 4, seed)
	p := DefaultParams()
	p.Factors, p.Weighting = k, w
	rng := rand.New(rand.NewPCG(seed, 9))
	y := make([]float32, items*k)
	for i := range y {
		y[i] = float32(rng.NormFloat64()) * 0.3
	}
	return &ItemSide{Params: p, Items: items, Factors: k, ItemFactors: y,
		ItemWeights: feedback.ItemWeights(m, p.Weighing()), Gram: gram64(y, items, k), ItemNorms: itemNorms(y, items, k)}, m
}

// foldRowsCSR is rows of every length from none to past two foldBlocks,
// some with zero weights (cm1 = 0) and dislikes.
func foldRowsCSR(items int, seed uint64) *feedback.CSR {
	rng := rand.New(rand.NewPCG(seed, 3))
	var entries []feedback.Entry
	lens := []int{0, 1, 3, 7, foldBlock - 1, foldBlock, foldBlock + 1, 2*foldBlock + 5, 40, 12}
	for r, n := range lens {
		for range min(n, items) {
			v := float32(1 + rng.IntN(6))
			switch rng.IntN(8) {
			case 0:
				v = 0
			case 1:
				v = -1
			}
			entries = append(entries, feedback.Entry{Row: int32(r), Col: int32(rng.IntN(items)), Value: v})
		}
	}
	return feedback.NewCSR(len(lens), items, entries)
}

// TestFoldRowsMatchesFoldIn: the precompute's batched fold-in gives every
// row exactly the vector serve's one-user FoldIn gives (the same solve, bit
// for bit), whatever the number of factors (vector blocks and their
// scalar edges), the row's length (several rank-update blocks), the
// weighting and the number of workers.
func TestFoldRowsMatchesFoldIn(t *testing.T) {
	for _, k := range []int{1, 5, 8, 13, 16, 64, 66} {
		for _, w := range []feedback.Weighting{feedback.WeightRaw, feedback.WeightBM25} {
			s, _ := foldSide(t, 300, k, w, uint64(k))
			x := foldRowsCSR(300, uint64(k)+7)
			for _, threads := range []int{1, 3} {
				out := make([]float32, x.Rows*k)
				if err := s.FoldRows(context.Background(), x, out, threads); err != nil {
					t.Fatal(err)
				}
				for r := range x.Rows {
					cols, vals := x.Row(r)
					want, err := s.FoldIn(cols, vals)
					if err != nil {
						t.Fatal(err)
					}
					if got := out[r*k : (r+1)*k]; !slices.Equal(got, want) {
						t.Fatalf("k=%d %s threads=%d row %d (%d entries): FoldRows %v, FoldIn %v", k, w, threads, r, len(cols), got, want)
					}
				}
			}
		}
	}
}

func TestFoldRowsErrors(t *testing.T) {
	s, _ := foldSide(t, 50, 8, feedback.WeightRaw, 1)
	x := feedback.NewCSR(2, 50, []feedback.Entry{{Row: 0, Col: 3, Value: 1}, {Row: 1, Col: 4, Value: 2}})
	for _, tc := range []struct {
		name string
		x    *feedback.CSR
		out  int
		want string
	}{
		{"short output", x, 15, "15 floats for 2 rows"},
		{"other catalogue", feedback.NewCSR(1, 49, nil), 8, "49 columns"},
		{"unsorted row", &feedback.CSR{Rows: 1, Cols: 50, Indptr: []int64{0, 2}, Indices: []int32{4, 3}, Data: []float32{1, 1}}, 8, "strictly increasing"},
		{"non-finite weight", &feedback.CSR{Rows: 1, Cols: 50, Indptr: []int64{0, 1}, Indices: []int32{4}, Data: []float32{float32(math.Inf(1))}}, 8, "non-finite"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := s.FoldRows(context.Background(), tc.x, make([]float32, tc.out), 1)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.FoldRows(ctx, x, make([]float32, 16), 1); err != context.Canceled {
		t.Fatalf("cancelled: err = %v", err)
	}
}

// normalSystemRows is the normal equations as they were built before
// rankUpdate64, one axpy64 a row j and component t: the reference the
// blocked build must equal bit for bit, so serve's fold-ins did not change.
func normalSystemRows(gram []float64, k int, lambda float64, other []float32, cols []int32, cm1, cp []float32) (a, b []float64) {
	a = slices.Clone(gram)
	for i := 0; i < k; i++ {
		a[i*k+i] += lambda
	}
	b = make([]float64, k)
	y := make([]float64, k)
	for j, c := range cols {
		for t, v := range other[int(c)*k : int(c+1)*k] {
			y[t] = float64(v)
		}
		w, wp := float64(cm1[j]), float64(cp[j])
		for t := 0; t < k; t++ {
			b[t] += wp * y[t]
			if wa := w * y[t]; wa != 0 {
				axpy64Go(wa, y[t:], a[t*k+t:t*k+k])
			}
		}
	}
	return a, b
}

// TestNormalSystemBits: the blocked normal equations' right-hand side and
// factor equal the row-at-a-time build's and the left-looking factor's
// bit for bit, for rows longer than a block and every shape of k.
func TestNormalSystemBits(t *testing.T) {
	for _, k := range []int{1, 4, 7, 8, 12, 13, 64, 66} {
		s, _ := foldSide(t, 400, k, feedback.WeightBM25, uint64(100+k))
		x := foldRowsCSR(400, uint64(k))
		for r := range x.Rows {
			cols, vals := x.Row(r)
			f := newFoldScratch(k, len(cols))
			cm1, cp := f.confidences(len(cols))
			feedback.Confidence(s.Params.Weighing(), s.Params.Alpha, s.ItemWeights, cols, vals, cm1, cp)
			wantA, wantB := normalSystemRows(s.Gram, k, s.Params.Regularization, s.ItemFactors, cols, cm1, cp)
			choleskyLeft(wantA, k)
			if err := normalSystem(f, s.Gram, k, s.Params.Regularization, s.ItemFactors, cols, cm1, cp); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(f.b, wantB) {
				t.Fatalf("k=%d row %d: b = %v, row by row %v", k, r, f.b, wantB)
			}
			for i := range k {
				for j := 0; j <= i; j++ {
					if f.a[j*k+i] != wantA[i*k+j] {
						t.Fatalf("k=%d row %d (%d entries): U[%d][%d] = %v, row by row and left-looking L %v", k, r, len(cols), j, i, f.a[j*k+i], wantA[i*k+j])
					}
				}
			}
		}
	}
}
