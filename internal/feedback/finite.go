package feedback

import (
	"fmt"
	"math"
)

// MaxRowNorm bounds the Euclidean norm of one factor row (a user's or a
// song's vector). ALS rows are regularised to norms of a few units (the
// shared data's largest is under 10); 1e6 leaves room for any sane model
// while keeping every score (a dot product of two rows, at most 1e12) and
// every Gram entry (a sum over at most a few million rows of 1e12) finite
// in float32. A row over it is a broken or hostile model, not a model.
const MaxRowNorm = 1e6

// CheckRows reports the first row of v (rows × cols, row-major) that holds
// a NaN or an infinity or whose norm exceeds MaxRowNorm, naming the array
// (name) and the row, so a model that would publish empty lists, answer
// every fold-in with an error or score every similar song 1 is refused
// where it enters instead.
func CheckRows(name string, v []float32, rows, cols int) error {
	if cols < 1 || len(v) != rows*cols {
		return fmt.Errorf("%s: %d values for %d rows × %d columns", name, len(v), rows, cols)
	}
	for r := 0; r < rows; r++ {
		var ss float64
		for c, f := range v[r*cols : (r+1)*cols] {
			x := float64(f)
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return fmt.Errorf("%s: row %d column %d is %v: factors must be finite", name, r, c, f)
			}
			ss += x * x
		}
		if n := math.Sqrt(ss); n > MaxRowNorm {
			return fmt.Errorf("%s: row %d has norm %.3g, over the %g a sane model stays within", name, r, n, float64(MaxRowNorm))
		}
	}
	return nil
}

// CheckFinite reports the first NaN or infinity of v, naming the array and
// the index (item weights, EASE weights, list scores: values with no row
// norm to bound).
func CheckFinite(name string, v []float32) error {
	for i, f := range v {
		if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
			return fmt.Errorf("%s: value %d is %v: must be finite", name, i, f)
		}
	}
	return nil
}
