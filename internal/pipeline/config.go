package pipeline

import (
	"errors"
	"fmt"
	"time"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/als"
	"github.com/setlist/setlist/internal/ease"
	"github.com/setlist/setlist/internal/feedback"
	"github.com/setlist/setlist/internal/model"
)

// Defaults of a Config's zero fields.
const (
	// DefaultK is the depth of the stored lists, four times the API's
	// default n of 5: a takedown or a request filter rarely leaves fewer
	// than n songs of it, so serve answers from it instead of scoring.
	// Measured on the shared data (docs/BENCHMARKS.md, "Stored list
	// depth"): 376 bytes of Redis per user against 200 at depth 5, and
	// hiding the 100 most popular songs runs 1.7 % of lists short of 5
	// against 63 % at depth 5 (depth 50: 0 %, 760 bytes).
	DefaultK              = 20
	DefaultPopular        = 100
	DefaultHoldout        = 0.15
	DefaultMaxRegression  = 0.05
	DefaultSeed           = 42
	DefaultWarmIterations = 3
	DefaultKeep           = 10
	evalK                 = 5 // what serve shows; the gate compares NDCG at this K
)

// Config is what one run does. The zero value (plus defaults) trains with
// the last published run's parameters, evaluates, gates and publishes.
type Config struct {
	K       int // depth of the stored lists: songs stored per user (serve answers n ≤ K from them)
	Popular int // length of the popular list

	// HoldoutFraction of each user's positives is held out for evaluation.
	HoldoutFraction float64
	// EvalUsers caps the users evaluated (a seeded sample); 0 means all.
	// At millions of users the metrics settle long before every user is
	// scored, and evaluation costs a pass over the whole catalogue per user.
	EvalUsers int

	// TuneBudget enables a hyper-parameter search on the training split
	// that runs until the budget has elapsed; TuneTrials optionally caps
	// its trials (alone, it tunes for that many). The search starts from,
	// and only replaces, the parameters the run would use otherwise: the
	// last published run's, else als.DefaultParamsFor the data. With both
	// zero those are reused untuned.
	TuneTrials int
	TuneBudget time.Duration
	// TuneOnly runs the search alone (`batch tune`): load, split and tune,
	// then record the run as tuned with its trials. Nothing is trained on
	// all data or published; the next run starts from the tuned parameters.
	TuneOnly bool

	// The published model is fitted on all data starting from the holdout
	// model's factors (same users and songs, 15% fewer entries) for
	// WarmIterations (0 means DefaultWarmIterations; never more than the
	// parameters' Iterations) instead of from random factors for all
	// Iterations: on the shared data 3 warm iterations reach a lower loss
	// than a 15-iteration cold fit and agree with its top-5 more than two
	// cold fits from different seeds agree with each other (see
	// docs/BENCHMARKS.md). ColdStart restores the full cold fit.
	WarmIterations int
	ColdStart      bool

	// Overrides pin parameters whatever their source (including tuning).
	Overrides Overrides
	Threads   int   // 0 means GOMAXPROCS
	Seed      int64 // holdout split, evaluation sample and initial factors
	Scheme    model.Scheme

	DryRun bool // everything but publishing and writing the registry
	// StageOnly trains, evaluates and gates as usual but skips the per-user
	// top-K: it stages the version's shared keys (Deps.Publisher must be a
	// Stager) for the shards of `batch precompute` (an Indexed Job) to
	// write the users' lists; the last shard switches the pointer. The run
	// is recorded as staged until then.
	StageOnly bool
	// Hold writes the complete version (every user's list) but leaves the
	// pointer: readers stay on the current version and the new one waits,
	// held, as the challenger of an online experiment (batch experiment
	// start) or for promotion. Deps.Publisher must be a HoldPublisher. The
	// run is recorded as staged, with the version.
	Hold          bool
	Force         bool    // publish even when the quality gate rejects
	MaxRegression float64 // allowed relative NDCG@5 drop against the published run
	WaitLock      bool    // wait for another run's lock instead of exiting
	// Keep is how many artifacts retention keeps (the newest; pinned ones
	// and the live versions are kept besides); 0 means DefaultKeep.
	Keep  int
	Notes string // stored with the run

	// Family is the model family trained: model.FamilyALS (the default
	// when empty), model.FamilyEASE, which needs the catalog to fit
	// MemoryLimit (ease.NeedBytes) and is trained with EASE (nil: the
	// last published EASE run's, else ease.DefaultParams), or FamilyAuto:
	// a tuning run compares both on the tuner's validation split and keeps
	// the last published family unless the other beats it by the noise
	// margin; without tuning, the last published family.
	Family      string
	MemoryLimit int64 // bytes; ≤ 0 means no limit
	EASE        *ease.Params
	// EASEPrune is how many entries per row of B the published model keeps
	// (0 means ease.DefaultPrune): the evaluation, the batch lists and
	// serve's fold-ins all use the pruned B.
	EASEPrune int
}

// Overrides are explicitly set training parameters; nil fields are not set.
type Overrides struct {
	Factors        *int
	Iterations     *int
	Regularization *float64
	Alpha          *float64
	Weighting      *feedback.Weighting
}

func (o Overrides) apply(p als.Params) als.Params {
	if o.Factors != nil {
		p.Factors = *o.Factors
	}
	if o.Iterations != nil {
		p.Iterations = *o.Iterations
	}
	if o.Regularization != nil {
		p.Regularization = *o.Regularization
	}
	if o.Alpha != nil {
		p.Alpha = *o.Alpha
	}
	if o.Weighting != nil {
		p.Weighting = *o.Weighting
	}
	return p
}

func (c Config) withDefaults() Config {
	if c.K == 0 {
		c.K = DefaultK
	}
	if c.Popular == 0 {
		c.Popular = DefaultPopular
	}
	if c.WarmIterations == 0 {
		c.WarmIterations = DefaultWarmIterations
	}
	if c.HoldoutFraction == 0 {
		c.HoldoutFraction = DefaultHoldout
	}
	if c.MaxRegression == 0 {
		c.MaxRegression = DefaultMaxRegression
	}
	if c.Seed == 0 {
		c.Seed = DefaultSeed
	}
	if c.Keep == 0 {
		c.Keep = DefaultKeep
	}
	if c.Scheme == (model.Scheme{}) {
		c.Scheme = model.DefaultScheme()
	}
	return c
}

// Validate reports every invalid field at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.K < 1 || c.K > 1000 {
		bad("k must be between 1 and 1000, got %d", c.K)
	}
	if c.Popular < 1 {
		bad("popular list length must be ≥ 1, got %d", c.Popular)
	}
	if !(c.HoldoutFraction > 0 && c.HoldoutFraction < 1) {
		bad("holdout fraction must be in (0, 1), got %v", c.HoldoutFraction)
	}
	if c.WarmIterations < 0 {
		bad("warm iterations must be ≥ 0, got %d", c.WarmIterations)
	}
	if c.EvalUsers < 0 {
		bad("eval users must be ≥ 0, got %d", c.EvalUsers)
	}
	if c.TuneTrials < 0 || c.TuneBudget < 0 {
		bad("tune trials and budget must be ≥ 0")
	}
	if c.TuneOnly && c.TuneTrials == 0 && c.TuneBudget == 0 {
		bad("a tune-only run needs a budget or a number of trials")
	}
	if c.TuneOnly && c.Family == model.FamilyEASE {
		bad("a search (tune only) takes family als or auto, got %q", c.Family)
	}
	if c.Hold && (c.StageOnly || c.TuneOnly) {
		bad("a held run writes every user's list and keeps the version for an experiment; it cannot be stage-only or tune-only")
	}
	if c.TuneOnly && c.StageOnly {
		bad("a tune-only run publishes nothing, so it cannot stage either")
	}
	if !(c.MaxRegression >= 0 && c.MaxRegression <= 1) {
		bad("max regression must be in [0, 1], got %v", c.MaxRegression)
	}
	if c.Keep < 0 {
		bad("keep must be ≥ 1, got %d", c.Keep)
	}
	if c.Threads < 0 {
		bad("threads must be ≥ 0, got %d", c.Threads)
	}
	if err := c.Scheme.Validate(); err != nil {
		errs = append(errs, err)
	}
	switch c.Family {
	case "", model.FamilyALS:
	case model.FamilyEASE, FamilyAuto:
		if c.EASEPrune < 0 {
			bad("ease prune must be ≥ 0 (0 means %d), got %d", ease.DefaultPrune, c.EASEPrune)
		}
		if c.StageOnly {
			bad("a stage-only run is for ALS (the precompute shards fold users in with factors); EASE publishes its lists in the run")
		}
		if c.EASE != nil {
			if err := c.EASE.Validate(); err != nil {
				errs = append(errs, fmt.Errorf("ease: %w", err))
			}
		}
	default:
		bad("family must be %q, %q or %q, got %q", model.FamilyALS, model.FamilyEASE, FamilyAuto, c.Family)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("invalid run config: %w: %w", setlist.ErrInvalid, err)
	}
	return nil
}
