package als

import "slices"

// Axpy is y += alpha·x with the package's vector kernel.
func Axpy(alpha float32, x, y []float32) { axpy(alpha, x[:len(y)], y) }

// InvertSPD returns the inverse of the symmetric positive definite k×k
// matrix a (row-major, not modified) by the package's Cholesky factor and
// k solves.
func InvertSPD(a []float64, k int) ([]float64, error) {
	l := slices.Clone(a[:k*k])
	if err := cholesky(l, k); err != nil {
		return nil, err
	}
	out := make([]float64, k*k)
	b := make([]float64, k)
	for c := 0; c < k; c++ {
		clear(b)
		b[c] = 1
		choleskySolve(l, k, b)
		for r, v := range b {
			out[r*k+c] = v
		}
	}
	return out, nil
}
