package ease

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"slices"

	"github.com/setlist/setlist/internal/feedback"
)

// Pruned is B cut to the m entries of largest magnitude per row: what is
// published. The dense B of a 10 k-song catalog is 400 MB, too much for one
// Redis value and for every serve replica's memory, while m = 128 keeps
// 10 MB; on the shared data pruning to 32–1024 entries does not lose
// quality but gains 2–3 % (the small weights are mostly noise; see
// docs/BENCHMARKS.md). The batch lists, the evaluation and serve's fold-ins
// all use the pruned B, so a known user's fold-in is their batch list.
type Pruned struct {
	Params      Params
	Items, M    int
	Idx         []int32   // Items×M: row j's kept songs, ascending
	Val         []float32 // Items×M: their weights B_ji
	ItemWeights []float32
}

// DefaultPrune is the m kept per row (chosen in docs/BENCHMARKS.md: on the
// shared data precision@5 +2.7 % against the dense B, 10 MB in Redis).
const DefaultPrune = 128

// Prune keeps the m entries of largest magnitude of each row of B (ties to
// the lower song), at most Items−1 (the diagonal is zero).
//
// The loss is bounded: every dropped entry of row j is at most d_j, the
// smallest kept magnitude, so a user's score of any song moves by at most
// Σ_j |x_j|·d_j over the songs j they reacted to (TestPruneLossBound); on
// the shared data the ranking does not lose but gains (docs/BENCHMARKS.md).
func (m *Model) Prune(keep int, threads int) *Pruned {
	n := m.Items
	keep = max(0, min(keep, n-1))
	p := &Pruned{Params: m.Params, Items: n, M: keep, Idx: make([]int32, n*keep), Val: make([]float32, n*keep), ItemWeights: m.ItemWeights}
	chunks(n, 64, threads, func(lo, hi int) {
		abs := make([]float32, n)
		for j := lo; j < hi; j++ {
			row := m.B[j*n : (j+1)*n]
			for i, v := range row {
				abs[i] = float32(math.Abs(float64(v)))
			}
			top := feedback.TopNRow(abs, keep, []int32{int32(j)})
			idx := p.Idx[j*keep : (j+1)*keep]
			for t, s := range top {
				idx[t] = s.Item
			}
			slices.Sort(idx)
			for t, i := range idx {
				p.Val[j*keep+t] = row[i]
			}
		}
	})
	return p
}

// PrunedFolded is one user's weighted row against a Pruned model.
type PrunedFolded struct {
	p    *Pruned
	Cols []int32
	X    []float32
}

// Fold weighs a row of raw weights as training did (see Model.Fold).
func (p *Pruned) Fold(cols []int32, vals []float32) (*PrunedFolded, error) {
	f, err := (&Model{Params: p.Params, Items: p.Items, ItemWeights: p.ItemWeights}).Fold(cols, vals)
	if err != nil {
		return nil, err
	}
	return &PrunedFolded{p: p, Cols: f.Cols, X: f.X}, nil
}

// Scores writes the user's score of every song into dst (len Items).
func (f *PrunedFolded) Scores(dst []float32) {
	clear(dst)
	m := f.p.M
	for j, c := range f.Cols {
		x := f.X[j]
		if x == 0 {
			continue
		}
		idx, val := f.p.Idx[int(c)*m:int(c+1)*m], f.p.Val[int(c)*m:int(c+1)*m]
		for t, i := range idx {
			dst[i] += x * val[t]
		}
	}
}

// Recommend returns the user's top n songs, never one of exclude.
func (f *PrunedFolded) Recommend(n int, exclude []int32) []feedback.Scored {
	s := make([]float32, f.p.Items)
	f.Scores(s)
	return feedback.TopNRow(s, n, exclude)
}

// Explain decomposes the user's score of item into each reacted song's
// exact term x_j·B_j,item (0 for a pruned entry).
func (f *PrunedFolded) Explain(item int32, n int) (float32, []feedback.Contribution, error) {
	if item < 0 || int(item) >= f.p.Items {
		return 0, nil, fmt.Errorf("item %d outside catalogue of %d items", item, f.p.Items)
	}
	m := f.p.M
	contrib := make([]float32, len(f.Cols))
	var sum float64
	for j, c := range f.Cols {
		idx := f.p.Idx[int(c)*m : int(c+1)*m]
		if t, ok := slices.BinarySearch(idx, item); ok {
			contrib[j] = f.X[j] * f.p.Val[int(c)*m+t]
			sum += float64(contrib[j])
		}
	}
	var top []feedback.Contribution
	for _, sc := range feedback.TopNRow(contrib, n, nil) {
		if f.X[sc.Item] != 0 {
			top = append(top, feedback.Contribution{Item: f.Cols[sc.Item], Score: sc.Score})
		}
	}
	return float32(sum), top, nil
}

// Similar returns up to n of song item's kept entries by descending weight.
func (p *Pruned) Similar(item int32, n int) []feedback.Scored {
	if item < 0 || int(item) >= p.Items || n <= 0 {
		return nil
	}
	m := p.M
	idx := p.Idx[int(item)*m : int(item+1)*m]
	out := feedback.TopNRow(p.Val[int(item)*m:int(item+1)*m], n, nil)
	for t := range out {
		out[t].Item = idx[out[t].Item]
	}
	return out
}

// NumItems is the catalog size.
func (p *Pruned) NumItems() int { return p.Items }

// Wire format of Pruned (little-endian): magic "SLEASEP\x00" | version u32 |
// items u32 | m u32 | weighting len u8 + bytes | lambda, log epsilon, bm25
// k1, bm25 b f64 | idx i32×items×m | val f32×items×m | item weights n u32
// + f32×n | crc32 of everything before it.
const prunedMagic = "SLEASEP\x00"

// MarshalBinary encodes the pruned model.
func (p *Pruned) MarshalBinary() ([]byte, error) {
	if len(p.Idx) != p.Items*p.M || len(p.Val) != len(p.Idx) {
		return nil, fmt.Errorf("marshal pruned ease model: %d entries for %d songs × %d", len(p.Idx), p.Items, p.M)
	}
	w := []byte(p.Params.Weighting)
	b := make([]byte, 0, 64+len(w)+8*len(p.Idx)+4*len(p.ItemWeights))
	b = append(b, prunedMagic...)
	b = binary.LittleEndian.AppendUint32(b, codecVersion)
	b = binary.LittleEndian.AppendUint32(b, uint32(p.Items))
	b = binary.LittleEndian.AppendUint32(b, uint32(p.M))
	b = append(b, byte(len(w)))
	b = append(b, w...)
	for _, f := range []float64{p.Params.Lambda, p.Params.LogEpsilon, p.Params.BM25K1, p.Params.BM25B} {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
	}
	for _, i := range p.Idx {
		b = binary.LittleEndian.AppendUint32(b, uint32(i))
	}
	for _, f := range p.Val {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(p.ItemWeights)))
	for _, f := range p.ItemWeights {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
	}
	return binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(b)), nil
}

// IsPruned reports whether b starts like a pruned EASE model.
func IsPruned(b []byte) bool {
	return len(b) >= len(prunedMagic) && string(b[:len(prunedMagic)]) == prunedMagic
}

// UnmarshalBinary decodes what MarshalBinary wrote.
func (p *Pruned) UnmarshalBinary(data []byte) error {
	if !IsPruned(data) || len(data) < len(prunedMagic)+4 {
		return errors.New("unmarshal pruned ease model: bad magic")
	}
	body := data[:len(data)-4]
	if crc32.ChecksumIEEE(body) != binary.LittleEndian.Uint32(data[len(data)-4:]) {
		return errors.New("unmarshal pruned ease model: checksum mismatch (corrupt data)")
	}
	r := body[len(prunedMagic):]
	trunc := errors.New("unmarshal pruned ease model: truncated input")
	if len(r) < 13 {
		return trunc
	}
	if v := binary.LittleEndian.Uint32(r); v != codecVersion {
		return fmt.Errorf("unmarshal pruned ease model: unsupported version %d", v)
	}
	items, m := int(binary.LittleEndian.Uint32(r[4:])), int(binary.LittleEndian.Uint32(r[8:]))
	wl := int(r[12])
	r = r[13:]
	if len(r) < wl+32 {
		return trunc
	}
	var q Pruned
	q.Params.Weighting = feedback.Weighting(r[:wl])
	r = r[wl:]
	for _, dst := range []*float64{&q.Params.Lambda, &q.Params.LogEpsilon, &q.Params.BM25K1, &q.Params.BM25B} {
		*dst = math.Float64frombits(binary.LittleEndian.Uint64(r))
		r = r[8:]
	}
	e := uint64(items) * uint64(m)
	if uint64(len(r)) < 8*e+4 {
		return trunc
	}
	q.Items, q.M = items, m
	q.Idx, q.Val = make([]int32, e), make([]float32, e)
	for t := range q.Idx {
		q.Idx[t] = int32(binary.LittleEndian.Uint32(r[4*t:]))
		if q.Idx[t] < 0 || int(q.Idx[t]) >= items {
			return fmt.Errorf("unmarshal pruned ease model: song %d outside %d", q.Idx[t], items)
		}
	}
	r = r[4*e:]
	for t := range q.Val {
		q.Val[t] = math.Float32frombits(binary.LittleEndian.Uint32(r[4*t:]))
	}
	r = r[4*e:]
	nw := uint64(binary.LittleEndian.Uint32(r))
	r = r[4:]
	if uint64(len(r)) != 4*nw {
		return trunc
	}
	if nw > 0 {
		q.ItemWeights = make([]float32, nw)
		for t := range q.ItemWeights {
			q.ItemWeights[t] = math.Float32frombits(binary.LittleEndian.Uint32(r[4*t:]))
		}
	}
	if err := q.Params.Validate(); err != nil {
		return fmt.Errorf("unmarshal pruned ease model: %w", err)
	}
	if err := q.Validate(); err != nil {
		return fmt.Errorf("unmarshal pruned ease model: %w", err)
	}
	*p = q
	return nil
}

// Validate refuses non-finite weights: one NaN in B makes the scores of
// every user who reacted to that row's song NaN (and their lists empty).
func (p *Pruned) Validate() error {
	if err := feedback.CheckFinite("weights B", p.Val); err != nil {
		return err
	}
	return feedback.CheckFinite("item weights", p.ItemWeights)
}

// fill is the dense score row of user u of the raw-weight rows x.
func (p *Pruned) fill(x *feedback.CSR) feedback.ScoreFill {
	wp := p.Params.Weighing()
	return func(_, u int, dst []float32) {
		cols, vals := x.Row(u)
		w := make([]float32, len(cols))
		feedback.Weights(wp, p.ItemWeights, cols, vals, w)
		f := PrunedFolded{p: p, Cols: cols, X: w}
		f.Scores(dst)
	}
}

// TopNAll is Model.TopNAll with the pruned B: the lists serve's fold-ins
// of the same rows reproduce; no list holds an item of except (ascending
// indexes left out for everyone, the songs taken down; nil: none).
func (p *Pruned) TopNAll(ctx context.Context, x *feedback.CSR, n int, exclude *feedback.CSR, except []int32, threads int) ([][]feedback.Scored, error) {
	if x.Cols != p.Items {
		return nil, fmt.Errorf("top-n: matrix has %d songs, model %d", x.Cols, p.Items)
	}
	out := make([][]feedback.Scored, x.Rows)
	if err := feedback.TopNDense(ctx, x.Rows, nil, p.Items, n, exclude, except, threads, p.fill(x), func(u int, top []feedback.Scored) { out[u] = top }); err != nil {
		return nil, err
	}
	return out, nil
}

// Evaluate is Model.Evaluate with the pruned B: what is published.
func (p *Pruned) Evaluate(ctx context.Context, train, test *feedback.CSR, k, threads int) (feedback.Metrics, error) {
	return feedback.EvaluateDense(ctx, p.Items, p.fill(train), train, test, k, threads)
}
