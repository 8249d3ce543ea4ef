package als

import (
	"math"
	"slices"

	"github.com/setlist/setlist/internal/feedback"
)

// DataStats describe a training matrix in the terms the tuner's ranges and
// fidelities are derived from, so a search fits the data it is given rather
// than the data set it was developed on.
type DataStats struct {
	Rows, Cols, NNZ int
	// Quantiles of the absolute entry values (play counts).
	CountMedian, CountP90, CountMax float64
	// OnesShare is the share of entries whose absolute value is 1.
	OnesShare float64
	// RowMedian is the median non-zeros per non-empty row.
	RowMedian float64
}

// StatsOf computes m's DataStats.
func StatsOf(m *feedback.CSR) DataStats {
	s := DataStats{Rows: m.Rows, Cols: m.Cols, NNZ: m.NNZ()}
	if s.NNZ == 0 {
		return s
	}
	vals := make([]float64, 0, len(m.Data))
	ones := 0
	for _, v := range m.Data {
		a := math.Abs(float64(v))
		vals = append(vals, a)
		if a == 1 {
			ones++
		}
	}
	slices.Sort(vals)
	q := func(p float64) float64 { return vals[min(len(vals)-1, int(p*float64(len(vals))))] }
	s.CountMedian, s.CountP90, s.CountMax = q(0.5), q(0.9), vals[len(vals)-1]
	s.OnesShare = float64(ones) / float64(len(vals))
	var lens []float64
	for r := 0; r < m.Rows; r++ {
		if n := m.Indptr[r+1] - m.Indptr[r]; n > 0 {
			lens = append(lens, float64(n))
		}
	}
	slices.Sort(lens)
	if len(lens) > 0 {
		s.RowMedian = lens[len(lens)/2]
	}
	return s
}

// factorsFor is a rank that the data can support: about sqrt(nnz)/3 (it
// grows with the evidence, but slower, as the model's parameter count
// (rows+cols)·k does), at most a quarter of the smaller side, in multiples
// of 8 within [8, 256] (beyond that a first, untuned run gets slow; the
// tuner searches up to 512).
func factorsFor(s DataStats) int {
	f := math.Sqrt(float64(s.NNZ)) / 3
	f = math.Min(f, float64(min(s.Rows, s.Cols))/4)
	return min(max(int(math.Round(f/8))*8, 8), 256)
}

// DefaultParamsFor is where a first run on m starts when nothing has been
// published: DefaultParams with a rank scaled to the data's size, and a log
// weighting when counts are heavy-tailed (on binary data log and raw differ
// only by a constant factor in confidence). It is the untuned model and the
// tuner's incumbent, so it must be sound on any data, not best on one.
func DefaultParamsFor(m *feedback.CSR) Params {
	p := DefaultParams()
	s := StatsOf(m)
	p.Factors = factorsFor(s)
	if s.CountMedian > 0 {
		// log(1 + w/ε) with ε at the median count: a median entry gets
		// f = log 2, the same as a single play of binary data with ε = 1.
		p.LogEpsilon = s.CountMedian
	}
	return p
}

// Search-space dimensions, in the units the Parzen estimators model them:
// logarithms for scale parameters, the weighting's index, B as is.
const (
	dimWeighting = iota
	dimFactors   // log factors
	dimReg       // log regularization
	dimAlpha     // log(alpha · typical weighted value): comparable across weightings
	dimLogEps    // log(ε / median count), log weighting only
	dimK1        // log K1, bm25 only
	dimB         // B, bm25 only
	numDims
)

var searchWeightings = []feedback.Weighting{feedback.WeightRaw, feedback.WeightLog, feedback.WeightBM25}

// space is the search space derived from the data.
type space struct {
	lo, hi [numDims]float64
	// typical is the mean weighted value f(w) of an entry per weighting
	// at the reference sub-parameters (ε at the median count, K1 100,
	// B 0.8), so alpha's range means the same confidence on raw play
	// counts in the thousands as on binary data.
	typical     [3]float64
	countMedian float64
	iterations  int // the full fidelity's iterations
}

func newSpace(m *feedback.CSR, s DataStats) space {
	var sp space
	fmax := min(512, max(16, min(s.Rows, s.Cols)/2))
	sp.lo[dimFactors], sp.hi[dimFactors] = math.Log(8), math.Log(float64(fmax))
	sp.lo[dimReg], sp.hi[dimReg] = math.Log(1e-3), math.Log(100)
	sp.lo[dimAlpha], sp.hi[dimAlpha] = math.Log(0.03), math.Log(100)
	sp.lo[dimLogEps], sp.hi[dimLogEps] = math.Log(0.05), math.Log(20)
	sp.lo[dimK1], sp.hi[dimK1] = math.Log(1), math.Log(1000)
	sp.lo[dimB], sp.hi[dimB] = 0, 1
	sp.lo[dimWeighting], sp.hi[dimWeighting] = 0, float64(len(searchWeightings)-1)
	sp.countMedian = max(s.CountMedian, 1e-6)
	sp.iterations = 15
	for i, w := range searchWeightings {
		p := Params{Weighting: w, Alpha: 1, LogEpsilon: sp.countMedian, BM25K1: 100, BM25B: 0.8}
		sp.typical[i] = meanWeighted(m, p)
	}
	return sp
}

// meanWeighted is the mean f(w) over m's positive entries (up to 200k of
// them, from evenly spaced rows) with alpha 1.
func meanWeighted(m *feedback.CSR, p Params) float64 {
	iw := feedback.ItemWeights(m, p.Weighing())
	step := max(1, m.NNZ()/200000)
	var sum float64
	var n int
	var cm1, cp []float32
	for r := 0; r < m.Rows; r += step {
		cols, vals := m.Row(r)
		cm1, cp = slices.Grow(cm1[:0], len(cols))[:len(cols)], slices.Grow(cp[:0], len(cols))[:len(cols)]
		feedback.Confidence(p.Weighing(), p.Alpha, iw, cols, vals, cm1, cp)
		for j, v := range vals {
			if v > 0 {
				sum += float64(cm1[j])
				n++
			}
		}
	}
	if n == 0 || !(sum > 0) {
		return 1
	}
	return sum / float64(n)
}

func weightingIndex(w feedback.Weighting) int {
	if i := slices.Index(searchWeightings, w); i >= 0 {
		return i
	}
	return 0
}

// point maps params into the search space's units; dimensions that do not
// apply (ε without log) are NaN.
func (sp space) point(p Params) [numDims]float64 {
	var x [numDims]float64
	for i := range x {
		x[i] = math.NaN()
	}
	wi := weightingIndex(p.Weighting)
	x[dimWeighting] = float64(wi)
	x[dimFactors] = math.Log(float64(p.Factors))
	x[dimReg] = math.Log(math.Max(p.Regularization, 1e-12))
	x[dimAlpha] = math.Log(p.Alpha * sp.typical[wi])
	switch p.Weighting {
	case feedback.WeightLog:
		x[dimLogEps] = math.Log(p.LogEpsilon / sp.countMedian)
	case feedback.WeightBM25:
		x[dimK1] = math.Log(math.Max(p.BM25K1, 1e-12))
		x[dimB] = p.BM25B
	}
	for d := range x {
		if !math.IsNaN(x[d]) {
			x[d] = math.Min(math.Max(x[d], sp.lo[d]), sp.hi[d])
		}
	}
	return x
}

// params maps a point back, rounding factors to a multiple of 8 (of 4
// below 32).
func (sp space) params(x [numDims]float64, base Params) Params {
	p := base
	wi := int(x[dimWeighting])
	p.Weighting = searchWeightings[wi]
	f := math.Exp(x[dimFactors])
	step := 8.0
	if f < 32 {
		step = 4
	}
	p.Factors = max(4, int(math.Round(f/step)*step))
	p.Regularization = math.Exp(x[dimReg])
	p.Alpha = math.Exp(x[dimAlpha]) / sp.typical[wi]
	p.Iterations = sp.iterations
	switch p.Weighting {
	case feedback.WeightLog:
		p.LogEpsilon = math.Exp(x[dimLogEps]) * sp.countMedian
	case feedback.WeightBM25:
		p.BM25K1, p.BM25B = math.Exp(x[dimK1]), x[dimB]
	}
	return p
}
