package als

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/setlist/setlist/internal/feedback"
)

// TuneConfig bounds a hyper-parameter search. Zero values take the defaults
// documented per field; ranges and fidelities come from the data (see
// StatsOf), not from constants chosen for one data set.
type TuneConfig struct {
	// Budget is how long to search: trials keep coming until it is spent
	// (the incumbent's evaluations and the final re-evaluation included),
	// overrunning by at most one trial. 0 means no time limit.
	Budget time.Duration
	// Trials optionally caps the search's evaluations (every rung counts;
	// the incumbent's and the final re-evaluation's do not). 0 means no
	// cap, or 40 when there is no Budget either.
	Trials             int
	Seed               int64
	Threads            int
	ValidationFraction float64 // share of each user's positives held out; 0 means 0.15
	K                  int     // NDCG@K is maximised; 0 means 5

	// Incumbent is what tuning must not make worse: the last published
	// run's parameters; nil means DefaultParamsFor(train). Its Seed and
	// Threads are replaced by the config's.
	Incumbent *Params
	// Enqueue are configurations tried first (as Optuna's enqueue_trial);
	// nil means known-good points: raw α=1, log α=1 and bm25 at 64, 128
	// and 256 factors (those the data's rank range admits). NoEnqueue
	// skips them.
	Enqueue   []Params
	NoEnqueue bool
	// StartupTrials random configurations follow the enqueued ones before
	// TPE takes over; 0 means 8.
	StartupTrials int
	// Eta is successive halving's reduction factor: each rung costs about
	// Eta times the one below, and its top 1/Eta is promoted; 0 means 3.
	Eta int
	// ReEvaluate is how many of the best full-fidelity configurations are
	// re-evaluated on the second validation split; 0 means 3.
	ReEvaluate int
	// NoiseSeeds is how many seeds the incumbent is trained with to
	// measure seed-to-seed noise; 0 means 3 (at least 2 are needed).
	NoiseSeeds int
	// Iterations at full fidelity; 0 means 15.
	Iterations int
	// FactorsMax caps the rank searched; 0 means from the data (up to 512).
	FactorsMax int
	// Weightings restricts the weightings searched; nil means all.
	Weightings []feedback.Weighting
}

func (c TuneConfig) withDefaults() TuneConfig {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	if c.Budget == 0 && c.Trials == 0 {
		c.Trials = 40
	}
	if c.ValidationFraction == 0 {
		c.ValidationFraction = 0.15
	}
	def(&c.K, 5)
	def(&c.StartupTrials, 8)
	def(&c.Eta, 3)
	def(&c.ReEvaluate, 3)
	def(&c.NoiseSeeds, 3)
	def(&c.Iterations, 15)
	return c
}

func (c TuneConfig) validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Trials < 0 {
		bad("trials must be ≥ 0 (0: no cap), got %d", c.Trials)
	}
	if c.Budget < 0 {
		bad("budget must be ≥ 0 (0: none), got %v", c.Budget)
	}
	if !(c.ValidationFraction > 0 && c.ValidationFraction < 1) {
		bad("validation fraction must be in (0,1), got %v", c.ValidationFraction)
	}
	if c.K < 1 {
		bad("k must be ≥ 1, got %d", c.K)
	}
	if c.Eta < 2 {
		bad("eta must be ≥ 2, got %d", c.Eta)
	}
	if c.NoiseSeeds < 2 {
		bad("noise seeds must be ≥ 2, got %d", c.NoiseSeeds)
	}
	if c.StartupTrials < 0 || c.ReEvaluate < 0 {
		bad("startup trials and re-evaluations must be ≥ 0")
	}
	if c.Iterations < 1 || c.Iterations > maxIterations {
		bad("iterations must be between 1 and %d, got %d", maxIterations, c.Iterations)
	}
	if c.FactorsMax < 0 || c.FactorsMax > maxFactors {
		bad("factors cap must be between 0 (from the data) and %d, got %d", maxFactors, c.FactorsMax)
	}
	for _, w := range c.Weightings {
		if !slices.Contains(searchWeightings, w) {
			bad("weighting must be one of %q, got %q", searchWeightings, w)
		}
	}
	if c.Incumbent != nil {
		if err := c.Incumbent.Validate(); err != nil {
			bad("incumbent: %w", err)
		}
	}
	for i, p := range c.Enqueue {
		if err := p.Validate(); err != nil {
			bad("enqueued configuration %d: %w", i, err)
		}
	}
	return errors.Join(errs...)
}

// Trial is one evaluated configuration at one fidelity.
type Trial struct {
	Number       int              `json:"number"`        // 0-based, in order of evaluation
	Params       Params           `json:"params"`        // Params.Iterations is the iterations this trial ran
	Metrics      feedback.Metrics `json:"metrics"`       // on the validation split named by Split
	Duration     time.Duration    `json:"duration"`      // nanoseconds in JSON
	Rung         int              `json:"rung"`          // 0 = lowest fidelity; the top rung is full fidelity
	UserFraction float64          `json:"user_fraction"` // share of users trained/evaluated at this fidelity (1 = all)
	Split        int              `json:"split"`         // 0 = first validation split, 1 = the re-evaluation split
	Incumbent    bool             `json:"incumbent"`     // the incumbent's evaluation
	Pruned       bool             `json:"pruned"`        // stopped at this rung, not promoted
	Promoted     bool             `json:"promoted"`      // promoted to the next rung
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
	StopReason  string        `json:"stop_reason"` // "budget", "trials", "cancelled"
	Trials      []Trial       `json:"trials"`
}

// Stop reasons of a TuneResult.
const (
	StopBudget    = "budget"
	StopTrials    = "trials"
	StopCancelled = "cancelled"
)

// fidelity is one rung: iterations and the share of users trained and
// evaluated.
type fidelity struct {
	iterations int
	users      float64
}

// rungsFor plans the fidelities, cheapest first, each about eta times the
// one below: fewer iterations first; on data with enough users that a
// 1/eta sample still holds a thousand, a user sample below that too (a
// sample is unbiased in rank, which few iterations are not).
func rungsFor(s DataStats, eta, iterations int) []fidelity {
	short := max(1, (iterations+eta-1)/eta)
	top := fidelity{iterations, 1}
	if short == iterations {
		return []fidelity{top}
	}
	if s.Rows/eta >= 1000 {
		return []fidelity{{short, 1 / float64(eta)}, {short, 1}, top}
	}
	return []fidelity{{short, 1}, top}
}

// split is a validation split, whole and per user sample.
type split struct {
	fit, valid *feedback.CSR
	sub        map[float64][2]*feedback.CSR // user fraction → (fit, valid) of the sampled users
}

func newSplit(train *feedback.CSR, fraction float64, seed int64, rungs []fidelity) split {
	sp := split{sub: map[float64][2]*feedback.CSR{}}
	sp.fit, sp.valid = feedback.SplitHoldout(train, fraction, seed)
	for _, f := range rungs {
		if f.users < 1 {
			if _, ok := sp.sub[f.users]; !ok {
				rows := sampleUsers(train.Rows, f.users, seed)
				sp.sub[f.users] = [2]*feedback.CSR{sp.fit.SubsetRows(rows), sp.valid.SubsetRows(rows)}
			}
		}
	}
	return sp
}

func (s split) at(users float64) (fit, valid *feedback.CSR) {
	if users >= 1 {
		return s.fit, s.valid
	}
	p := s.sub[users]
	return p[0], p[1]
}

// sampleUsers picks round(share·n) of n rows, seeded, in increasing order.
func sampleUsers(n int, share float64, seed int64) []int {
	rows := make([]int, n)
	for i := range rows {
		rows[i] = i
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5a3b1e))
	rng.Shuffle(n, func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	rows = rows[:max(1, int(math.Round(share*float64(n))))]
	slices.Sort(rows)
	return rows
}

// config is one configuration's path up the rungs.
type config struct {
	params   Params // at full fidelity
	x        [numDims]float64
	scores   []float64 // by rung reached
	trials   []int     // trial index by rung
	promoted []bool
}

func (c *config) top() (rung int, score float64) {
	return len(c.scores) - 1, c.scores[len(c.scores)-1]
}

// tuner holds one search's state.
type tuner struct {
	ctx     context.Context
	cfg     TuneConfig
	stats   DataStats
	space   space
	rungs   []fidelity
	splits  [2]split
	rng     *rand.Rand
	start   time.Time
	res     *TuneResult
	onTrial func(Trial)
	configs []*config
	queue   []Params
	sampled int // configurations from random or TPE sampling
	evals   int // search evaluations, for the Trials cap
	rate    []float64
	allowed []bool // per weighting index
	fmax    int
}

// Tune searches for parameters that maximise NDCG@K on a validation split
// carved from train only, so the caller's test set never leaks into the
// choice, and never returns something worse than the incumbent:
//
//  1. The incumbent (cfg.Incumbent, else DefaultParamsFor(train)) is
//     evaluated first at full fidelity with NoiseSeeds seeds; the standard
//     deviation of its scores is the noise margin.
//  2. Asynchronous successive halving (ASHA) over rungs of fewer iterations
//     and a user sample (rungsFor) decides what runs next: a configuration
//     in the top 1/Eta of its rung is promoted, else a new one starts at
//     the lowest rung: the enqueued known-good points, then StartupTrials
//     random ones, then TPE suggestions (tpe.go) informed by every rung.
//     Each trial's cost is predicted from the measured seconds per unit of
//     work, so ranks whose single evaluation would eat a sixth of the
//     budget are not tried, and nothing starts that cannot finish.
//  3. The best ReEvaluate full-fidelity configurations that beat the
//     incumbent, and the incumbent, are evaluated again on a second,
//     differently seeded validation split; the best mean over both splits
//     replaces the incumbent only if it beats the incumbent's mean by more
//     than the noise margin.
//
// The search runs until Budget is spent (or Trials evaluations). Without a
// Budget the result is deterministic for a seed and thread count. onTrial
// is called after each trial from the calling goroutine. Cancelling ctx
// returns ctx.Err() with the trials so far.
func Tune(ctx context.Context, train *feedback.CSR, cfg TuneConfig, onTrial func(Trial)) (TuneResult, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return TuneResult{}, fmt.Errorf("tune: %w", err)
	}
	if err := train.Validate(); err != nil {
		return TuneResult{}, fmt.Errorf("tune: %w", err)
	}
	t := &tuner{ctx: ctx, cfg: cfg, start: time.Now(), onTrial: onTrial,
		res: &TuneResult{Budget: cfg.Budget, StopReason: StopTrials}}
	t.stats = StatsOf(train)
	t.space = newSpace(train, t.stats)
	t.space.iterations = cfg.Iterations
	t.fmax = int(math.Round(math.Exp(t.space.hi[dimFactors])))
	if cfg.FactorsMax > 0 {
		t.fmax = min(t.fmax, cfg.FactorsMax)
		t.space.hi[dimFactors] = math.Log(float64(max(t.fmax, 8)))
		t.space.lo[dimFactors] = math.Min(t.space.lo[dimFactors], t.space.hi[dimFactors])
	}
	t.allowed = make([]bool, len(searchWeightings))
	for i, w := range searchWeightings {
		t.allowed[i] = len(cfg.Weightings) == 0 || slices.Contains(cfg.Weightings, w)
	}
	t.rungs = rungsFor(t.stats, cfg.Eta, cfg.Iterations)
	t.rng = rand.New(rand.NewPCG(uint64(cfg.Seed), 0x7e5e))
	for i := range t.splits {
		// The second split's seed is far from the first's so it shares no
		// per-user draw with it.
		t.splits[i] = newSplit(train, cfg.ValidationFraction, cfg.Seed+int64(i)*0x9e3779b9, t.rungs)
	}
	inc := DefaultParamsFor(train)
	if cfg.Incumbent != nil {
		inc = *cfg.Incumbent
	}
	inc.Seed, inc.Threads = cfg.Seed, cfg.Threads
	t.res.Incumbent, t.res.Best, t.res.KeptIncumbent = inc, inc, true
	t.queue = t.enqueued(inc)
	err := t.search(inc)
	t.res.Used = time.Since(t.start)
	if err != nil {
		if ctx.Err() != nil {
			t.res.StopReason = StopCancelled
		}
		return *t.res, fmt.Errorf("tune: %w", err)
	}
	return *t.res, nil
}

// enqueued are the configurations tried first, within the data's range.
func (t *tuner) enqueued(inc Params) []Params {
	if t.cfg.NoEnqueue {
		return nil
	}
	if t.cfg.Enqueue != nil {
		return t.cfg.Enqueue
	}
	var out []Params
	seen := map[int]bool{}
	for _, f := range []int{64, 128, 256} {
		f = min(f, t.fmax)
		if seen[f] {
			continue
		}
		seen[f] = true
		for _, w := range searchWeightings {
			if !t.allowed[weightingIndex(w)] {
				continue
			}
			p := inc
			p.Factors, p.Weighting, p.Alpha, p.Regularization, p.Iterations = f, w, 1, 0.05, t.cfg.Iterations
			p.LogEpsilon, p.BM25K1, p.BM25B = 1, 100, 0.8
			out = append(out, p)
		}
	}
	return out
}

func (t *tuner) elapsed() time.Duration { return time.Since(t.start) }

// units is a trial's work in arbitrary units: training sweeps (non-zeros
// times rank, plus a rank-squared solve per row) and scoring every
// evaluated user against the catalogue.
func (t *tuner) units(factors int, f fidelity) float64 {
	k := float64(factors)
	rows := f.users * float64(t.stats.Rows)
	nnz := f.users * float64(t.stats.NNZ)
	train := float64(f.iterations) * (16*nnz*k + 4*(rows+float64(t.stats.Cols))*k*k)
	return train + rows*float64(t.stats.Cols)*k
}

// predict is a trial's expected seconds from the median measured rate.
func (t *tuner) predict(factors int, f fidelity) time.Duration {
	if len(t.rate) == 0 {
		return 0
	}
	r := slices.Clone(t.rate)
	slices.Sort(r)
	return time.Duration(r[len(r)/2] * t.units(factors, f) * float64(time.Second))
}

// run trains p at fidelity f on split s and records the trial.
func (t *tuner) run(p Params, f fidelity, rung, s int, incumbent bool) (Trial, error) {
	p.Iterations = f.iterations
	fit, valid := t.splits[s].at(f.users)
	t0 := time.Now()
	m, err := Train(t.ctx, fit, p, nil)
	if err != nil {
		return Trial{}, err
	}
	met, err := Evaluate(t.ctx, m.UserFactors, m.ItemSide(), fit, valid, t.cfg.K, t.cfg.Threads)
	if err != nil {
		return Trial{}, err
	}
	d := time.Since(t0)
	if u := t.units(p.Factors, f); u > 0 {
		t.rate = append(t.rate, d.Seconds()/u)
	}
	tr := Trial{Number: len(t.res.Trials), Params: p, Metrics: met, Duration: d, Rung: rung,
		UserFraction: f.users, Split: s, Incumbent: incumbent}
	t.res.Trials = append(t.res.Trials, tr)
	if t.onTrial != nil {
		t.onTrial(tr)
	}
	return tr, nil
}

// search runs the three phases in order: the incumbent's noise estimate,
// ASHA, and the re-evaluation of the best challengers on a second split.
func (t *tuner) search(inc Params) error {
	noise, err := t.incumbent(inc)
	if err != nil || !noise {
		return err
	}
	if err := t.asha(inc); err != nil {
		return err
	}
	return t.reEvaluate(inc)
}

// incumbent is the search's first phase: the incumbent at full fidelity
// with NoiseSeeds seeds (two at least; more only when they are cheap),
// whose mean is the score to beat and whose spread the noise margin. It
// records the incumbent as the first configuration and reports whether
// there is a noise estimate to compare against (without one the
// incumbent stays and the search ends).
func (t *tuner) incumbent(inc Params) (noise bool, err error) {
	cfg, res := t.cfg, t.res
	topRung := len(t.rungs) - 1
	incFull := fidelity{inc.Iterations, 1}
	budget := cfg.Budget
	var incScores []float64
	for i := range cfg.NoiseSeeds {
		if i >= 2 && budget > 0 && t.predict(inc.Factors, incFull) > budget/30 {
			break // two seeds are the minimum; more only when they are cheap
		}
		p := inc
		p.Seed = inc.Seed + int64(i)
		tr, err := t.run(p, incFull, topRung, 0, true)
		if err != nil {
			return false, fmt.Errorf("incumbent: %w", err)
		}
		incScores = append(incScores, tr.Metrics.NDCG)
		if budget > 0 && budget-t.elapsed() <= 0 {
			break
		}
	}
	res.IncumbentScore, res.BestScore, res.BestTrial = feedback.Mean(incScores), feedback.Mean(incScores), 0
	res.NoiseMargin = feedback.StdDev(incScores)
	incCfg := &config{params: inc, x: t.space.point(inc), scores: make([]float64, topRung+1), trials: make([]int, topRung+1), promoted: make([]bool, topRung+1)}
	for r := range incCfg.scores {
		incCfg.scores[r], incCfg.trials[r] = res.IncumbentScore, 0
	}
	t.configs = append(t.configs, incCfg)
	if len(incScores) < 2 {
		res.StopReason = StopBudget
		return false, nil // no noise estimate, no comparison: the incumbent stays
	}
	return true, nil
}

// asha is the second phase: asynchronous successive halving. Each step
// promotes a configuration that earned the next rung, else samples a new
// one at the lowest (TPE, next), until the trial cap or the budget (less
// the final re-evaluation's reserve) stops it.
func (t *tuner) asha(inc Params) error {
	cfg, res := t.cfg, t.res
	topRung := len(t.rungs) - 1
	budget := cfg.Budget
	for {
		if err := t.ctx.Err(); err != nil {
			return err
		}
		if cfg.Trials > 0 && t.evals >= cfg.Trials {
			res.StopReason = StopTrials
			return nil
		}
		c, rung := t.promotion()
		if budget > 0 {
			free := budget - t.elapsed() - t.reserve(inc)
			if c != nil && t.predict(c.params.Factors, t.rungs[rung]) > free {
				c = nil // too late for it; a cheap new configuration may still fit
			}
			if c == nil {
				rung = 0
				if t.predict(8, t.rungs[0]) > free {
					res.StopReason = StopBudget
					return nil
				}
			}
		}
		if c == nil {
			p, ok := t.next()
			if !ok {
				res.StopReason = StopBudget
				return nil
			}
			c = &config{params: p, x: t.space.point(p)}
			t.configs = append(t.configs, c)
		} else {
			c.promoted[rung-1] = true
			res.Trials[c.trials[rung-1]].Promoted = true
			res.Trials[c.trials[rung-1]].Pruned = false
		}
		p := c.params
		p.Seed, p.Threads = cfg.Seed, cfg.Threads
		tr, err := t.run(p, t.rungs[rung], rung, 0, false)
		if err != nil {
			return fmt.Errorf("trial %d: %w", len(res.Trials), err)
		}
		t.evals++
		c.scores = append(c.scores, tr.Metrics.NDCG)
		c.trials = append(c.trials, tr.Number)
		c.promoted = append(c.promoted, false)
		if rung < topRung {
			res.Trials[tr.Number].Pruned = true // until promoted
		}
	}
}

// reEvaluate is the third phase: the best ReEvaluate full-fidelity
// challengers that beat the incumbent, and the incumbent, once more on the
// second split (seed+1); a challenger replaces the incumbent only when its
// mean over both splits beats the incumbent's by more than the noise.
func (t *tuner) reEvaluate(inc Params) error {
	cfg, res := t.cfg, t.res
	topRung := len(t.rungs) - 1
	incFull := fidelity{inc.Iterations, 1}
	var top []*config
	for _, c := range t.configs[1:] {
		if r, s := c.top(); r == topRung && s > res.IncumbentScore {
			top = append(top, c)
		}
	}
	slices.SortStableFunc(top, func(a, b *config) int { _, sa := a.top(); _, sb := b.top(); return cmpDesc(sa, sb) })
	top = top[:min(len(top), cfg.ReEvaluate)]
	if len(top) == 0 {
		return nil
	}
	reseed := func(p Params) Params {
		p.Seed, p.Threads = cfg.Seed+1, cfg.Threads
		return p
	}
	incRe, err := t.run(reseed(inc), incFull, topRung, 1, true)
	if err != nil {
		return fmt.Errorf("incumbent re-evaluation: %w", err)
	}
	incMean := (res.IncumbentScore + incRe.Metrics.NDCG) / 2
	res.IncumbentScore, res.BestScore = incMean, incMean
	best, bestMean := (*config)(nil), math.Inf(-1)
	for _, c := range top {
		tr, err := t.run(reseed(c.params), t.rungs[topRung], topRung, 1, false)
		if err != nil {
			return fmt.Errorf("re-evaluation: %w", err)
		}
		_, s0 := c.top()
		if m := (s0 + tr.Metrics.NDCG) / 2; m > bestMean {
			best, bestMean = c, m
		}
	}
	if best != nil && bestMean > incMean+res.NoiseMargin {
		res.Best, res.BestTrial, res.BestScore, res.KeptIncumbent = t.res.Trials[best.trials[topRung]].Params, best.trials[topRung], bestMean, false
		res.Best.Seed = cfg.Seed
	}
	return nil
}

// reserve is the time kept for the final re-evaluation: the current best
// ReEvaluate full-fidelity configurations that beat the incumbent, and the
// incumbent, once more (nothing while none does).
func (t *tuner) reserve(inc Params) time.Duration {
	top := len(t.rungs) - 1
	var full []*config
	for _, c := range t.configs[1:] {
		if r, s := c.top(); r == top && s > t.res.IncumbentScore {
			full = append(full, c)
		}
	}
	if len(full) == 0 {
		return 0
	}
	slices.SortStableFunc(full, func(a, b *config) int { _, sa := a.top(); _, sb := b.top(); return cmpDesc(sa, sb) })
	d := t.predict(inc.Factors, fidelity{inc.Iterations, 1})
	for _, c := range full[:min(len(full), t.cfg.ReEvaluate)] {
		d += t.predict(c.params.Factors, t.rungs[top])
	}
	return d
}

// promotion finds a configuration in the top 1/Eta of its rung that has
// not been promoted yet, from the highest rung down (ASHA).
func (t *tuner) promotion() (*config, int) {
	for r := len(t.rungs) - 2; r >= 0; r-- {
		var at []*config
		for _, c := range t.configs[1:] {
			if len(c.scores) > r {
				at = append(at, c)
			}
		}
		slices.SortStableFunc(at, func(a, b *config) int { return cmpDesc(a.scores[r], b.scores[r]) })
		for _, c := range at[:len(at)/t.cfg.Eta] {
			if !c.promoted[r] {
				return c, r + 1
			}
		}
	}
	return nil, 0
}

// next is a new configuration: enqueued, random, then TPE. ok is false
// when nothing affordable is left.
func (t *tuner) next() (Params, bool) {
	base := t.res.Incumbent
	limit := t.factorsLimit()
	if limit < 8 {
		return Params{}, false
	}
	for len(t.queue) > 0 {
		p := t.queue[0]
		t.queue = t.queue[1:]
		if p.Factors <= limit {
			p.Iterations = t.cfg.Iterations
			return p, true
		}
	}
	t.sampled++
	if t.sampled <= t.cfg.StartupTrials {
		return t.random(base, limit), true
	}
	return t.tpe(base, limit), true
}

// factorsLimit is the largest rank whose full-fidelity evaluation fits in
// a sixth of the budget, or the incumbent's rank if larger (the search
// must be able to challenge it at its own size), and whose lowest rung
// fits in what is left.
func (t *tuner) factorsLimit() int {
	if t.cfg.Budget <= 0 {
		return t.fmax
	}
	free := t.cfg.Budget - t.elapsed() - t.reserve(t.res.Incumbent)
	top := t.rungs[len(t.rungs)-1]
	f := t.fmax
	for f >= 8 && ((f > t.res.Incumbent.Factors && t.predict(f, top) > t.cfg.Budget/6) || t.predict(f, t.rungs[0]) > free) {
		f = int(float64(f) / 1.1)
	}
	if inc := t.res.Incumbent.Factors; f < inc && inc <= t.fmax && t.predict(inc, t.rungs[0]) <= free {
		f = inc // the 10 % steps can skip past it
	}
	return f
}

func (t *tuner) random(base Params, limit int) Params {
	var x [numDims]float64
	for d := range x {
		x[d] = t.space.lo[d] + t.rng.Float64()*(t.space.hi[d]-t.space.lo[d])
	}
	var ws []int
	for i, ok := range t.allowed {
		if ok {
			ws = append(ws, i)
		}
	}
	x[dimWeighting] = float64(ws[t.rng.IntN(len(ws))])
	x[dimFactors] = math.Min(x[dimFactors], math.Log(float64(limit)))
	return t.space.params(x, base)
}

// tpe suggests a configuration from every configuration so far, each
// ranked by the highest rung it reached and then its score there (as
// Optuna ranks pruned trials).
func (t *tuner) tpe(base Params, limit int) Params {
	cs := slices.Clone(t.configs)
	slices.SortStableFunc(cs, func(a, b *config) int {
		ra, sa := a.top()
		rb, sb := b.top()
		if ra != rb {
			return rb - ra
		}
		return cmpDesc(sa, sb)
	})
	nGood := tpeGamma(len(cs))
	good, bad := cs[:nGood], cs[nGood:]
	// Weights follow age: configurations in order of creation.
	age := map[*config]int{}
	for i, c := range t.configs {
		age[c] = i
	}
	w := tpeWeights(len(t.configs))
	var x [numDims]float64
	cat := func(group []*config) categorical {
		var obs []int
		var ow []float64
		for _, c := range group {
			obs = append(obs, int(c.x[dimWeighting]))
			ow = append(ow, w[age[c]])
		}
		cd := newCategorical(obs, ow, len(searchWeightings))
		for i, ok := range t.allowed {
			if !ok {
				cd[i] = 0
			}
		}
		return cd
	}
	gw, bw := cat(good), cat(bad)
	x[dimWeighting] = float64(tpeSuggestCategorical(t.rng, gw, bw))
	wi := int(x[dimWeighting])
	est := func(group []*config, d int) parzen {
		var obs, ow []float64
		for _, c := range group {
			if v := c.x[d]; !math.IsNaN(v) && (d < dimLogEps || int(c.x[dimWeighting]) == wi) {
				obs = append(obs, v)
				ow = append(ow, w[age[c]])
			}
		}
		return newParzen(obs, ow, t.space.lo[d], t.space.hi[d])
	}
	for d := dimFactors; d < numDims; d++ {
		var allowed func(float64) bool
		if d == dimFactors {
			lim := math.Log(float64(limit) + 0.5)
			allowed = func(v float64) bool { return v <= lim }
		}
		x[d] = tpeSuggest(t.rng, est(good, d), est(bad, d), allowed)
	}
	return t.space.params(x, base)
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
