package als

import "github.com/setlist/setlist/internal/feedback"

// confidence holds a matrix's weighted entries in both orientations; the
// transposed arrays are aligned with the transposed structure.
type confidence struct {
	cm1, cp []float32
}

func weighMatrix(m *feedback.CSR, p Params, itemWeights []float32) confidence {
	c := confidence{cm1: make([]float32, m.NNZ()), cp: make([]float32, m.NNZ())}
	for r := 0; r < m.Rows; r++ {
		lo, hi := m.Indptr[r], m.Indptr[r+1]
		feedback.Confidence(p.Weighing(), p.Alpha, itemWeights, m.Indices[lo:hi], m.Data[lo:hi], c.cm1[lo:hi], c.cp[lo:hi])
	}
	return c
}

// transposeConfidence reorders per-entry arrays of m into the order of
// m.Transpose(), which scatters rows in increasing order.
func transposeConfidence(m *feedback.CSR, c confidence) confidence {
	t := confidence{cm1: make([]float32, len(c.cm1)), cp: make([]float32, len(c.cp))}
	next := make([]int64, m.Cols+1)
	for _, col := range m.Indices {
		next[col+1]++
	}
	for i := 1; i <= m.Cols; i++ {
		next[i] += next[i-1]
	}
	for p, col := range m.Indices {
		q := next[col]
		t.cm1[q], t.cp[q] = c.cm1[p], c.cp[p]
		next[col]++
	}
	return t
}
