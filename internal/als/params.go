package als

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/setlist/setlist/internal/feedback"
)

// Params configures training. Confidence is c = 1 + Alpha·f(|w|) with
// preference p = 1 for w > 0 and p = 0 for dislikes (w < 0), where f is the
// Weighting; Regularization is a plain L2 penalty λ on every factor vector,
// not scaled by the row's count (unlike Spark). See the package doc.
type Params struct {
	Factors        int                `json:"factors"`
	Regularization float64            `json:"regularization"`
	Alpha          float64            `json:"alpha"`
	Iterations     int                `json:"iterations"`
	CGSteps        int                `json:"cg_steps"`    // CG steps per row and sweep; 0 means 3
	Weighting      feedback.Weighting `json:"weighting"`   // how raw weights become confidence
	BM25K1         float64            `json:"bm25_k1"`     // bm25 saturation
	BM25B          float64            `json:"bm25_b"`      // bm25 length normalisation
	LogEpsilon     float64            `json:"log_epsilon"` // for "log": f(w) = log(1 + w/LogEpsilon)
	Seed           int64              `json:"seed"`        // initial factors; same seed+threads → same model
	Threads        int                `json:"threads"`     // 0 means GOMAXPROCS
}

// UnmarshalJSON accepts the snake_case names and, for runs recorded before
// Params had JSON tags, the Go field names ("CGSteps", "BM25K1", ...): the
// registry and Redis meta hold both, and a run must still inherit the last
// published parameters across that change. encoding/json already matches
// names case-insensitively, so only the four whose spelling differs need
// the legacy struct.
func (p *Params) UnmarshalJSON(b []byte) error {
	type plain Params
	var legacy struct {
		CGSteps    *int     `json:"CGSteps"`
		BM25K1     *float64 `json:"BM25K1"`
		BM25B      *float64 `json:"BM25B"`
		LogEpsilon *float64 `json:"LogEpsilon"`
	}
	if err := json.Unmarshal(b, (*plain)(p)); err != nil {
		return err
	}
	if err := json.Unmarshal(b, &legacy); err != nil {
		return err
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil {
		return err
	}
	take := func(snake string, dst *float64, src *float64) {
		if _, ok := keys[snake]; !ok && src != nil {
			*dst = *src
		}
	}
	if _, ok := keys["cg_steps"]; !ok && legacy.CGSteps != nil {
		p.CGSteps = *legacy.CGSteps
	}
	take("bm25_k1", &p.BM25K1, legacy.BM25K1)
	take("bm25_b", &p.BM25B, legacy.BM25B)
	take("log_epsilon", &p.LogEpsilon, legacy.LogEpsilon)
	return nil
}

// DefaultParams are generic starting values, not fitted to any data set:
// 64 factors, log weighting (robust on heavy-tailed play counts, and on
// binary data only a rescaled raw weighting), α 3 (an entry with the
// median count then weighs about 3 times an unobserved one), λ 0.05, 15
// iterations.
// A run on real data starts from DefaultParamsFor, which scales them to
// the data; the tuner searches from there.
func DefaultParams() Params {
	return Params{
		Factors:        64,
		Regularization: 0.05,
		Alpha:          3,
		Iterations:     15,
		CGSteps:        3,
		Weighting:      feedback.WeightLog,
		BM25K1:         100,
		BM25B:          0.8,
		LogEpsilon:     1,
		Seed:           42,
	}
}

const (
	maxFactors    = 1024
	maxIterations = 10000
	maxCGSteps    = 1024
)

// Validate reports every invalid field at once, so a bad config is fixed in
// one round trip.
func (p Params) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	finite := func(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
	if p.Factors < 1 || p.Factors > maxFactors {
		bad("factors must be between 1 and %d, got %d", maxFactors, p.Factors)
	}
	if !finite(p.Regularization) || p.Regularization < 0 {
		bad("regularization must be a finite number ≥ 0, got %v", p.Regularization)
	}
	if !finite(p.Alpha) || p.Alpha <= 0 {
		bad("alpha must be a finite number > 0, got %v", p.Alpha)
	}
	if p.Iterations < 1 || p.Iterations > maxIterations {
		bad("iterations must be between 1 and %d, got %d", maxIterations, p.Iterations)
	}
	if p.CGSteps < 0 || p.CGSteps > maxCGSteps {
		bad("cg steps must be between 0 (default 3) and %d, got %d", maxCGSteps, p.CGSteps)
	}
	if err := p.Weighing().Validate(); err != nil {
		errs = append(errs, err)
	}
	if p.Threads < 0 {
		bad("threads must be ≥ 0 (0 means GOMAXPROCS), got %d", p.Threads)
	}
	return errors.Join(errs...)
}

// Weighing is the part of p that weighs a row (feedback.Confidence with
// p.Alpha).
func (p Params) Weighing() feedback.Weighing {
	return feedback.Weighing{Weighting: p.Weighting, BM25K1: p.BM25K1, BM25B: p.BM25B, LogEpsilon: p.LogEpsilon}
}

func (p Params) cgSteps() int {
	if p.CGSteps == 0 {
		return 3
	}
	return p.CGSteps
}
