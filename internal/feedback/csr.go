package feedback

import (
	"fmt"
	"slices"
)

// Entry is one user×item reaction. Value > 0 is a preference weight (play
// count, like weight); Value < 0 is a dislike whose magnitude is its
// confidence; Value == 0 carries no information and is dropped by NewCSR.
type Entry struct {
	Row, Col int32
	Value    float32
}

// CSR is a compressed sparse row matrix. Columns are sorted within each row
// and unique, which lets fold-in, exclusion and evaluation use merges and
// binary searches instead of hash sets.
type CSR struct {
	Rows, Cols int
	Indptr     []int64
	Indices    []int32
	Data       []float32
}

// NewCSR builds a matrix from entries, summing duplicates (a user who played a
// song in two sessions has one preference, not two) and dropping entries that
// sum to zero or fall outside rows×cols. The entries slice is not retained and
// not modified.
func NewCSR(rows, cols int, entries []Entry) *CSR {
	if rows < 0 {
		rows = 0
	}
	if cols < 0 {
		cols = 0
	}
	m := &CSR{Rows: rows, Cols: cols, Indptr: make([]int64, rows+1)}
	counts := m.Indptr[1:]
	for _, e := range entries {
		if inRange(e, rows, cols) {
			counts[e.Row]++
		}
	}
	for i := 1; i <= rows; i++ {
		m.Indptr[i] += m.Indptr[i-1]
	}
	nnz := m.Indptr[rows]
	idx := make([]int32, nnz)
	val := make([]float32, nnz)
	next := make([]int64, rows)
	copy(next, m.Indptr[:rows])
	for _, e := range entries {
		if !inRange(e, rows, cols) {
			continue
		}
		p := next[e.Row]
		idx[p], val[p] = e.Col, e.Value
		next[e.Row]++
	}
	// Sort each row and merge duplicates in place, compacting as we go.
	var out int64
	type pair struct {
		c int32
		v float32
	}
	var buf []pair
	for r := 0; r < rows; r++ {
		lo, hi := m.Indptr[r], m.Indptr[r+1]
		buf = buf[:0]
		for p := lo; p < hi; p++ {
			buf = append(buf, pair{idx[p], val[p]})
		}
		slices.SortStableFunc(buf, func(a, b pair) int { return int(a.c) - int(b.c) })
		m.Indptr[r] = out
		for j := 0; j < len(buf); {
			c, v := buf[j].c, buf[j].v
			j++
			for j < len(buf) && buf[j].c == c {
				v += buf[j].v
				j++
			}
			if v != 0 {
				idx[out], val[out] = c, v
				out++
			}
		}
	}
	m.Indptr[rows] = out
	m.Indices = slices.Clip(idx[:out])
	m.Data = slices.Clip(val[:out])
	return m
}

func inRange(e Entry, rows, cols int) bool {
	return e.Row >= 0 && int(e.Row) < rows && e.Col >= 0 && int(e.Col) < cols && e.Value != 0
}

// Row returns views (not copies) of row i's sorted columns and values; nil for
// an out-of-range row.
func (m *CSR) Row(i int) (cols []int32, vals []float32) {
	if i < 0 || i >= m.Rows {
		return nil, nil
	}
	lo, hi := m.Indptr[i], m.Indptr[i+1]
	return m.Indices[lo:hi:hi], m.Data[lo:hi:hi]
}

// SubsetRows is the matrix of m's given rows, in that order, with every
// column kept: the tuner's user subsamples and the figures' user samples.
func (m *CSR) SubsetRows(rows []int) *CSR {
	var entries []Entry
	for i, r := range rows {
		cols, vals := m.Row(r)
		for j, c := range cols {
			entries = append(entries, Entry{Row: int32(i), Col: c, Value: vals[j]})
		}
	}
	return NewCSR(len(rows), m.Cols, entries)
}

// NNZ is the number of stored entries.
func (m *CSR) NNZ() int { return len(m.Indices) }

// Transpose returns the column-major view as a new CSR (items × users), with
// rows sorted because it scatters rows in increasing order.
func (m *CSR) Transpose() *CSR {
	t := &CSR{Rows: m.Cols, Cols: m.Rows, Indptr: make([]int64, m.Cols+1)}
	for _, c := range m.Indices {
		t.Indptr[c+1]++
	}
	for i := 1; i <= m.Cols; i++ {
		t.Indptr[i] += t.Indptr[i-1]
	}
	t.Indices = make([]int32, len(m.Indices))
	t.Data = make([]float32, len(m.Data))
	next := make([]int64, m.Cols)
	copy(next, t.Indptr[:m.Cols])
	for r := 0; r < m.Rows; r++ {
		for p := m.Indptr[r]; p < m.Indptr[r+1]; p++ {
			c := m.Indices[p]
			q := next[c]
			t.Indices[q], t.Data[q] = int32(r), m.Data[p]
			next[c]++
		}
	}
	return t
}

// Validate checks structural invariants of a caller-built matrix so the
// solvers can index without bounds surprises.
func (m *CSR) Validate() error {
	if m == nil {
		return fmt.Errorf("matrix is nil")
	}
	if m.Rows < 0 || m.Cols < 0 {
		return fmt.Errorf("matrix has negative shape %d×%d", m.Rows, m.Cols)
	}
	if len(m.Indptr) != m.Rows+1 {
		return fmt.Errorf("indptr has length %d, want rows+1 = %d", len(m.Indptr), m.Rows+1)
	}
	if len(m.Indices) != len(m.Data) {
		return fmt.Errorf("indices (%d) and data (%d) lengths differ", len(m.Indices), len(m.Data))
	}
	if m.Indptr[0] != 0 || m.Indptr[m.Rows] != int64(len(m.Indices)) {
		return fmt.Errorf("indptr does not span the %d entries", len(m.Indices))
	}
	for r := 0; r < m.Rows; r++ {
		lo, hi := m.Indptr[r], m.Indptr[r+1]
		if hi < lo {
			return fmt.Errorf("indptr decreases at row %d", r)
		}
		prev := int32(-1)
		for p := lo; p < hi; p++ {
			c := m.Indices[p]
			if c < 0 || int(c) >= m.Cols {
				return fmt.Errorf("row %d has column %d outside [0,%d)", r, c, m.Cols)
			}
			if c <= prev {
				return fmt.Errorf("row %d columns are not strictly increasing", r)
			}
			prev = c
		}
	}
	return nil
}
