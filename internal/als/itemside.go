package als

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/setlist/setlist/internal/feedback"
)

// ItemSide is everything serving needs from a model: fold-in of a user's
// reactions, top-N, similar items and explanations. It is separate from Model
// so the user factors (the bulk of a model) need not be shipped to serve.
// It is read-only after construction and safe for concurrent use.
type ItemSide struct {
	Params      Params
	Items       int
	Factors     int
	ItemFactors []float32 // row-major Items×Factors
	ItemWeights []float32 // see Model.ItemWeights
	// Gram is YᵀY (Factors×Factors, row-major, float64): fold-in only adds
	// the user's few rows to it instead of touching the whole catalogue, and
	// float64 keeps the Cholesky solve well conditioned.
	Gram []float64
	// ItemNorms are ‖y_i‖, precomputed for cosine similarity.
	ItemNorms []float32
}

// ItemSide extracts the serving half of the model, precomputing the Gram
// matrix and item norms. The factors are shared with the model, not copied.
func (m *Model) ItemSide() *ItemSide {
	s := &ItemSide{
		Params:      m.Params,
		Items:       m.Items,
		Factors:     m.Factors,
		ItemFactors: m.ItemFactors,
		ItemWeights: m.ItemWeights,
	}
	s.Gram = gram64(s.ItemFactors, s.Items, s.Factors)
	s.ItemNorms = itemNorms(s.ItemFactors, s.Items, s.Factors)
	return s
}

// Validate refuses an item side that cannot serve: a non-finite or
// absurdly long item vector (one NaN row makes every fold-in's Gram
// matrix NaN, so every fold-in fails and every similar song scores the
// same), non-finite item weights or a non-finite Gram matrix.
func (s *ItemSide) Validate() error {
	if err := feedback.CheckRows("item factors", s.ItemFactors, s.Items, s.Factors); err != nil {
		return err
	}
	if err := feedback.CheckFinite("item weights", s.ItemWeights); err != nil {
		return err
	}
	for i, g := range s.Gram {
		if math.IsNaN(g) || math.IsInf(g, 0) {
			return fmt.Errorf("gram matrix: value %d is %v: must be finite", i, g)
		}
	}
	return nil
}

// Validate refuses a model whose user or item factors are not finite or
// not of a sane norm (feedback.CheckRows): what training diverged into or
// a file trained elsewhere holds must not reach a gate or a publish.
func (m *Model) Validate() error {
	if err := feedback.CheckRows("user factors", m.UserFactors, m.Users, m.Factors); err != nil {
		return err
	}
	if err := feedback.CheckRows("item factors", m.ItemFactors, m.Items, m.Factors); err != nil {
		return err
	}
	return feedback.CheckFinite("item weights", m.ItemWeights)
}

func gram64(f []float32, rows, k int) []float64 {
	g := make([]float64, k*k)
	row := make([]float64, k)
	for r := 0; r < rows; r++ {
		for a, v := range f[r*k : (r+1)*k] {
			row[a] = float64(v)
		}
		for a := 0; a < k; a++ {
			ya := row[a]
			if ya == 0 {
				continue
			}
			ga := g[a*k+a : a*k+k]
			for b, yb := range row[a:] {
				ga[b] += ya * yb
			}
		}
	}
	for a := 0; a < k; a++ {
		for b := a + 1; b < k; b++ {
			g[b*k+a] = g[a*k+b]
		}
	}
	return g
}

func itemNorms(f []float32, rows, k int) []float32 {
	n := make([]float32, rows)
	for i := range n {
		y := f[i*k : (i+1)*k]
		n[i] = float32(math.Sqrt(float64(dot(y, y))))
	}
	return n
}

// NumItems is the catalogue size.
func (s *ItemSide) NumItems() int { return s.Items }

// normalizeRow checks columns and merges duplicates, returning sorted copies
// so training's CSR and fold-in see identical rows.
func (s *ItemSide) normalizeRow(cols []int32, vals []float32) ([]int32, []float32, error) {
	if len(cols) != len(vals) {
		return nil, nil, fmt.Errorf("%d columns but %d values", len(cols), len(vals))
	}
	entries := make([]feedback.Entry, 0, len(cols))
	for j, c := range cols {
		if c < 0 || int(c) >= s.Items {
			return nil, nil, fmt.Errorf("item %d outside catalogue of %d items", c, s.Items)
		}
		v := vals[j]
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, nil, fmt.Errorf("item %d has non-finite weight %v", c, v)
		}
		entries = append(entries, feedback.Entry{Row: 0, Col: c, Value: v})
	}
	m := feedback.NewCSR(1, s.Items, entries)
	return m.Indices, m.Data, nil
}

// foldScratch is one fold-in's working memory: the normal equations'
// matrix (then its Cholesky factor) and right-hand side in float64, a
// block of the other side's rows as the system takes them, and the row's
// confidences. The precompute keeps one per worker across all its users
// (ItemSide.FoldRows), so a fold-in there allocates nothing; serve's Fold
// takes a fresh one and keeps its factor.
type foldScratch struct {
	a, b []float64
	// y and wy are up to foldBlock rows o_j and cm1_j·o_j of the other
	// side (rows of k), the operands of one rank update of A.
	y, wy   []float64
	cm1, cp []float32
}

// foldBlock is how many of a row's entries one rank update of A takes:
// enough for the update's registers to be reused across many, few enough
// that its operands (2·foldBlock·k float64s, 64 KiB at k = 64) stay in
// cache whatever a user's history.
const foldBlock = 64

// newFoldScratch is scratch for rows of up to entries entries (longer
// ones are taken foldBlock at a time; the factorisation needs cholPanel
// rows of wy whatever the row): serve's one fold-in of a short history
// does not allocate a whole block.
func newFoldScratch(k, entries int) *foldScratch {
	rows := min(max(entries, cholPanel), foldBlock)
	return &foldScratch{a: make([]float64, k*k), b: make([]float64, k), y: make([]float64, rows*k), wy: make([]float64, rows*k)}
}

// confidences sizes the scratch's confidence slices for n entries.
func (f *foldScratch) confidences(n int) (cm1, cp []float32) {
	if cap(f.cm1) < n {
		f.cm1, f.cp = make([]float32, n), make([]float32, n)
	}
	f.cm1, f.cp = f.cm1[:n], f.cp[:n]
	return f.cm1, f.cp
}

// solve is the one fold-in: the user vector training would give the
// normalised row (cols sorted and unique, values finite), an exact
// Cholesky solve of A x = b with A = YᵀY + λI + Σ_j cm1_j y_j y_jᵀ and
// b = Σ_j cp_j y_j in float64, the confidences as training weighs them. It
// writes x (Factors floats) and leaves A's factor in f.a and the row's
// confidence × preference in f.cp. Serve's Fold and the precompute's
// FoldRows both call it, so their vectors are the same bits.
func (s *ItemSide) solve(cols []int32, vals []float32, f *foldScratch, x []float32) error {
	k := s.Factors
	if s == nil || len(s.Gram) != k*k || len(s.ItemFactors) != s.Items*k {
		return errors.New("item side is not initialised")
	}
	cm1, cp := f.confidences(len(cols))
	feedback.Confidence(s.Params.Weighing(), s.Params.Alpha, s.ItemWeights, cols, vals, cm1, cp)
	if err := normalSystem(f, s.Gram, k, s.Params.Regularization, s.ItemFactors, cols, cm1, cp); err != nil {
		return err
	}
	choleskySolve(f.a, k, f.b)
	for i, v := range f.b {
		x[i] = float32(v)
	}
	return nil
}

// normalSystem builds and factors one side's normal equations in f given
// the other side's factors other (rows×k) and their Gram G = OᵀO:
// A = G + λI + Σ_j cm1_j o_j o_jᵀ, b = Σ_j cp_j o_j over the rows cols of
// other. A user's fold-in (the rows are items) and an item's (the rows are
// users, UserSide.FoldItem) are the same system with the sides swapped, so
// they share this one implementation. It leaves A's Cholesky factor in
// f.a and b in f.b.
func normalSystem(f *foldScratch, gram []float64, k int, lambda float64, other []float32, cols []int32, cm1, cp []float32) error {
	a, b := f.a[:k*k], f.b[:k]
	copy(a, gram)
	for i := 0; i < k; i++ {
		a[i*k+i] += lambda
	}
	clear(b)
	// A's update in blocks of rows, each entry's terms in the order of
	// cols (rankUpdate64). An entry with cm1 = 0 adds nothing to A.
	n, block := 0, len(f.y)/max(k, 1)
	for j, c := range cols {
		y := f.y[n*k : (n+1)*k]
		for t, v := range other[int(c)*k : int(c+1)*k] {
			y[t] = float64(v)
		}
		wp := float64(cp[j])
		for t, v := range y {
			b[t] += wp * v
		}
		w := float64(cm1[j])
		if w == 0 {
			continue
		}
		wy := f.wy[n*k : (n+1)*k]
		for t, v := range y {
			wy[t] = w * v
		}
		if n++; n == block {
			rankUpdate64(a, k, f.wy, f.y, n, 0)
			n = 0
		}
	}
	rankUpdate64(a, k, f.wy, f.y, n, 0)
	return choleskyInto(a, k, f.wy) // wy is free again: the factor's scratch
}

// FoldIn computes the user vector training would produce for a row of raw
// weights (as in Entry.Value) with item factors fixed: an exact Cholesky
// solve of the same normal equations with the same confidence formula. cols
// need not be sorted; duplicates are summed as NewCSR does.
func (s *ItemSide) FoldIn(cols []int32, vals []float32) ([]float32, error) {
	f, err := s.Fold(cols, vals)
	if err != nil {
		return nil, fmt.Errorf("fold-in: %w", err)
	}
	return f.Vector, nil
}

// cholesky factors the symmetric positive definite k×k matrix a (upper
// triangle read) in place into U = Lᵀ (upper triangle, row-major) with
// A = UᵀU = LLᵀ; the lower triangle is left undefined (choleskySolve reads
// only U).
//
// It is right-looking, in panels of cholPanel rows: each row of a panel is
// finished and its outer product taken off the panel's later rows
// (axpy64), then the panel's outer products are taken off every row after
// it at once (rankUpdate64, A's blocks held in registers), where the
// left-looking form is a chain of dependent multiply-subtracts and a row
// at a time streams the trailing matrix once per row (the fold-in's
// largest cost with the normal equations, issue 25 item 5). Each entry
// still receives its subtractions in the same order, t = 0, 1, …, as
// products of the same two numbers, and the same divisions, so U is bit
// for bit the left-looking L transposed (TestCholeskyBits).
func cholesky(a []float64, k int) error {
	return choleskyInto(a, k, nil)
}

// cholPanel rows of the factor are taken off the trailing matrix at once.
const cholPanel = 16

// choleskyInto is cholesky with neg, cholPanel·k float64s of scratch (nil:
// allocated).
func choleskyInto(a []float64, k int, neg []float64) error {
	if len(neg) < cholPanel*k {
		neg = make([]float64, cholPanel*k)
	}
	for p := 0; p < k; p += cholPanel {
		end := min(p+cholPanel, k)
		for j := p; j < end; j++ {
			row := a[j*k : j*k+k]
			d := row[j]
			if !(d > 0) {
				return fmt.Errorf("normal equations are not positive definite (pivot %d = %g); is regularization 0?", j, d)
			}
			d = math.Sqrt(d)
			row[j] = d
			div64(row[j+1:], d)
			for i := j + 1; i < end; i++ {
				axpy64(-row[i], row[i:], a[i*k+i:i*k+k])
			}
		}
		if end == k {
			break
		}
		// Rows end… take the panel's rows p…end−1 off, in that order:
		// a[i][u] += (−U[j][i])·U[j][u], as axpy64 row by row would.
		for j := p; j < end; j++ {
			nj, uj := neg[(j-p)*k+end:(j-p+1)*k], a[j*k+end:j*k+k]
			for t, v := range uj {
				nj[t] = -v
			}
		}
		rankUpdate64(a, k, neg, a[p*k:], end-p, end)
	}
	return nil
}

// choleskySolve overwrites b with A⁻¹b given U from cholesky: Uᵀz = b by
// columns of Uᵀ (rows of U, contiguous), then Ux = z by rows. Every b[i]
// gets the subtractions and the division of the row-by-row solve with L,
// in the same order, so the bits are that solve's.
func choleskySolve(u []float64, k int, b []float64) {
	for t := 0; t < k; t++ {
		row := u[t*k : t*k+k]
		b[t] /= row[t]
		// b[i] −= U[t][i]·b[t] for i > t: a multiply then an add of the
		// negated product, the same bits as the subtraction.
		axpy64(-b[t], row[t+1:], b[t+1:])
	}
	for i := k - 1; i >= 0; i-- {
		row := u[i*k : i*k+k]
		v := b[i]
		for t := i + 1; t < k; t++ {
			v -= row[t] * b[t]
		}
		b[i] = v / row[i]
	}
}

// Recommend returns up to n items by descending score user·y_i, ties broken
// by lower item index. exclude may be in any order and contain duplicates or
// out-of-range items; it is not modified. A user vector of the wrong length
// yields nil.
func (s *ItemSide) Recommend(user []float32, n int, exclude []int32) []feedback.Scored {
	k := s.Factors
	if n <= 0 || len(user) != k {
		return nil
	}
	ex := slices.Clone(exclude)
	slices.Sort(ex)
	t := feedback.NewTopK(min(n, s.Items))
	e := 0
	for i := 0; i < s.Items; i++ {
		for e < len(ex) && int(ex[e]) < i {
			e++
		}
		if e < len(ex) && int(ex[e]) == i {
			continue
		}
		t.Push(int32(i), dot(user, s.ItemFactors[i*k:(i+1)*k]))
	}
	return t.Sorted()
}

// Similar returns up to n items by cosine similarity of item factors,
// excluding item itself; nil for an out-of-range item. Items with a zero
// factor vector score 0.
func (s *ItemSide) Similar(item int32, n int) []feedback.Scored {
	k := s.Factors
	if item < 0 || int(item) >= s.Items || n <= 0 {
		return nil
	}
	q := s.ItemFactors[int(item)*k : int(item+1)*k]
	qn := s.ItemNorms[item]
	t := feedback.NewTopK(min(n, s.Items-1))
	for i := 0; i < s.Items; i++ {
		if i == int(item) {
			continue
		}
		var cos float32
		if d := qn * s.ItemNorms[i]; d > 0 {
			cos = dot(q, s.ItemFactors[i*k:(i+1)*k]) / d
		}
		t.Push(int32(i), cos)
	}
	return t.Sorted()
}

// Explain decomposes the score a folded-in user gives item into per-reaction
// contributions, as implicit's explain does: with A the user's normal-
// equation matrix, score = Σ_j cp_j · (A⁻¹y_item)·y_j, so reaction j
// contributes cp_j·(A⁻¹y_item)·y_j (dislikes contribute 0). It returns the
// total (equal to FoldIn(...)·y_item up to rounding) and the n liked items
// contributing most, best first.
func (s *ItemSide) Explain(cols []int32, vals []float32, item int32, n int) (total float32, top []feedback.Contribution, err error) {
	if item < 0 || int(item) >= s.Items {
		return 0, nil, fmt.Errorf("explain: item %d outside catalogue of %d items", item, s.Items)
	}
	f, err := s.Fold(cols, vals)
	if err != nil {
		return 0, nil, fmt.Errorf("explain: %w", err)
	}
	return f.Explain(item, n)
}
