package als

import "time"

// Model is a trained factorisation. Factors are row-major float32 because
// that halves memory and bandwidth against float64 with no measurable
// ranking loss.
type Model struct {
	Params                Params
	Users, Items, Factors int
	UserFactors           []float32 // row-major Users×Factors
	ItemFactors           []float32 // row-major Items×Factors
	// ItemWeights holds what is needed to weigh a new row exactly as training
	// did: for bm25, Items idf values followed by the mean row length; nil
	// for raw and log weighting, which need no per-item data.
	ItemWeights []float32
}

// IterationStats is reported after each full (user + item) sweep.
type IterationStats struct {
	Iteration int // 1-based
	Loss      float64
	Duration  time.Duration
}
