package als

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/setlist/setlist/internal/feedback"
	"github.com/setlist/setlist/internal/realdata"
)

// plantedCounts is data whose right answers are known: users belong to one
// of groups (a rank-groups structure: every group likes its own block of
// items), each with a few random items outside it, and every play count is
// drawn heavy-tailed (log-normal, σ = 2) independently of taste, so raw
// counts put a row's weight on a random entry or two: a damping weighting
// (log or bm25) is right, raw is wrong, and about groups factors suffice.
func plantedCounts(users, items, groups int, seed uint64) *feedback.CSR {
	rng := rand.New(rand.NewPCG(seed, 2))
	per := items / groups
	var e []feedback.Entry
	count := func(sigma float64) float32 { return float32(math.Ceil(math.Exp(rng.NormFloat64() * sigma))) }
	for u := 0; u < users; u++ {
		g := u % groups
		for j := 0; j < per; j++ {
			if rng.Float64() < 0.5 {
				e = append(e, feedback.Entry{Row: int32(u), Col: int32(g*per + j), Value: count(0.5)})
			}
		}
		for n := 0; n < 3; n++ {
			e = append(e, feedback.Entry{Row: int32(u), Col: int32(rng.IntN(items)), Value: 20 * count(1.5)})
		}
	}
	return feedback.NewCSR(users, items, e)
}

// TestTuneFindsPlantedStructure: on plantedCounts the tuner must find a
// damped confidence and a rank near the 16 planted groups. (A grid over
// weighting × factors {8..64} × α {0.1, 1, 10} on this data scores raw at
// most 0.17 NDCG@5 on validation, log and bm25 0.21 at 16 factors, and
// every weighting loses at 8 and at 64.) Damping can come from log, bm25
// or from raw with an α so small that every entry weighs about the same:
// the test asks for the effect, the confidence of the heavy background
// counts relative to a taste entry's, not for a name.
func TestTuneFindsPlantedStructure(t *testing.T) {
	m := plantedCounts(960, 320, 16, 1)
	train, test := feedback.SplitHoldout(m, 0.15, 3)
	bad := DefaultParams()
	bad.Factors, bad.Weighting, bad.Alpha = 64, feedback.WeightRaw, 1
	cfg := TuneConfig{Trials: 60, Seed: 5, Threads: 2, Incumbent: &bad}
	res, err := Tune(context.Background(), train, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := res.Best
	t.Logf("best %s f=%d λ=%.3g α=%.3g (trial %d of %d, validation %.4f vs incumbent %.4f ± %.4f)",
		b.Weighting, b.Factors, b.Regularization, b.Alpha, res.BestTrial, len(res.Trials), res.BestScore, res.IncumbentScore, res.NoiseMargin)
	if r := confidenceRatio(train, b); res.KeptIncumbent || r > 3 {
		t.Errorf("picked %s α=%.3g (kept incumbent %v): background plays weigh %.1f× a taste entry, want ≤ 3× (raw α=1: %.1f×)",
			b.Weighting, b.Alpha, res.KeptIncumbent, r, confidenceRatio(train, bad))
	}
	// Rank: fewer factors than groups cannot separate them; more are
	// harmless when λ shrinks them (as the search is free to do), so the
	// pick is judged by what it scores against the planted truth: log
	// weighting at 16 factors with the best of a few α.
	if b.Factors < 12 {
		t.Errorf("picked %d factors, fewer than the 16 planted groups can use", b.Factors)
	}
	var truth float64
	for _, a := range []float64{0.1, 0.3, 1} {
		p := DefaultParams()
		p.Factors, p.Weighting, p.Alpha = 16, feedback.WeightLog, a
		truth = max(truth, holdoutNDCG(t, train, test, p))
	}
	if tuned := holdoutNDCG(t, train, test, b); tuned < 0.97*truth {
		t.Errorf("tuned holdout NDCG@5 %.4f, below 97%% of the planted truth's %.4f", tuned, truth)
	} else {
		t.Logf("tuned holdout NDCG@5 %.4f, planted truth %.4f", tuned, truth)
	}
	if tuned, inc := holdoutNDCG(t, train, test, b), holdoutNDCG(t, train, test, bad); tuned < inc*1.1 {
		t.Errorf("tuned holdout NDCG@5 %.4f is not 10%% above the raw incumbent's %.4f", tuned, inc)
	}
	// Every rung's results are kept; the pick names a full-fidelity trial.
	rungs := map[int]int{}
	for _, tr := range res.Trials {
		rungs[tr.Rung]++
	}
	if len(rungs) < 2 || res.Trials[res.BestTrial].Rung != len(rungs)-1 || res.Trials[res.BestTrial].Params.Factors != b.Factors {
		t.Errorf("trials per rung %v, best trial %+v", rungs, res.Trials[res.BestTrial])
	}
}

// confidenceRatio is the mean confidence of plantedCounts' background
// entries (counts ≥ 10) over that of its taste entries (counts ≤ 2).
func confidenceRatio(m *feedback.CSR, p Params) float64 {
	c := weighMatrix(m, p, feedback.ItemWeights(m, p.Weighing()))
	var hi, lo float64
	var nh, nl int
	for i, v := range m.Data {
		switch {
		case v >= 10:
			hi, nh = hi+1+float64(c.cm1[i]), nh+1
		case v <= 2:
			lo, nl = lo+1+float64(c.cm1[i]), nl+1
		}
	}
	return (hi / float64(nh)) / (lo / float64(nl))
}

func holdoutNDCG(t *testing.T, train, test *feedback.CSR, p Params) float64 {
	t.Helper()
	p.Threads = 2
	m, err := Train(context.Background(), train, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	met, err := Evaluate(context.Background(), m.UserFactors, m.ItemSide(), train, test, 5, 2)
	if err != nil {
		t.Fatal(err)
	}
	return met.NDCG
}

// TestTuneKeepsIncumbent: when every challenger is worse (raw weighting and
// at most 8 factors against the planted data's right answer), the incumbent
// is returned untouched.
func TestTuneKeepsIncumbent(t *testing.T) {
	m := plantedCounts(960, 320, 16, 1)
	inc := DefaultParams()
	inc.Factors, inc.Weighting, inc.Alpha, inc.LogEpsilon, inc.Iterations = 16, feedback.WeightLog, 0.3, 1, 12
	cfg := TuneConfig{Trials: 20, Seed: 9, Threads: 2, Incumbent: &inc, Weightings: []feedback.Weighting{feedback.WeightRaw}, FactorsMax: 8}
	res, err := Tune(context.Background(), m, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	inc.Seed, inc.Threads = cfg.Seed, cfg.Threads
	if !res.KeptIncumbent || res.Best != inc || res.BestTrial != 0 || !res.Trials[0].Incumbent {
		t.Fatalf("kept incumbent %v, best %+v (trial %d), want the incumbent %+v", res.KeptIncumbent, res.Best, res.BestTrial, inc)
	}
	var searched, seeds int
	for _, tr := range res.Trials {
		if tr.Incumbent {
			seeds++
		} else {
			searched++
			if tr.Params.Weighting != feedback.WeightRaw || tr.Params.Factors > 8 {
				t.Fatalf("trial %d outside the restricted space: %+v", tr.Number, tr.Params)
			}
		}
	}
	if seeds != 3 || res.NoiseMargin < 0 {
		t.Errorf("incumbent evaluated %d times, noise margin %v; want 3 seeds", seeds, res.NoiseMargin)
	}
	if searched != 20 {
		t.Errorf("%d search trials, want the cap of 20", searched)
	}
}

// TestTuneDeterministic: without a budget, the same seed and thread count
// give the same trials and pick.
func TestTuneDeterministic(t *testing.T) {
	m := planted(300, 120, 6, 4)
	cfg := TuneConfig{Trials: 16, Seed: 3, Threads: 2}
	a, err := Tune(context.Background(), m, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Tune(context.Background(), m, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.Best != b.Best || a.BestTrial != b.BestTrial || len(a.Trials) != len(b.Trials) {
		t.Fatalf("runs differ: best %+v / %+v, %d / %d trials", a.Best, b.Best, len(a.Trials), len(b.Trials))
	}
	for i := range a.Trials {
		x, y := a.Trials[i], b.Trials[i]
		if x.Params != y.Params || x.Metrics != y.Metrics || x.Rung != y.Rung || x.Pruned != y.Pruned || x.Promoted != y.Promoted {
			t.Fatalf("trial %d differs: %+v vs %+v", i, x, y)
		}
	}
	cfg.Seed = 4
	c, err := Tune(context.Background(), m, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	same := true
	for i := range min(len(a.Trials), len(c.Trials)) {
		same = same && a.Trials[i].Params == c.Trials[i].Params
	}
	if same {
		t.Error("another seed searched the same configurations")
	}
}

// TestTuneBudget: the search spends its budget (most of it) and overruns by
// at most one trial; the trial cap is optional on top.
func TestTuneBudget(t *testing.T) {
	m := plantedCounts(960, 320, 16, 2)
	const budget = 3 * time.Second
	start := time.Now()
	res, err := Tune(context.Background(), m, TuneConfig{Budget: budget, Seed: 1, Threads: 2}, nil)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	var longest time.Duration
	for _, tr := range res.Trials {
		longest = max(longest, tr.Duration)
	}
	t.Logf("%d trials in %v (longest %v), stop %s", len(res.Trials), took, longest, res.StopReason)
	if res.StopReason != StopBudget || res.Budget != budget {
		t.Errorf("stop %q, budget %v; want stopped by the %v budget", res.StopReason, res.Budget, budget)
	}
	if res.Used < budget*7/10 {
		t.Errorf("used %v of a %v budget", res.Used, budget)
	}
	if res.Used > budget+longest+longest/2 || took > res.Used+time.Second {
		t.Errorf("used %v (call took %v) of a %v budget; longest trial %v", res.Used, took, budget, longest)
	}
	res, err = Tune(context.Background(), m, TuneConfig{Budget: time.Hour, Trials: 5, Seed: 1, Threads: 2}, nil)
	if err != nil || res.StopReason != StopTrials {
		t.Fatalf("with a trial cap: stop %q, err %v", res.StopReason, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if res, err = Tune(ctx, m, TuneConfig{Budget: budget}, nil); err == nil || res.StopReason != StopCancelled {
		t.Fatalf("cancelled: stop %q, err %v", res.StopReason, err)
	}
	if _, err := Tune(context.Background(), m, TuneConfig{Trials: -1}, nil); err == nil {
		t.Fatal("negative trials accepted")
	}
}

// TestParzen checks the estimator against densities computed by hand.
// Observations 0.2 and 0.6 on [0, 1] plus the prior at 0.5: sorted 0.2,
// 0.5, 0.6, so bandwidths are max(0.2−0, 0.5−0.2) = 0.3 and
// max(0.6−0.5, 1−0.6) = 0.4, the prior's is the range, 1; the clip floor
// 1/min(100, 1+3) = 0.25 binds none. Weights are 1/3 each.
func TestParzen(t *testing.T) {
	p := newParzen([]float64{0.2, 0.6}, []float64{1, 1}, 0, 1)
	phi := func(x float64) float64 { return 0.5 * (1 + math.Erf(x/math.Sqrt2)) }
	kernel := func(x, mu, sd float64) float64 {
		z := phi((1-mu)/sd) - phi((0-mu)/sd)
		return math.Exp(-(x-mu)*(x-mu)/(2*sd*sd)) / (sd * math.Sqrt(2*math.Pi)) / z
	}
	for _, x := range []float64{0, 0.25, 0.4, 0.9} {
		want := (kernel(x, 0.2, 0.3) + kernel(x, 0.6, 0.4) + kernel(x, 0.5, 1)) / 3
		if got := math.Exp(p.logPDF(x)); math.Abs(got-want) > 1e-12 {
			t.Errorf("density at %v = %v, want %v", x, got, want)
		}
	}
	// The magic clip: of ten observations packed at 0.5 those inside the
	// pack get bandwidth 1/min(100, 1+11) = 1/12 (the first keeps its gap
	// to the range's end, 0.5).
	var obs, w []float64
	for range 10 {
		obs, w = append(obs, 0.5), append(w, 1)
	}
	if q := newParzen(obs, w, 0, 1); math.Abs(q.sigmas[5]-1.0/12) > 1e-12 || q.sigmas[0] != 0.5 || q.sigmas[10] != 1 {
		t.Errorf("clipped bandwidths %v", q.sigmas)
	}
	// Sampling follows the density: the share of draws in [0, 0.4] matches
	// the integral of the mixture there.
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 200000
	in := 0
	for range n {
		if v := p.sample(rng); v <= 0.4 {
			in++
		} else if v < 0 || v > 1 {
			t.Fatalf("sample %v outside [0, 1]", v)
		}
	}
	mass := func(mu, sd float64) float64 {
		return (phi((0.4-mu)/sd) - phi((0-mu)/sd)) / (phi((1-mu)/sd) - phi((0-mu)/sd))
	}
	want := (mass(0.2, 0.3) + mass(0.6, 0.4) + mass(0.5, 1)) / 3
	if got := float64(in) / n; math.Abs(got-want) > 0.005 {
		t.Errorf("share of samples ≤ 0.4 = %.4f, want %.4f", got, want)
	}
	// Categorical: counts 2, 0, 1 plus prior weight 1/3 each, over 4.
	c := newCategorical([]int{0, 2, 0}, []float64{1, 1, 1}, 3)
	for i, want := range []float64{(2 + 1.0/3) / 4, (1.0 / 3) / 4, (1 + 1.0/3) / 4} {
		if math.Abs(c[i]-want) > 1e-12 {
			t.Errorf("p(%d) = %v, want %v", i, c[i], want)
		}
	}
	if tpeGamma(9) != 1 || tpeGamma(11) != 2 || tpeGamma(1000) != 25 {
		t.Error("gamma(n) is not min(ceil(n/10), 25)")
	}
	if w := tpeWeights(27); w[0] != 1.0/27 || w[1] != 1 || w[26] != 1 {
		t.Errorf("ramp weights %v", w)
	}
	// The suggestion maximises l/g: with good at 0.1 and bad at 0.9 it
	// lands in the lower half.
	good := newParzen([]float64{0.1, 0.12}, []float64{1, 1}, 0, 1)
	badP := newParzen([]float64{0.9, 0.85, 0.8}, []float64{1, 1, 1}, 0, 1)
	if x := tpeSuggest(rng, good, badP, nil); x > 0.5 {
		t.Errorf("suggested %v, want below 0.5", x)
	}
}

// TestDefaultsOnCommittedSample: the playground's first start trains
// DefaultParamsFor on the committed sample (303 users) without tuning; that
// model must beat popularity by a wide margin on a holdout, on several
// holdout draws.
func TestDefaultsOnCommittedSample(t *testing.T) {
	m, err := realdata.ReadCSR("../../data/sample.csv.gz")
	if err != nil {
		t.Fatal(err)
	}
	for seed := int64(1); seed <= 3; seed++ {
		train, test := feedback.SplitHoldout(m, 0.15, seed)
		p := DefaultParamsFor(train)
		p.Threads = 2
		als := holdoutNDCG(t, train, test, p)
		pop := feedback.PopularityBaseline(train, test, 5).NDCG
		t.Logf("seed %d: %d factors %s: NDCG@5 %.4f, popularity %.4f", seed, p.Factors, p.Weighting, als, pop)
		if als < 2.5*pop {
			t.Errorf("seed %d: defaults NDCG@5 %.4f, not 2.5 times popularity's %.4f", seed, als, pop)
		}
	}
}

// TestDefaultParamsForScales: the first run's rank follows the data's size
// and log ε its median count.
func TestDefaultParamsForScales(t *testing.T) {
	small := plantedCounts(96, 64, 4, 1) // ~1.5k non-zeros
	big := plantedCounts(3000, 2000, 16, 1)
	ps, pb := DefaultParamsFor(small), DefaultParamsFor(big)
	if ps.Factors >= pb.Factors || ps.Factors > 16 || pb.Factors < 64 || pb.Factors > 256 {
		t.Errorf("factors %d for %d nnz and %d for %d nnz", ps.Factors, small.NNZ(), pb.Factors, big.NNZ())
	}
	s := StatsOf(big)
	if pb.LogEpsilon != s.CountMedian || s.CountMax < s.CountP90 || s.CountP90 < s.CountMedian || s.Rows != 3000 {
		t.Errorf("stats %+v, log ε %v", s, pb.LogEpsilon)
	}
	if err := ps.Validate(); err != nil {
		t.Error(err)
	}
}
