package experiment

import (
	"fmt"
	"math"

	"github.com/setlist/setlist"
)

// The test. An experiment's readout is looked at whenever someone runs
// `batch experiment status` (and the hourly CronJob pushes it for the
// alert), so a fixed-horizon test would be peeked at dozens of times and
// its 5 % false-positive rate would climb far past that. The readout uses
// the mixture sequential probability ratio test (mSPRT) of Johari,
// Pekelis and Walsh ("Always valid inference", 2017; Johari et al., Oper.
// Res. 2022) for the difference of two proportions: with θ the challenger's
// rate minus control's, θ̂ its estimate and V = p̂c(1−p̂c)/nc + p̂t(1−p̂t)/nt
// its variance, the likelihood ratio of "θ ~ N(0, τ²)" against "θ = 0" is
//
//	Λ = sqrt(V/(V+τ²)) · exp(θ̂² τ² / (2V(V+τ²)))
//
// a (asymptotic) martingale under θ = 0, so by Ville's inequality
// P(Λ ever reaches 1/α) ≤ α: the test may be read after every answer and
// stopped at any time. p = min(1, 1/Λ) is an always-valid p-value and
// {θ0 : Λ(θ̂−θ0) < 1/α} an always-valid confidence interval. τ is the
// minimum detectable effect the experiment was started with: the mixture is
// most powerful near effects of that size. The price of peeking freely is
// power: at the same α it needs more users than a fixed-horizon z-test
// planned for that effect, whose sample size is printed beside it
// (PlannedUsers) as the scale to expect.

// Counts is one arm's outcome: exposed units (users, or user-days) and how
// many of them converted (liked at least one song they were shown).
type Counts struct {
	Units     int64 `json:"units"`
	Converted int64 `json:"converted"`
}

// Rate is Converted/Units (0 with no units).
func (c Counts) Rate() float64 {
	if c.Units == 0 {
		return 0
	}
	return float64(c.Converted) / float64(c.Units)
}

// Design is what a test is run with.
type Design struct {
	Alpha float64 // false-positive rate, two-sided (e.g. 0.05)
	MDE   float64 // minimum detectable effect: absolute difference in rates (e.g. 0.02), the mixture's τ
	Share float64 // challenger's share of users, for the planned sample size
	Power float64 // power of the fixed-horizon reference plan (e.g. 0.8)
}

// Validate checks the design's ranges.
func (d Design) Validate() error {
	switch {
	case !(d.Alpha > 0 && d.Alpha < 1):
		return fmt.Errorf("alpha must be in (0, 1), got %v: %w", d.Alpha, setlist.ErrInvalid)
	case !(d.MDE > 0 && d.MDE < 1):
		return fmt.Errorf("minimum detectable effect must be in (0, 1), got %v: %w", d.MDE, setlist.ErrInvalid)
	case !(d.Share > 0 && d.Share < 1):
		return fmt.Errorf("share must be in (0, 1), got %v: %w", d.Share, setlist.ErrInvalid)
	case !(d.Power > 0 && d.Power < 1):
		return fmt.Errorf("power must be in (0, 1), got %v: %w", d.Power, setlist.ErrInvalid)
	}
	return nil
}

// Verdicts of a readout.
const (
	VerdictTooEarly   = "too early"         // an arm has too few conversions or non-conversions for the normal approximation
	VerdictNone       = "no difference yet" // Λ < 1/α: keep running, or stop for lack of effect
	VerdictBetter     = "challenger better" // Λ ≥ 1/α and θ̂ > 0
	VerdictWorse      = "challenger worse"  // Λ ≥ 1/α and θ̂ < 0
	minOutcomesPerArm = 10                  // conversions and non-conversions each arm needs before a verdict
)

// Interval is a two-sided confidence interval.
type Interval struct {
	Low  float64 `json:"low"`
	High float64 `json:"high"`
}

// Result is a readout: each arm's rate with its 95 % Wilson interval, the
// difference with its always-valid (1−α) interval, the mixture likelihood
// ratio, the always-valid p-value and the verdict.
type Result struct {
	Control        Counts   `json:"control"`
	Challenger     Counts   `json:"challenger"`
	ControlRate    float64  `json:"control_rate"`
	ChallengerRate float64  `json:"challenger_rate"`
	ControlCI      Interval `json:"control_ci"`
	ChallengerCI   Interval `json:"challenger_ci"`
	Diff           float64  `json:"diff"`
	DiffCI         Interval `json:"diff_ci"`
	LR             float64  `json:"likelihood_ratio"`
	P              float64  `json:"p_value"`
	Alpha          float64  `json:"alpha"`
	Verdict        string   `json:"verdict"`
	// PlannedUsers is the total units (both arms) a fixed-horizon
	// two-proportion z-test needs to detect MDE at α and the power, at
	// control's observed rate (0 before control has data).
	PlannedUsers int64 `json:"planned_units"`
}

// Test reads out an experiment.
func Test(d Design, control, challenger Counts) Result {
	r := Result{Control: control, Challenger: challenger, Alpha: d.Alpha, LR: 1, P: 1}
	r.ControlRate, r.ChallengerRate = control.Rate(), challenger.Rate()
	r.ControlCI, r.ChallengerCI = Wilson(control, 1.959963984540054), Wilson(challenger, 1.959963984540054)
	r.Diff = r.ChallengerRate - r.ControlRate
	r.DiffCI = Interval{Low: -1, High: 1}
	if control.Units > 0 {
		r.PlannedUsers = PlannedUnits(r.ControlRate, d)
	}
	enough := func(c Counts) bool {
		return c.Converted >= minOutcomesPerArm && c.Units-c.Converted >= minOutcomesPerArm
	}
	if !enough(control) || !enough(challenger) {
		r.Verdict = VerdictTooEarly
		return r
	}
	v := variance(control) + variance(challenger)
	tau2 := d.MDE * d.MDE
	r.LR = MixtureLR(r.Diff, v, tau2)
	r.P = math.Min(1, 1/r.LR)
	half := math.Sqrt(2 * v * (v + tau2) / tau2 * (math.Log(1/d.Alpha) + 0.5*math.Log((v+tau2)/v)))
	r.DiffCI = Interval{Low: r.Diff - half, High: r.Diff + half}
	switch {
	case r.LR < 1/d.Alpha:
		r.Verdict = VerdictNone
	case r.Diff > 0:
		r.Verdict = VerdictBetter
	default:
		r.Verdict = VerdictWorse
	}
	return r
}

func variance(c Counts) float64 {
	p := c.Rate()
	return p * (1 - p) / float64(c.Units)
}

// MixtureLR is the mSPRT likelihood ratio of an estimate theta with
// variance v against zero, under a N(0, tau2) mixture over the effect.
func MixtureLR(theta, v, tau2 float64) float64 {
	return math.Sqrt(v/(v+tau2)) * math.Exp(theta*theta*tau2/(2*v*(v+tau2)))
}

// Wilson is the Wilson score interval of a proportion at normal quantile z.
func Wilson(c Counts, z float64) Interval {
	if c.Units == 0 {
		return Interval{0, 1}
	}
	n := float64(c.Units)
	p := c.Rate()
	den := 1 + z*z/n
	mid := (p + z*z/(2*n)) / den
	half := z * math.Sqrt(p*(1-p)/n+z*z/(4*n*n)) / den
	return Interval{Low: math.Max(0, mid-half), High: math.Min(1, mid+half)}
}

// PlannedUnits is the total sample (both arms) a fixed-horizon two-sided
// two-proportion z-test needs to detect an absolute difference d.MDE from
// baseline rate p at d.Alpha with d.Power, splitting d.Share to the
// challenger: N = (z₁₋α/₂ + z_power)² · p(1−p) · (1/s + 1/(1−s)) / MDE².
func PlannedUnits(p float64, d Design) int64 {
	if p <= 0 || p >= 1 {
		p = 0.5 // no information: the largest variance
	}
	z := NormalQuantile(1-d.Alpha/2) + NormalQuantile(d.Power)
	n := z * z * p * (1 - p) * (1/d.Share + 1/(1-d.Share)) / (d.MDE * d.MDE)
	return int64(math.Ceil(n))
}

// NormalQuantile is the standard normal quantile function (inverse CDF),
// by bisection on math.Erfc to double precision: it is called a handful of
// times per readout.
func NormalQuantile(p float64) float64 {
	if p <= 0 {
		return math.Inf(-1)
	}
	if p >= 1 {
		return math.Inf(1)
	}
	lo, hi := -40.0, 40.0
	for range 200 {
		mid := (lo + hi) / 2
		if 0.5*math.Erfc(-mid/math.Sqrt2) < p {
			lo = mid
		} else {
			hi = mid
		}
		if hi-lo < 1e-15 {
			break
		}
	}
	return (lo + hi) / 2
}
