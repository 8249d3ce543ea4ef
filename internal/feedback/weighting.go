package feedback

import "math"

// ItemWeights computes the per-item data a weighting needs so that a row
// can be weighed on its own later (fold-in) exactly as during training. For
// bm25 that is idf per item followed by the mean row length; nil otherwise.
func ItemWeights(m *CSR, p Weighing) []float32 {
	if p.Weighting != WeightBM25 {
		return nil
	}
	df := make([]int64, m.Cols)
	for _, c := range m.Indices {
		df[c]++
	}
	w := make([]float32, m.Cols+1)
	n := float64(max(m.Rows, 1))
	for i, d := range df {
		w[i] = float32(IDF(m.Rows, int(d)))
	}
	var total float64
	for _, v := range m.Data {
		total += math.Abs(float64(v))
	}
	w[m.Cols] = float32(total / n)
	return w
}

// Confidence fills cm1 (confidence − 1) and cp (confidence × preference) for
// one row, c = 1 + alpha·f(|w|) with f the weighting of p. The formula is
// shared by training and fold-in so a folded-in user sees exactly the
// training confidences. f is clamped at 0 because bm25's idf turns negative
// for items nearly everyone has, and a confidence below 1 would make the
// normal equations indefinite.
func Confidence(p Weighing, alpha float64, itemWeights []float32, cols []int32, vals []float32, cm1, cp []float32) {
	var lengthNorm float64
	if p.Weighting == WeightBM25 {
		var rowLen float64
		for _, v := range vals {
			rowLen += math.Abs(float64(v))
		}
		lengthNorm = p.lengthNorm(rowLen, float64(itemWeights[len(itemWeights)-1]))
	}
	for j, v := range vals {
		var idf float64
		if p.Weighting == WeightBM25 {
			idf = float64(itemWeights[cols[j]])
		}
		cm1[j], cp[j] = p.entry(alpha, v, idf, lengthNorm)
	}
}

// ColumnConfidence is Confidence for one column (an item) rather than one
// row: the entries vals of the item's users, whose whole rows weigh
// rowLens (Σ|w| of each user's row, this entry included; bm25 only, nil
// otherwise), with idf the item's bm25 weight and avgLen the mean row length
// (the last of ItemWeights). It gives each entry exactly the confidence
// Confidence gives it within its user's row, so an item folded in from its
// users (als.UserSide.FoldItem) sees the training confidences.
func ColumnConfidence(p Weighing, alpha float64, idf, avgLen float64, rowLens []float64, vals []float32, cm1, cp []float32) {
	for j, v := range vals {
		var lengthNorm float64
		if p.Weighting == WeightBM25 {
			lengthNorm = p.lengthNorm(rowLens[j], avgLen)
		}
		cm1[j], cp[j] = p.entry(alpha, v, idf, lengthNorm)
	}
}

// IDF is bm25's weight of an item that df of users rows hold, as
// ItemWeights computes it.
func IDF(users, df int) float64 {
	return math.Log(float64(max(users, 1))) - math.Log1p(float64(df))
}

// lengthNorm is bm25's row-length normalisation.
func (p Weighing) lengthNorm(rowLen, avg float64) float64 {
	n := 1 - p.BM25B
	if avg > 0 {
		n += p.BM25B * rowLen / avg
	}
	return n
}

// entry weighs one raw value v: c − 1 and c × preference.
func (p Weighing) entry(alpha float64, v float32, idf, lengthNorm float64) (cm1, cp float32) {
	w := math.Abs(float64(v))
	var f float64
	switch p.Weighting {
	case WeightLog:
		f = math.Log1p(w / p.LogEpsilon)
	case WeightBM25:
		f = w * (p.BM25K1 + 1) / (p.BM25K1*lengthNorm + w) * idf
	default:
		f = w
	}
	if !(f > 0) {
		f = 0
	}
	c := alpha * f
	if v > 0 {
		return float32(c), float32(1 + c)
	}
	return float32(c), 0
}
