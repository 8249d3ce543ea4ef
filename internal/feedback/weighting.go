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
		w[i] = float32(math.Log(n) - math.Log1p(float64(d)))
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
		avg := float64(itemWeights[len(itemWeights)-1])
		lengthNorm = 1 - p.BM25B
		if avg > 0 {
			lengthNorm += p.BM25B * rowLen / avg
		}
	}
	for j, v := range vals {
		w := math.Abs(float64(v))
		var f float64
		switch p.Weighting {
		case WeightLog:
			f = math.Log1p(w / p.LogEpsilon)
		case WeightBM25:
			f = w * (p.BM25K1 + 1) / (p.BM25K1*lengthNorm + w) * float64(itemWeights[cols[j]])
		default:
			f = w
		}
		if !(f > 0) {
			f = 0
		}
		c := alpha * f
		cm1[j] = float32(c)
		if v > 0 {
			cp[j] = float32(1 + c)
		} else {
			cp[j] = 0
		}
	}
}
