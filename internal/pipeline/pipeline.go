// Package pipeline is the batch run end to end: load a consistent snapshot,
// evaluate on a per-user holdout against a popularity baseline, optionally
// tune, train on all data, compute every user's top-K, gate on quality and
// publish atomically, recording everything in the run registry.
//
// Storage comes in through small interfaces defined here (Source, Registry,
// Locker, Publisher), so another backend (an embedded store) plugs in
// without touching the run's logic.
package pipeline

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/als"
	"github.com/setlist/setlist/internal/artifact"
	"github.com/setlist/setlist/internal/ease"
	"github.com/setlist/setlist/internal/feedback"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/model"
	"github.com/setlist/setlist/internal/registry"
	"github.com/setlist/setlist/internal/store"
)

// Source loads the training snapshot. progress(read, estimate) reports rows.
type Source interface {
	LoadTraining(ctx context.Context, scheme model.Scheme, progress func(read, estimate int64)) (*model.Training, error)
}

// Registry records runs; the run id is the published model's version.
type Registry interface {
	StartRun(ctx context.Context, notes string) (int64, error)
	UpdateRun(ctx context.Context, id int64, u store.RunUpdate) error
	LastPublished(ctx context.Context) (store.Run, error)
	LastTuned(ctx context.Context) (store.Run, error)
}

// Locker serialises runs: release must be called once the run ends.
type Locker interface {
	LockTraining(ctx context.Context, wait bool, onWait func(holder string)) (release func(), err error)
}

// Publisher writes a version and switches readers to it; Cleanup then
// retires versions that are no longer current or previous.
type Publisher interface {
	Publish(ctx context.Context, v keyspace.Version, r keyspace.Release) (keyspace.Report, error)
	Cleanup(ctx context.Context) (keyspace.Cleanup, error)
}

// Stager writes a version's shared keys (item factors, popular list, meta)
// without users' lists and without switching the pointer; see
// Config.StageOnly.
type Stager interface {
	Stage(ctx context.Context, v keyspace.Version, r keyspace.Release) (keyspace.Report, error)
}

// HoldPublisher writes a complete version without switching readers to it;
// see Config.Hold.
type HoldPublisher interface {
	PublishHeld(ctx context.Context, v keyspace.Version, r keyspace.Release) (keyspace.Report, error)
}

// Artifacts keeps every published or staged version's artifact durably
// (internal/artifact), so Redis can be rebuilt from it; both backends have it.
type Artifacts interface {
	SaveArtifact(ctx context.Context, version int64, family string, data []byte) (store.ArtifactInfo, error)
	PruneArtifacts(ctx context.Context, keep int, protect []int64) ([]int64, error)
}

// Bar is a progress display for one phase. A Bar that also has
// SetStatus(string) is shown each iteration's loss.
type Bar interface {
	Set(n int64)
	Finish()
	// Abandon closes a bar whose work failed, without claiming it finished.
	Abandon()
}

// ended closes bar by the outcome in *err (deferred with a pointer to the
// phase's named error): Finish on success, Abandon on failure, so a failed
// phase never reports "finished".
func ended(bar Bar, err *error) {
	if *err != nil {
		bar.Abandon()
		return
	}
	bar.Finish()
}

// Deps are the run's collaborators. Logger and Progress default to
// discarding; Metrics may be nil.
type Deps struct {
	Source    Source
	Registry  Registry
	Locker    Locker
	Publisher Publisher
	// Artifacts, if set, stores the version's artifact before the pointer
	// switches (a failure fails the run) and applies Config.Keep after.
	Artifacts Artifacts
	Logger    *slog.Logger
	// Progress starts a display for a phase of total units (0 if unknown):
	// a bar on a terminal, log lines in a pod.
	Progress func(label string, total int64) Bar
	Metrics  *Metrics
	// Now is the clock (tests pin it); nil means time.Now.
	Now func() time.Time
}

// Counts are the sizes a run records.
type Counts struct {
	Users          int   `json:"users"`
	Songs          int   `json:"songs"`
	Reactions      int64 `json:"reactions"`
	NNZ            int   `json:"nnz"`
	TrainNNZ       int   `json:"train_nnz"`
	TestNNZ        int   `json:"test_nnz"`
	EvalUsers      int   `json:"eval_users"`
	UsersPublished int   `json:"users_published"`
	KeysWritten    int   `json:"keys_written"`
	Bytes          int64 `json:"bytes"`
	Popular        int   `json:"popular"`
	ArtifactBytes  int64 `json:"artifact_bytes,omitempty"`
}

// RunParams is what the registry stores as a run's params.
type RunParams struct {
	// Family is the model family of the run (empty in runs recorded before
	// families: ALS); EASE holds an EASE run's parameters.
	Family string       `json:"family,omitempty"`
	EASE   *ease.Params `json:"ease,omitempty"`
	// Choice is how a tuning run with Family auto chose the family.
	Choice *FamilyChoice `json:"family_choice,omitempty"`
	ALS    als.Params    `json:"als"`
	Scheme model.Scheme  `json:"scheme"`
	K      int           `json:"k"`
	// Source says where ALS came from: "default", "last-published" or "tuned"
	// (overrides are applied on top of any of them).
	Source string `json:"source"`
	// Eval is how the run's metrics were measured (EvalHoldout); the gate
	// holds a candidate only to a published figure measured the same way.
	Eval      string `json:"eval,omitempty"`
	Overrides bool   `json:"overrides,omitempty"`
	// WarmIterations is how many iterations the published model ran from
	// the holdout model's factors (0: a cold fit of ALS.Iterations).
	WarmIterations int `json:"warm_iterations,omitempty"`
	Trials         int `json:"tune_trials,omitempty"`
	// Tuning summarises the search behind ALS: this run's, or the one
	// of the run it took its parameters from.
	Tuning *registry.TuningSummary `json:"tuning,omitempty"`
}

// Result is what a run did.
type Result struct {
	RunID      int64 // 0 for a dry run
	Version    keyspace.Version
	Status     store.RunStatus
	Reason     string
	DryRun     bool
	Params     RunParams
	Metrics    map[string]float64 // see metricsMap
	Counts     Counts
	Timings    map[string]float64 // seconds per phase
	SnapshotAt time.Time
	Gate       GateDecision
	Publish    keyspace.Report
	// Tuning is the search's pick and history; nil when the run did not tune.
	Tuning *als.TuneResult
}

// Run executes one batch run. It returns a *RejectedError (exit code 3) when
// the quality gate refuses the model, a *LockedError (exit code 4) when
// another run holds the lock, and the Result in every case it got that far.
// A dry run takes no lock, writes no registry row and publishes nothing.
func Run(ctx context.Context, cfg Config, deps Deps) (*Result, error) {
	return start(ctx, cfg, deps, (*run).execute)
}

// start runs body as one registry run: validation, the training lock, the
// run row, and recording the outcome whatever happens (batch train and
// batch import-model share it).
func start(ctx context.Context, cfg Config, deps Deps, body func(*run, context.Context) error) (*Result, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if _, ok := deps.Publisher.(HoldPublisher); cfg.Hold && !ok {
		return nil, fmt.Errorf("a held run needs a publisher that can hold a version: %w", setlist.ErrInvalid)
	}
	if _, ok := deps.Publisher.(Stager); cfg.StageOnly && !ok {
		return nil, fmt.Errorf("a stage-only run needs a publisher that can stage (PostgreSQL and Redis): %w", setlist.ErrInvalid)
	}
	r := &run{cfg: cfg, deps: deps, res: &Result{DryRun: cfg.DryRun, Timings: map[string]float64{}, Metrics: map[string]float64{},
		Params: RunParams{Eval: EvalHoldout}}}
	if r.deps.Logger == nil {
		r.deps.Logger = slog.New(slog.DiscardHandler)
	}
	if r.deps.Progress == nil {
		r.deps.Progress = func(string, int64) Bar { return nopBar{} }
	}
	if r.deps.Now == nil {
		r.deps.Now = time.Now
	}
	r.budget = newBudget(cfg, r.deps.Now)
	start := r.deps.Now()
	log := r.deps.Logger

	if !cfg.DryRun {
		release, err := deps.Locker.LockTraining(ctx, cfg.WaitLock, func(holder string) {
			log.Info("waiting for the training lock", "holder", holder)
		})
		if errors.Is(err, setlist.ErrConflict) {
			return nil, &LockedError{Err: err}
		}
		if err != nil {
			return nil, fmt.Errorf("take training lock: %w", err)
		}
		defer release()
		if r.res.RunID, err = deps.Registry.StartRun(ctx, cfg.Notes); err != nil {
			return nil, err
		}
		r.res.Version = keyspace.Version(r.res.RunID)
		log = log.With("run", r.res.RunID)
		r.deps.Logger = log
	}
	log.Info("batch run started", "dry_run", cfg.DryRun)

	err := body(r, ctx)
	r.res.Timings["total"] = r.deps.Now().Sub(start).Seconds()
	var rejected *RejectedError
	switch {
	case err == nil && cfg.DryRun:
		r.res.Status = ""
	case err == nil && cfg.StageOnly:
		r.res.Status = store.RunStaged
	case err == nil && cfg.Hold:
		r.res.Status, r.res.Reason = store.RunStaged, fmt.Sprintf("held: complete in Redis, not served; start an experiment with --challenger %d or promote it", r.res.Version)
	case err == nil && cfg.TuneOnly:
		r.res.Status = store.RunTuned
	case err == nil:
		r.res.Status = store.RunPublished
	case errors.As(err, &rejected):
		r.res.Status, r.res.Reason = store.RunRejected, rejected.Reason
	default:
		r.res.Status, r.res.Reason = store.RunFailed, err.Error()
	}
	if !cfg.DryRun {
		if rerr := r.record(ctx); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}
	if merr := deps.Metrics.observe(r.res); merr != nil {
		log.Warn("batch metrics", "err", merr)
	}
	if err != nil {
		return r.res, err
	}
	log.Info("batch run finished", finishedAttrs(r.res)...)
	return r.res, nil
}

// finishedAttrs is what the last log line of a run says: a version and
// its NDCG@5 only when the run has them (a tune publishes no version and
// evaluates no model: it says what its search picked).
func finishedAttrs(res *Result) []any {
	attrs := []any{"status", res.Status}
	if res.Status == store.RunPublished || res.Status == store.RunStaged {
		attrs = append(attrs, "version", res.Version)
	}
	if v, ok := res.Metrics["ndcg_at_5"]; ok {
		attrs = append(attrs, "ndcg_at_5", v)
	}
	if res.Status == store.RunTuned && res.Tuning != nil {
		attrs = append(attrs, "best_trial", res.Tuning.BestTrial, "best_mean_ndcg_at_5", res.Tuning.BestScore,
			"kept_incumbent", res.Tuning.KeptIncumbent)
	}
	return append(attrs, "seconds", res.Timings["total"])
}

type run struct {
	cfg  Config
	deps Deps
	res  *Result
	// budget owns the search budget (newBudget).
	budget *budget
}

type nopBar struct{}

func (nopBar) Set(int64) {}
func (nopBar) Finish()   {}
func (nopBar) Abandon()  {}

// phase times fn into res.Timings[name].
func (r *run) phase(name string, fn func() error) error {
	t := r.deps.Now()
	err := fn()
	r.res.Timings[name] = r.deps.Now().Sub(t).Seconds()
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	r.deps.Logger.Info("phase done", "phase", name, "seconds", r.res.Timings[name])
	return nil
}

// execute runs the phases in order; each returns what the next needs, so
// the data flow is visible here rather than in shared variables. Every
// family runs the same phases (eval on the holdout split, train on all
// data, every user's top-K, gate, publish); what differs is the family's
// (family).
func (r *run) execute(ctx context.Context) error {
	cfg := r.cfg
	tr, m, err := r.load(ctx)
	if err != nil {
		return err
	}
	train, test := r.split(m)
	params, err := r.params(ctx, m, train)
	if err != nil {
		return err
	}
	if cfg.TuneOnly {
		// Recorded as tuned: the next run starts from params and, with
		// Family auto, from the family (and EASE parameters) chosen here.
		if cfg.Family == FamilyAuto {
			fam, p, err := r.chooseFamily(ctx, train, params)
			if err != nil {
				return err
			}
			r.res.Params.Family, r.res.Params.EASE = fam, p
		}
		return nil
	}
	fam, err := r.family(ctx, m, train, params)
	if err != nil {
		return err
	}
	metrics, baseline, err := r.evaluate(ctx, fam, train, test)
	if err != nil {
		return err
	}
	train, test = nil, nil
	if err := r.fit(ctx, fam, m); err != nil {
		return err
	}
	// Songs taken down at the snapshot trained the model (their reactions
	// describe the listeners' taste) and are withheld in every list: no
	// answer holds them while hidden, and a show brings them back.
	catalog := model.NewCatalog(tr.Songs)
	except := catalog.Indexes(tr.Unavailable)
	lists, err := r.topK(ctx, fam, m, except)
	if err != nil {
		return err
	}
	pop, err := popularWithheld(m, cfg.Popular, except)
	if err != nil {
		return err
	}
	popular := catalog.Recs(pop)
	r.res.Counts.Popular = len(popular)
	if err := r.gate(ctx, metrics, baseline, CheckLists(lists, m, cfg.K, except)); err != nil || cfg.DryRun {
		return err
	}
	build := func() (*artifact.Artifact, error) {
		meta := model.Meta{
			Version: r.res.Version, TrainedAt: r.deps.Now().UTC(), SnapshotAt: tr.SnapshotAt, SnapshotSeq: tr.SnapshotSeq,
			Scheme: cfg.Scheme, Metrics: r.res.Metrics, K: cfg.K, Items: catalog.Len(), Unavailable: tr.Unavailable,
		}
		return fam.artifact(meta, catalog, popular, tr.Users, m, lists)
	}
	if cfg.StageOnly {
		// No cleanup: the staged version is "precomputing" (the sweep
		// keeps it while its lease lives) and nothing left current or
		// previous; the next publish after the switch retires. (Only ALS
		// stages: Config.Validate refuses it with EASE.)
		return r.phase("stage", func() error { return r.publish(ctx, build, nil) })
	}
	if err := r.phase("publish", func() error { return r.publish(ctx, build, lists) }); err != nil {
		return err
	}
	r.cleanup(ctx)
	return nil
}

// family is the model family this run trains: Config.Family, with auto
// resolved by the family comparison when the run searches (chooseFamily)
// and else by the family of the run it starts from (lastFamily). params
// are the ALS parameters the run assembled (used when ALS it is).
func (r *run) family(ctx context.Context, m, train *feedback.CSR, params als.Params) (family, error) {
	name := model.FamilyALS
	switch {
	case r.cfg.Family == FamilyAuto && r.budget.searching():
		chosen, p, err := r.chooseFamily(ctx, train, params)
		if err != nil {
			return nil, err
		}
		if chosen == model.FamilyEASE {
			r.cfg.EASE, name = p, model.FamilyEASE
		}
	case r.cfg.Family == FamilyAuto:
		name = r.lastFamily(ctx)
	case r.cfg.Family == model.FamilyEASE:
		name = model.FamilyEASE
	}
	if name == model.FamilyEASE {
		return r.easeFamily(ctx, m)
	}
	return &alsFamily{r: r, params: params}, nil
}

// evaluate fits the family on the training split and scores the holdout
// with what will be served, against popularity.
func (r *run) evaluate(ctx context.Context, fam family, train, test *feedback.CSR) (metrics, baseline feedback.Metrics, err error) {
	err = r.phase("eval", func() error {
		var err error
		if metrics, err = fam.evaluate(ctx, train, test); err != nil {
			return err
		}
		baseline = feedback.PopularityBaseline(train, test, evalK)
		return nil
	})
	if err != nil {
		return feedback.Metrics{}, feedback.Metrics{}, err
	}
	r.res.Counts.EvalUsers = metrics.Users
	r.res.Metrics = metricsMap(metrics, baseline)
	r.deps.Logger.Info("evaluated", "family", fam.name(), "users", metrics.Users, "ndcg_at_5", metrics.NDCG,
		"precision_at_5", metrics.Precision, "baseline_ndcg_at_5", baseline.NDCG)
	return metrics, baseline, nil
}

// fit trains the model to publish on all data (the "train" phase), then
// lets the family refuse a diverged fit before the gate and before
// anything is stored.
func (r *run) fit(ctx context.Context, fam family, m *feedback.CSR) error {
	if err := r.phase("train", func() error { return fam.fit(ctx, m) }); err != nil {
		return err
	}
	return fam.validate()
}

// topK computes every user's list, except in a stage-only run, where the
// precompute shards fold every user in. The items of except, the songs
// taken down at the snapshot (see model.Training.Unavailable), are
// withheld (feedback.RankWithheld): in a list only where they rank above
// its K-th available song, never counted in its depth.
func (r *run) topK(ctx context.Context, fam family, m *feedback.CSR, except []int32) ([][]feedback.Scored, error) {
	var lists [][]feedback.Scored
	err := r.phase("topk", func() (err error) {
		if r.cfg.StageOnly {
			return nil
		}
		bar := r.deps.Progress("top-K", int64(m.Rows))
		defer ended(bar, &err)
		// Excluding the user's whole row drops every song they reacted to:
		// plays, likes (positive) and dislikes (negative entries).
		lists, err = feedback.RankWithheld(r.cfg.K, m.Cols, except, func(n int, except []int32) ([][]feedback.Scored, error) {
			return fam.topN(ctx, m, n, except)
		})
		bar.Set(int64(m.Rows))
		return err
	})
	return lists, err
}

// load reads the snapshot and builds the user × song matrix.
func (r *run) load(ctx context.Context) (*model.Training, *feedback.CSR, error) {
	res := r.res
	tr, err := r.snapshot(ctx)
	if err != nil {
		return nil, nil, err
	}
	res.Counts.Users, res.Counts.Songs, res.Counts.Reactions = len(tr.Users), len(tr.Songs), tr.Reactions
	if len(tr.Users) == 0 || len(tr.Songs) == 0 {
		return nil, nil, fmt.Errorf("no reactions to train on: import some first")
	}
	m := feedback.NewCSR(len(tr.Users), len(tr.Songs), tr.Entries)
	tr.Entries = nil // the CSR holds the data now; let the GC have 12 bytes an entry back
	res.Counts.NNZ = m.NNZ()
	return tr, m, nil
}

// snapshot reads every reaction in one consistent snapshot (the "load"
// phase, with a progress bar) and records when it was taken.
func (r *run) snapshot(ctx context.Context) (*model.Training, error) {
	var tr *model.Training
	err := r.phase("load", func() (err error) {
		bar := r.deps.Progress("load reactions", 0)
		defer ended(bar, &err)
		tr, err = r.deps.Source.LoadTraining(ctx, r.cfg.Scheme, func(read, _ int64) { bar.Set(read) })
		return err
	})
	if err != nil {
		return nil, err
	}
	r.res.SnapshotAt = tr.SnapshotAt
	return tr, nil
}

// split holds out a share of each user's positives for evaluation.
func (r *run) split(m *feedback.CSR) (train, test *feedback.CSR) {
	_ = r.phase("split", func() error {
		train, test = feedback.SplitHoldout(m, r.cfg.HoldoutFraction, r.cfg.Seed)
		if r.cfg.EvalUsers > 0 {
			test = sampleRows(test, r.cfg.EvalUsers, r.cfg.Seed)
		}
		r.res.Counts.TrainNNZ, r.res.Counts.TestNNZ = train.NNZ(), test.NNZ()
		return nil
	})
	return train, test
}

// params assembles the training parameters from their sources, in order:
// the run to start from (baseParams), the search when asked for (tune),
// the explicit overrides, and last the run settings (threads, seed), which
// are the run's and never inherited.
func (r *run) params(ctx context.Context, m, train *feedback.CSR) (als.Params, error) {
	cfg, res := r.cfg, r.res
	params, err := r.baseParams(ctx, m)
	if err != nil {
		return als.Params{}, err
	}
	if r.budget.searching() {
		if params, err = r.tune(ctx, train, params); err != nil {
			return als.Params{}, err
		}
	}
	params = cfg.Overrides.apply(params)
	params.Threads, params.Seed = cfg.Threads, cfg.Seed
	res.Params.ALS, res.Params.Scheme, res.Params.K = params, cfg.Scheme, cfg.K
	res.Params.Overrides = cfg.Overrides != (Overrides{})
	if err := params.Validate(); err != nil {
		return als.Params{}, fmt.Errorf("training parameters: %w: %w", setlist.ErrInvalid, err)
	}
	r.deps.Logger.Info("training parameters", "source", res.Params.Source, "factors", params.Factors,
		"iterations", params.Iterations, "regularization", params.Regularization, "alpha", params.Alpha, "weighting", params.Weighting)
	return params, nil
}

// tune searches on the training split from the incumbent: what this run
// would train without tuning (the last published or tuned parameters, else
// the defaults). It returns the search's pick, the incumbent when no
// challenger beat it by more than the noise.
func (r *run) tune(ctx context.Context, train *feedback.CSR, incumbent als.Params) (als.Params, error) {
	cfg, res := r.cfg, r.res
	var params als.Params
	err := r.phase("tune", func() (err error) {
		inc := incumbent
		// One budget for the search and the family comparison (budget).
		var perTrial time.Duration
		var skipped string
		if r.budget.shared() {
			perTrial, skipped = r.easeOffer(train.Cols)
		}
		tc := als.TuneConfig{Trials: r.budget.trials, Budget: r.budget.alsShare(perTrial, skipped == ""), Seed: cfg.Seed, Threads: cfg.Threads, K: evalK, Incumbent: &inc}
		bar, progress := r.tuneProgress()
		defer ended(bar, &err)
		tr, err := als.Tune(ctx, train, tc, func(t als.Trial) {
			progress(t)
			r.deps.Logger.Info("tune trial", "trial", t.Number, "rung", t.Rung, "ndcg_at_5", t.Metrics.NDCG,
				"incumbent", t.Incumbent, "pruned", t.Pruned, "seconds", t.Duration.Seconds())
		})
		if err != nil {
			return err
		}
		res.Tuning = &tr
		res.Params.Tuning = summarize(res.RunID, &tr)
		r.deps.Logger.Info("tuned", "trials", len(tr.Trials), "used_seconds", tr.Used.Seconds(), "budget_seconds", tr.Budget.Seconds(),
			"stop", tr.StopReason, "kept_incumbent", tr.KeptIncumbent, "best_ndcg_at_5", tr.BestScore,
			"incumbent_ndcg_at_5", tr.IncumbentScore, "noise_margin", tr.NoiseMargin)
		params, res.Params.Trials = tr.Best, len(tr.Trials)
		if !tr.KeptIncumbent {
			res.Params.Source = "tuned"
		}
		return nil
	})
	return params, err
}

// gate applies the quality gate: a *RejectedError when it refuses.
func (r *run) gate(ctx context.Context, metrics, baseline feedback.Metrics, lists ListCheck) error {
	res := r.res
	in := r.gateInput(ctx, metrics, baseline)
	in.Lists = lists
	res.Gate = Gate(in)
	if !res.Gate.Publish {
		return &RejectedError{RunID: res.RunID, Reason: res.Gate.Reason}
	}
	if res.Gate.Forced {
		r.deps.Logger.Warn("publishing past the quality gate", "reason", res.Gate.Reason)
		res.Reason = res.Gate.Reason
	}
	if r.cfg.DryRun {
		r.deps.Logger.Info("dry run: not publishing")
	}
	return nil
}

// baseParams picks the parameters to start from: the last search's pick
// when a tune-only run (`batch tune`) recorded one after the last publish,
// else the last published run's (what is known to work on this data), else
// the defaults scaled to m. The search's summary comes along, so the run
// still names the trials behind its parameters.
func (r *run) baseParams(ctx context.Context, m *feedback.CSR) (als.Params, error) {
	r.res.Params.Source = "default"
	last, source, err := r.startRun(ctx)
	if errors.Is(err, setlist.ErrNotFound) {
		return als.DefaultParamsFor(m), nil
	}
	if err != nil {
		return als.Params{}, err
	}
	var rp RunParams
	if json.Unmarshal(last.Params, &rp) != nil || rp.ALS.Validate() != nil {
		r.deps.Logger.Warn("the params of the run to start from are unreadable; using defaults", "run", last.ID, "source", source)
		return als.DefaultParamsFor(m), nil
	}
	r.res.Params.Source, r.res.Params.Tuning = source, rp.Tuning
	return rp.ALS, nil
}

// startRun is the run a new one starts from: the last search if it ended
// after the last publish (a rollback --to republishes an older run, and
// then that run wins), else the last published run; setlist.ErrNotFound
// when there is neither (or no registry). source names which.
func (r *run) startRun(ctx context.Context) (run store.Run, source string, err error) {
	if r.deps.Registry == nil {
		return store.Run{}, "", setlist.ErrNotFound
	}
	last, err := r.deps.Registry.LastPublished(ctx)
	if err != nil && !errors.Is(err, setlist.ErrNotFound) {
		return store.Run{}, "", err
	}
	tuned, terr := r.deps.Registry.LastTuned(ctx)
	if terr != nil && !errors.Is(terr, setlist.ErrNotFound) {
		return store.Run{}, "", terr
	}
	if terr == nil && (err != nil || newerThanPublish(tuned, last)) {
		return tuned, "last-tuned", nil
	}
	return last, "last-published", err
}

// newerThanPublish says whether the search tuned ended after published
// went live.
func newerThanPublish(tuned, published store.Run) bool {
	if tuned.FinishedAt == nil || published.PublishedAt == nil {
		return tuned.ID > published.ID
	}
	return tuned.FinishedAt.After(*published.PublishedAt)
}

// tuneProgress shows the search on a bar over its budget (or its trials
// when it has no budget), counting trials, with the last one's score as
// the status.
func (r *run) tuneProgress() (Bar, func(als.Trial)) {
	start := r.deps.Now()
	total, position := r.budget.progress()
	bar := r.deps.Progress("tune", total)
	if b, ok := bar.(interface{ SetUnit(string) }); ok {
		b.SetUnit("trials")
	}
	n := int64(0)
	return bar, func(t als.Trial) {
		n++
		bar.Set(position(n, start))
		if b, ok := bar.(interface{ SetItems(int64) }); ok {
			b.SetItems(n)
		}
		if b, ok := bar.(interface{ SetStatus(string) }); ok {
			b.SetStatus(fmt.Sprintf("trial %d (rung %d): NDCG@5 %.4f", t.Number, t.Rung, t.Metrics.NDCG))
		}
	}
}

func (r *run) gateInput(ctx context.Context, m, base feedback.Metrics) GateInput {
	in := GateInput{NDCG: m.NDCG, BaselineNDCG: base.NDCG, EvalUsers: m.Users, MaxRegression: r.cfg.MaxRegression, Force: r.cfg.Force}
	if r.deps.Registry == nil {
		return in
	}
	last, err := r.deps.Registry.LastPublished(ctx)
	if err != nil {
		return in
	}
	var pm map[string]float64
	if json.Unmarshal(last.Metrics, &pm) != nil {
		return in
	}
	v, ok := pm["ndcg_at_5"]
	if !ok {
		return in
	}
	if how := evalMethod(last.Params); how != r.res.Params.Eval {
		r.deps.Logger.Warn("the published run's NDCG@5 was measured another way: it is not this run's bar",
			"published_run", last.ID, "published_ndcg_at_5", v, "published_eval", how, "eval", r.res.Params.Eval)
		return in
	}
	in.PublishedNDCG = &v
	return in
}

// publish stores the version's artifact (durable first: only then may
// readers switch to it), then writes its keys and switches the pointer, or
// stages it.
func (r *run) publish(ctx context.Context, build func() (*artifact.Artifact, error), lists [][]feedback.Scored) (err error) {
	a, err := build()
	if err != nil {
		return err
	}
	res := r.res
	if err := r.saveArtifact(ctx, a); err != nil {
		return err
	}
	bar := r.deps.Progress("publish", int64(len(lists)))
	defer ended(bar, &err)
	publish := r.deps.Publisher.Publish
	switch {
	case r.cfg.StageOnly:
		publish = r.deps.Publisher.(Stager).Stage
	case r.cfg.Hold:
		publish = r.deps.Publisher.(HoldPublisher).PublishHeld
	}
	rep, err := publish(ctx, res.Version, a.Release(lists, func(n int) { bar.Set(int64(n)) }))
	res.Publish = rep
	res.Counts.UsersPublished, res.Counts.KeysWritten, res.Counts.Bytes = rep.Users, rep.Keys, rep.Bytes
	if err != nil {
		return err
	}
	if len(rep.Cleaned) > 0 {
		r.deps.Logger.Info("deleted versions left by crashed publishes", "versions", rep.Cleaned)
	}
	return nil
}

// saveArtifact encodes and stores a, timing it as its own phase.
func (r *run) saveArtifact(ctx context.Context, a *artifact.Artifact) error {
	if r.deps.Artifacts == nil {
		return nil
	}
	return r.phase("artifact", func() error {
		b, err := a.MarshalBinary()
		if err != nil {
			return err
		}
		info, err := r.deps.Artifacts.SaveArtifact(ctx, int64(r.res.Version), a.Family, b)
		if err != nil {
			return err
		}
		r.res.Counts.ArtifactBytes = info.Bytes
		r.deps.Logger.Info("artifact stored", "version", info.Version, "bytes", info.Bytes, "sha256", info.SHA256)
		return nil
	})
}

// cleanup retires versions that left previous. The new version is already
// live, so a failure is only logged: the next run retries.
func (r *run) cleanup(ctx context.Context) {
	_ = r.phase("cleanup", func() error {
		c, err := r.deps.Publisher.Cleanup(ctx)
		if err != nil {
			r.deps.Logger.Warn("published, but retiring old versions failed; the next run retries", "err", err)
			return nil
		}
		if len(c.Retired)+len(c.Deleted) > 0 {
			r.deps.Logger.Info("retired old versions", "retired", c.Retired, "deleted", c.Deleted)
		}
		return nil
	})
	if r.deps.Artifacts != nil {
		Prune(ctx, r.deps.Artifacts, r.cfg.Keep, r.deps.Logger, r.res.Version, r.res.Publish.Previous)
	}
}

// Prune applies retention after a version went live: the keep newest
// artifacts, the pinned ones and the versions Redis points at stay. Like
// the key cleanup it only logs a failure: the next run retries.
func Prune(ctx context.Context, a Artifacts, keep int, log *slog.Logger, live ...model.Version) {
	protect := make([]int64, 0, len(live))
	for _, v := range live {
		if v > 0 {
			protect = append(protect, int64(v))
		}
	}
	dropped, err := a.PruneArtifacts(ctx, keep, protect)
	if err != nil {
		log.Warn("published, but applying artifact retention failed; the next run retries", "err", err)
		return
	}
	if len(dropped) > 0 {
		log.Info("deleted old artifacts", "versions", dropped, "keep", keep)
	}
}

// record writes the run's outcome to the registry. It uses a context that
// survives the run's cancellation: an interrupted run must still be marked
// failed rather than left running forever.
func (r *run) record(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	res := r.res
	u := store.RunUpdate{
		Status: res.Status, Params: res.Params, Metrics: res.Metrics, Counts: res.Counts,
		Timings: res.Timings, Reason: res.Reason,
	}
	if !res.SnapshotAt.IsZero() {
		u.SnapshotAt = &res.SnapshotAt
	}
	if res.Status == store.RunPublished || res.Status == store.RunStaged {
		v := int64(res.Version)
		u.Version = &v
	}
	if res.Tuning != nil {
		trials, err := TrialRecords(res.RunID, res.Tuning)
		if err != nil {
			return fmt.Errorf("record run %d: %w", res.RunID, err)
		}
		u.Trials = trials
	}
	if err := r.deps.Registry.UpdateRun(ctx, res.RunID, u); err != nil {
		return fmt.Errorf("record run %d as %s: %w", res.RunID, res.Status, err)
	}
	return nil
}

// metricsMap flattens the evaluation into the registry's and meta's metrics.
func metricsMap(m, base feedback.Metrics) map[string]float64 {
	return map[string]float64{
		"ndcg_at_5":               m.NDCG,
		"precision_at_5":          m.Precision,
		"recall_at_5":             m.Recall,
		"map_at_5":                m.MAP,
		"hit_rate_at_5":           m.HitRate,
		"coverage_at_5":           m.Coverage,
		"eval_users":              float64(m.Users),
		"baseline_ndcg_at_5":      base.NDCG,
		"baseline_precision_at_5": base.Precision,
		"baseline_recall_at_5":    base.Recall,
		"baseline_hit_rate_at_5":  base.HitRate,
	}
}

// popularItems ranks items by the number of users with a positive entry
// (ties by lower index) and returns the first n, scored by that count,
// popularWithheld is the popular list of n available songs with the
// unavailable ones (except) withheld where they rank, as in every user's
// list (feedback.RankWithheld).
func popularWithheld(m *feedback.CSR, n int, except []int32) ([]feedback.Scored, error) {
	lists, err := feedback.RankWithheld(n, m.Cols, except, func(n int, except []int32) ([][]feedback.Scored, error) {
		return [][]feedback.Scored{popularItems(m, n, except)}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("popular list: %w", err)
	}
	return lists[0], nil
}

// none of except (items taken down; sorted).
func popularItems(m *feedback.CSR, n int, except []int32) []feedback.Scored {
	counts := make([]int32, m.Cols)
	for p, c := range m.Indices {
		if m.Data[p] > 0 {
			counts[c]++
		}
	}
	for _, it := range except {
		counts[it] = 0
	}
	items := make([]int32, 0, m.Cols)
	for i, c := range counts {
		if c > 0 {
			items = append(items, int32(i))
		}
	}
	slices.SortFunc(items, func(a, b int32) int {
		if c := cmp.Compare(counts[b], counts[a]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	items = items[:min(n, len(items))]
	out := make([]feedback.Scored, len(items))
	for i, it := range items {
		out[i] = feedback.Scored{Item: it, Score: float32(counts[it])}
	}
	return out
}

// sampleRows keeps the test entries of n seeded-random users with test
// entries and empties the other rows, so evaluation costs n users' scoring.
func sampleRows(test *feedback.CSR, n int, seed int64) *feedback.CSR {
	var withTest []int
	for u := 0; u < test.Rows; u++ {
		if test.Indptr[u+1] > test.Indptr[u] {
			withTest = append(withTest, u)
		}
	}
	if len(withTest) <= n {
		return test
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5e7115))
	rng.Shuffle(len(withTest), func(i, j int) { withTest[i], withTest[j] = withTest[j], withTest[i] })
	keep := withTest[:n]
	var entries []feedback.Entry
	for _, u := range keep {
		cols, vals := test.Row(u)
		for i, c := range cols {
			entries = append(entries, feedback.Entry{Row: int32(u), Col: c, Value: vals[i]})
		}
	}
	return feedback.NewCSR(test.Rows, test.Cols, entries)
}
