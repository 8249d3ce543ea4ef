package als

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// TuneConfig bounds a hyper-parameter search. Zero values take the defaults
// documented per field.
type TuneConfig struct {
	Trials             int           // configurations sampled; 0 means 16
	Budget             time.Duration // wall-clock cap; 0 means none
	Seed               int64
	Threads            int
	ValidationFraction float64 // share of each user's positives held out; 0 means 0.15
	K                  int     // NDCG@K is maximised; 0 means 5
	// Keep is the share of first-rung trials promoted to a full run by
	// successive halving; 0 means 1/3.
	Keep float64

	// Incumbent is what tuning must not make worse: the last published
	// run's parameters; nil means DefaultParams. Its Seed and Threads are
	// replaced by the config's.
	Incumbent *Params

	FactorsMin, FactorsMax               int     // log-uniform, multiples of 8; 0 means 32..192
	RegularizationMin, RegularizationMax float64 // log-uniform; 0 means 0.01..30
	AlphaMin, AlphaMax                   float64 // log-uniform; 0 means 0.1..30
	IterationsMin, IterationsMax         int     // uniform; 0 means 6..20
	Weightings                           []Weighting
	BM25K1Min, BM25K1Max                 float64 // log-uniform; 0 means 1..300
	BM25BMin, BM25BMax                   float64 // uniform; 0,0 means 0.2..1
	LogEpsilonMin, LogEpsilonMax         float64 // log-uniform; 0 means 0.1..10
}

func (c TuneConfig) withDefaults() TuneConfig {
	setI := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	setF := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	setI(&c.Trials, 16)
	setF(&c.ValidationFraction, 0.15)
	setI(&c.K, 5)
	setF(&c.Keep, 1.0/3)
	setI(&c.FactorsMin, 32)
	setI(&c.FactorsMax, 192)
	setF(&c.RegularizationMin, 0.01)
	setF(&c.RegularizationMax, 30)
	setF(&c.AlphaMin, 0.1)
	setF(&c.AlphaMax, 30)
	setI(&c.IterationsMin, 6)
	setI(&c.IterationsMax, 20)
	if len(c.Weightings) == 0 {
		c.Weightings = []Weighting{WeightRaw, WeightLog, WeightBM25}
	}
	setF(&c.BM25K1Min, 1)
	setF(&c.BM25K1Max, 300)
	if c.BM25BMin == 0 && c.BM25BMax == 0 {
		c.BM25BMin, c.BM25BMax = 0.2, 1
	}
	setF(&c.LogEpsilonMin, 0.1)
	setF(&c.LogEpsilonMax, 10)
	return c
}

func (c TuneConfig) validate() error {
	var errs []error
	if c.Trials < 1 {
		errs = append(errs, fmt.Errorf("trials must be ≥ 1, got %d", c.Trials))
	}
	if !(c.ValidationFraction > 0 && c.ValidationFraction < 1) {
		errs = append(errs, fmt.Errorf("validation fraction must be in (0,1), got %v", c.ValidationFraction))
	}
	if !(c.Keep > 0 && c.Keep <= 1) {
		errs = append(errs, fmt.Errorf("keep must be in (0,1], got %v", c.Keep))
	}
	if c.FactorsMin < 1 || c.FactorsMax < c.FactorsMin || c.FactorsMax > maxFactors {
		errs = append(errs, fmt.Errorf("factors range [%d,%d] invalid", c.FactorsMin, c.FactorsMax))
	}
	if c.IterationsMin < 1 || c.IterationsMax < c.IterationsMin {
		errs = append(errs, fmt.Errorf("iterations range [%d,%d] invalid", c.IterationsMin, c.IterationsMax))
	}
	for _, r := range [][2]float64{{c.RegularizationMin, c.RegularizationMax}, {c.AlphaMin, c.AlphaMax}, {c.BM25K1Min, c.BM25K1Max}, {c.LogEpsilonMin, c.LogEpsilonMax}} {
		if !(r[0] > 0 && r[1] >= r[0]) {
			errs = append(errs, fmt.Errorf("log-uniform range [%v,%v] must be positive and ordered", r[0], r[1]))
		}
	}
	if c.BM25BMin < 0 || c.BM25BMax > 1 || c.BM25BMax < c.BM25BMin {
		errs = append(errs, fmt.Errorf("bm25 b range [%v,%v] must lie in [0,1]", c.BM25BMin, c.BM25BMax))
	}
	return errors.Join(errs...)
}

func (c TuneConfig) sample(rng *rand.Rand) Params {
	logU := func(lo, hi float64) float64 {
		return math.Exp(math.Log(lo) + rng.Float64()*(math.Log(hi)-math.Log(lo)))
	}
	p := DefaultParams()
	p.Seed, p.Threads = c.Seed, c.Threads
	f := int(math.Round(logU(float64(c.FactorsMin), float64(c.FactorsMax))/8)) * 8
	p.Factors = min(max(f, c.FactorsMin), c.FactorsMax)
	p.Regularization = logU(c.RegularizationMin, c.RegularizationMax)
	p.Alpha = logU(c.AlphaMin, c.AlphaMax)
	p.Iterations = c.IterationsMin + rng.IntN(c.IterationsMax-c.IterationsMin+1)
	p.Weighting = c.Weightings[rng.IntN(len(c.Weightings))]
	// Always draw every parameter so a weighting choice does not shift the
	// random stream of later trials.
	k1, b, eps := logU(c.BM25K1Min, c.BM25K1Max), c.BM25BMin+rng.Float64()*(c.BM25BMax-c.BM25BMin), logU(c.LogEpsilonMin, c.LogEpsilonMax)
	if p.Weighting == WeightBM25 {
		p.BM25K1, p.BM25B = k1, b
	}
	if p.Weighting == WeightLog {
		p.LogEpsilon = eps
	}
	return p
}

// Trial is one evaluated configuration at one fidelity.
type Trial struct {
	Number       int           `json:"number"`        // 0-based, in order of evaluation
	Params       Params        `json:"params"`        // Params.Iterations is the iterations this trial ran
	Metrics      Metrics       `json:"metrics"`       // on the validation split named by Split
	Duration     time.Duration `json:"duration"`      // nanoseconds in JSON
	Rung         int           `json:"rung"`          // 0 = lowest fidelity; the top rung is full fidelity
	UserFraction float64       `json:"user_fraction"` // share of users trained/evaluated at this fidelity (1 = all)
	Split        int           `json:"split"`         // 0 = first validation split, 1 = the re-evaluation split
	Incumbent    bool          `json:"incumbent"`     // the incumbent's evaluation
	Pruned       bool          `json:"pruned"`        // stopped at this rung, not promoted
	Promoted     bool          `json:"promoted"`      // promoted to the next rung
}

// TuneResult is what a search returns: the pick and the whole history, so
// it can be recorded and shown.
type TuneResult struct {
	Best          Params `json:"best"`
	BestTrial     int    `json:"best_trial"` // index in Trials of the trial whose Params were picked (the incumbent's when kept)
	KeptIncumbent bool   `json:"kept_incumbent"`
	Incumbent     Params `json:"incumbent"`
	// IncumbentScore and BestScore are the mean validation NDCG@K over the
	// splits used for the final pick.
	IncumbentScore float64 `json:"incumbent_score"`
	BestScore      float64 `json:"best_score"`
	// NoiseMargin is the margin a challenger had to beat, from the
	// measured seed-to-seed spread.
	NoiseMargin float64       `json:"noise_margin"`
	Budget      time.Duration `json:"budget"`
	Used        time.Duration `json:"used"`
	StopReason  string        `json:"stop_reason"` // "budget", "trials", "converged", "cancelled"
	Trials      []Trial       `json:"trials"`
}

// Stop reasons of a TuneResult.
const (
	StopBudget    = "budget"
	StopTrials    = "trials"
	StopConverged = "converged"
	StopCancelled = "cancelled"
)

// Tune runs random search with one round of successive halving: every
// sampled configuration trains for a third of its iterations, and the best
// Keep share is retrained in full. It maximises NDCG@K on a validation split
// carved from train only, so the caller's test set never leaks into the
// choice. The incumbent (cfg.Incumbent, else DefaultParams) is evaluated
// first at full fidelity, twice with different seeds to measure the noise;
// a challenger replaces it only if it beats it by more than that margin.
// With no Budget (or one that does not bind) the result is deterministic
// for a seed and thread count. onTrial is called after each trial from the
// calling goroutine. Cancelling ctx returns ctx.Err().
func Tune(ctx context.Context, train *CSR, cfg TuneConfig, onTrial func(Trial)) (TuneResult, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return TuneResult{}, fmt.Errorf("tune: %w", err)
	}
	if err := train.validate(); err != nil {
		return TuneResult{}, fmt.Errorf("tune: %w", err)
	}
	start := time.Now()
	res := TuneResult{Budget: cfg.Budget, StopReason: StopTrials}
	inc := DefaultParams()
	if cfg.Incumbent != nil {
		inc = *cfg.Incumbent
	}
	inc.Seed, inc.Threads = cfg.Seed, cfg.Threads
	if err := inc.Validate(); err != nil {
		return TuneResult{}, fmt.Errorf("tune: incumbent: %w", err)
	}
	res.Incumbent, res.Best = inc, inc
	overBudget := func() bool { return cfg.Budget > 0 && time.Since(start) >= cfg.Budget }
	fit, valid := SplitHoldout(train, cfg.ValidationFraction, cfg.Seed)
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 0x7e5e))

	run := func(p Params, rung int) (Trial, error) {
		t0 := time.Now()
		m, err := Train(ctx, fit, p, nil)
		if err != nil {
			return Trial{}, err
		}
		met, err := Evaluate(ctx, m.UserFactors, m.ItemSide(), fit, valid, cfg.K, cfg.Threads)
		if err != nil {
			return Trial{}, err
		}
		return Trial{Number: len(res.Trials), Params: p, Metrics: met, Duration: time.Since(t0), Rung: rung, UserFraction: 1}, nil
	}
	record := func(t Trial) {
		res.Trials = append(res.Trials, t)
		if onTrial != nil {
			onTrial(t)
		}
	}
	finish := func(err error) (TuneResult, error) {
		res.Used = time.Since(start)
		if err != nil && ctx.Err() != nil {
			res.StopReason = StopCancelled
		}
		return res, err
	}

	// The incumbent at full fidelity, then again with another seed: the
	// spread of the two is the noise a challenger must beat.
	var incScores []float64
	for i := range 2 {
		p := inc
		p.Seed = inc.Seed + int64(i)
		t, err := run(p, 1)
		if err != nil {
			return finish(fmt.Errorf("tune: incumbent: %w", err))
		}
		t.Incumbent = true
		record(t)
		incScores = append(incScores, t.Metrics.NDCG)
	}
	res.BestTrial = 0
	res.IncumbentScore = incScores[0]
	res.BestScore = incScores[0]
	res.NoiseMargin = math.Abs(incScores[0] - incScores[1])

	type candidate struct {
		full  Params
		trial int
	}
	var rung []candidate
	for i := 0; i < cfg.Trials; i++ {
		if overBudget() {
			res.StopReason = StopBudget
			break
		}
		p := cfg.sample(rng)
		short := p
		short.Iterations = max(1, (p.Iterations+2)/3)
		t, err := run(short, 0)
		if err != nil {
			return finish(fmt.Errorf("tune: trial %d: %w", len(res.Trials), err))
		}
		t.Pruned = true // until promoted
		rung = append(rung, candidate{full: p, trial: len(res.Trials)})
		record(t)
	}
	slices.SortStableFunc(rung, func(a, b candidate) int {
		return cmpDesc(res.Trials[a.trial].Metrics.NDCG, res.Trials[b.trial].Metrics.NDCG)
	})
	promote := min(len(rung), max(1, int(math.Ceil(cfg.Keep*float64(len(rung))))))
	for _, c := range rung[:promote] {
		if overBudget() {
			res.StopReason = StopBudget
			break
		}
		res.Trials[c.trial].Pruned, res.Trials[c.trial].Promoted = false, true
		t, err := run(c.full, 1)
		if err != nil {
			return finish(fmt.Errorf("tune: trial %d: %w", len(res.Trials), err))
		}
		record(t)
		if t.Metrics.NDCG > res.BestScore {
			res.BestScore, res.BestTrial = t.Metrics.NDCG, len(res.Trials)-1
		}
	}
	if res.BestTrial != 0 && res.BestScore > res.IncumbentScore+res.NoiseMargin {
		res.Best = res.Trials[res.BestTrial].Params
	} else {
		res.Best, res.BestTrial, res.BestScore, res.KeptIncumbent = inc, 0, res.IncumbentScore, true
	}
	return finish(nil)
}

func cmpDesc(a, b float64) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}
