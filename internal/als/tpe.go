package als

import (
	"math"
	"math/rand/v2"
)

// A hand-written tree-structured Parzen estimator (TPE), the sampler
// Optuna uses by default (Bergstra et al. 2011; Watanabe 2023). No Go port
// of Optuna or of a TPE sampler is served by the module proxy here, so it
// is written out: univariate (one estimator per parameter, as Optuna's
// default multivariate=False), with a prior component (prior_weight 1),
// the "magic clip" lower bound on bandwidths, Optuna's ramp weights for old
// trials and 24 candidates per suggestion. Observations are split into a
// good group (the best gamma(n) = min(ceil(0.1·n), 25)) and the rest; a
// parameter's suggestion is the candidate drawn from the good density l(x)
// that maximises l(x)/g(x).

const (
	tpeCandidates  = 24
	tpePriorWeight = 1.0
)

// tpeGamma is the size of the good group among n observations.
func tpeGamma(n int) int { return min(int(math.Ceil(0.1*float64(n))), 25) }

// tpeWeights are the observations' weights, oldest first: equal up to 25,
// then a linear ramp from 1/n up to 1 for all but the newest 25 (Optuna's
// default_weights), so a long search slowly forgets its first trials.
func tpeWeights(n int) []float64 {
	w := make([]float64, n)
	for i := range w {
		w[i] = 1
	}
	if n <= 25 {
		return w
	}
	ramp := n - 25
	for i := 0; i < ramp; i++ {
		if ramp == 1 {
			w[i] = 1 / float64(n)
			continue
		}
		w[i] = 1/float64(n) + (1-1/float64(n))*float64(i)/float64(ramp-1)
	}
	return w
}

// parzen is a mixture of Gaussians truncated to [lo, hi]: one kernel per
// observation plus a prior kernel at the middle of the range with the
// range's width as bandwidth. Each kernel's bandwidth is the larger gap to
// its sorted neighbours (the range ends count as neighbours), clipped to
// [(hi−lo)/min(100, 1+kernels), hi−lo].
type parzen struct {
	mus, sigmas, weights []float64 // weights sum to 1
	lo, hi               float64
}

func newParzen(obs, obsWeights []float64, lo, hi float64) parzen {
	p := parzen{lo: lo, hi: hi}
	width := hi - lo
	n := len(obs)
	mus := append(append([]float64(nil), obs...), 0.5*(lo+hi))
	w := append(append([]float64(nil), obsWeights...), tpePriorWeight)
	// Sort indices by mu to find each kernel's neighbours.
	order := make([]int, len(mus))
	for i := range order {
		order[i] = i
	}
	for i := 1; i < len(order); i++ { // insertion sort: n is small and the order must be stable
		for j := i; j > 0 && mus[order[j]] < mus[order[j-1]]; j-- {
			order[j], order[j-1] = order[j-1], order[j]
		}
	}
	sig := make([]float64, len(mus))
	for r, i := range order {
		left, right := lo, hi
		if r > 0 {
			left = mus[order[r-1]]
		}
		if r < len(order)-1 {
			right = mus[order[r+1]]
		}
		sig[i] = max(mus[i]-left, right-mus[i])
	}
	minSig := width / math.Min(100, float64(1+len(mus)))
	for i := range sig {
		sig[i] = math.Min(math.Max(sig[i], minSig), width)
	}
	sig[n] = width // the prior's bandwidth is the whole range
	var total float64
	for _, x := range w {
		total += x
	}
	for i := range w {
		w[i] /= total
	}
	p.mus, p.sigmas, p.weights = mus, sig, w
	return p
}

func normCDF(x float64) float64 { return 0.5 * (1 + math.Erf(x/math.Sqrt2)) }

// logPDF is the log density of the truncated mixture at x in [lo, hi].
func (p parzen) logPDF(x float64) float64 {
	var s float64
	for i, mu := range p.mus {
		sd := p.sigmas[i]
		z := normCDF((p.hi-mu)/sd) - normCDF((p.lo-mu)/sd)
		if z <= 0 {
			continue
		}
		d := (x - mu) / sd
		s += p.weights[i] * math.Exp(-0.5*d*d) / (sd * math.Sqrt(2*math.Pi) * z)
	}
	if s <= 0 {
		return math.Inf(-1)
	}
	return math.Log(s)
}

// sample draws from the mixture: a kernel by weight, then its truncated
// Gaussian by inverting the CDF.
func (p parzen) sample(rng *rand.Rand) float64 {
	u, i := rng.Float64(), 0
	for acc := p.weights[0]; u > acc && i < len(p.weights)-1; {
		i++
		acc += p.weights[i]
	}
	mu, sd := p.mus[i], p.sigmas[i]
	a, b := normCDF((p.lo-mu)/sd), normCDF((p.hi-mu)/sd)
	q := a + rng.Float64()*(b-a)
	q = math.Min(math.Max(q, 1e-12), 1-1e-12)
	x := mu + sd*math.Sqrt2*math.Erfinv(2*q-1)
	return math.Min(math.Max(x, p.lo), p.hi)
}

// categorical is a smoothed histogram: p(c) ∝ Σ weights of observations of
// c + prior_weight/C.
type categorical []float64

func newCategorical(obs []int, obsWeights []float64, n int) categorical {
	c := make(categorical, n)
	total := tpePriorWeight
	for i := range c {
		c[i] = tpePriorWeight / float64(n)
	}
	for i, o := range obs {
		c[o] += obsWeights[i]
		total += obsWeights[i]
	}
	for i := range c {
		c[i] /= total
	}
	return c
}

func (c categorical) sample(rng *rand.Rand) int {
	u, acc := rng.Float64(), 0.0
	for i, p := range c {
		acc += p
		if u < acc {
			return i
		}
	}
	return len(c) - 1
}

// tpeSuggest draws tpeCandidates from the good density and returns the one
// with the largest l(x)/g(x); allowed (nil: all) rejects candidates the
// caller cannot afford, falling back to the best affordable draw from the
// prior range's lower end when none is.
func tpeSuggest(rng *rand.Rand, good, bad parzen, allowed func(float64) bool) float64 {
	best, bestScore, found := 0.0, math.Inf(-1), false
	for range tpeCandidates {
		x := good.sample(rng)
		if allowed != nil && !allowed(x) {
			continue
		}
		if s := good.logPDF(x) - bad.logPDF(x); !found || s > bestScore {
			best, bestScore, found = x, s, true
		}
	}
	if !found {
		return good.lo
	}
	return best
}

func tpeSuggestCategorical(rng *rand.Rand, good, bad categorical) int {
	best, bestScore := 0, math.Inf(-1)
	for range tpeCandidates {
		c := good.sample(rng)
		if s := math.Log(good[c]) - math.Log(bad[c]); s > bestScore {
			best, bestScore = c, s
		}
	}
	return best
}
