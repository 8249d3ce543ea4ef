package feedback

import (
	"errors"
	"fmt"
	"math"
)

// Weighting names how raw reaction weights become confidence. Heavy-tailed
// counts (a song on 300 playlists) would otherwise let a few entries dominate
// a row's fit, which is why the choice matters on data never tuned on.
type Weighting string

const (
	// WeightRaw uses the weight as is: f(w) = w.
	WeightRaw Weighting = "raw"
	// WeightLog damps heavy tails: f(w) = log(1 + w/LogEpsilon).
	WeightLog Weighting = "log"
	// WeightBM25 damps both long rows and popular items, as implicit's
	// bm25_weight does (see the package doc for the exact formula).
	WeightBM25 Weighting = "bm25"
)

// Weighing is a Weighting with its constants: what weighing a row needs
// (ItemWeights, Confidence, Weights). Each family's parameters give theirs
// (als.Params.Weighing, ease.Params.Weighing).
type Weighing struct {
	Weighting  Weighting
	BM25K1     float64 // bm25 saturation
	BM25B      float64 // bm25 length normalisation
	LogEpsilon float64 // for "log": f(w) = log(1 + w/LogEpsilon)
}

// Validate reports every invalid field of p at once (both families'
// parameters check their weighting with it).
func (p Weighing) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	finite := func(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
	switch p.Weighting {
	case WeightRaw:
	case WeightLog:
		if !finite(p.LogEpsilon) || p.LogEpsilon <= 0 {
			bad("log epsilon must be a finite number > 0 for log weighting, got %v", p.LogEpsilon)
		}
	case WeightBM25:
		if !finite(p.BM25K1) || p.BM25K1 < 0 {
			bad("bm25 k1 must be a finite number ≥ 0, got %v", p.BM25K1)
		}
		if !finite(p.BM25B) || p.BM25B < 0 || p.BM25B > 1 {
			bad("bm25 b must be between 0 and 1, got %v", p.BM25B)
		}
	default:
		bad("weighting must be one of %q, %q, %q, got %q", WeightRaw, WeightLog, WeightBM25, p.Weighting)
	}
	return errors.Join(errs...)
}
