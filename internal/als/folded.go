package als

import (
	"fmt"

	"github.com/setlist/setlist/internal/feedback"
)

// Folded is one user's fold-in kept with the Cholesky factor of their
// normal equations. Explaining a recommendation needs A⁻¹y_i for that
// user's A; building and factoring A costs O(nnz·k² + k³), solving with the
// kept factor O(k² + nnz·k), so serve explains several songs for about the
// price of one fold-in instead of one fold-in each.
type Folded struct {
	side   *ItemSide
	chol   []float64 // U with A = UᵀU (upper triangle, row-major; cholesky)
	cols   []int32   // the user's items, normalised (sorted, merged)
	cp     []float32 // confidence × preference per item of cols
	Vector []float32 // the solved user factors
}

// Fold solves the user's vector from a row of raw weights (as in
// Entry.Value) and keeps what Explain needs. cols need not be sorted;
// duplicates are summed.
func (s *ItemSide) Fold(cols []int32, vals []float32) (*Folded, error) {
	cols, vals, err := s.normalizeRow(cols, vals)
	if err != nil {
		return nil, err
	}
	f := newFoldScratch(s.Factors, len(cols))
	x := make([]float32, s.Factors)
	if err := s.solve(cols, vals, f, x); err != nil {
		return nil, err
	}
	return &Folded{side: s, chol: f.a, cols: cols, cp: f.cp, Vector: x}, nil
}

// Explain decomposes the user's score of item into per-reaction
// contributions, as implicit's explain does: score = Σ_j cp_j·y_jᵀA⁻¹y_item.
// It returns the total and the n reactions contributing most.
func (f *Folded) Explain(item int32, n int) (total float32, top []feedback.Contribution, err error) {
	s := f.side
	if item < 0 || int(item) >= s.Items {
		return 0, nil, fmt.Errorf("item %d outside catalogue of %d items", item, s.Items)
	}
	k := s.Factors
	w := make([]float64, k)
	for i, v := range s.ItemFactors[int(item)*k : int(item+1)*k] {
		w[i] = float64(v)
	}
	choleskySolve(f.chol, k, w)
	t := feedback.NewTopK(max(n, 0))
	var sum float64
	for j, c := range f.cols {
		if f.cp[j] == 0 {
			continue
		}
		var d float64
		for i, v := range s.ItemFactors[int(c)*k : int(c+1)*k] {
			d += w[i] * float64(v)
		}
		contrib := float64(f.cp[j]) * d
		sum += contrib
		t.Push(c, float32(contrib))
	}
	for _, sc := range t.Sorted() {
		top = append(top, feedback.Contribution(sc))
	}
	return float32(sum), top, nil
}
