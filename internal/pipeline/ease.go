package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/artifact"
	"github.com/setlist/setlist/internal/ease"
	"github.com/setlist/setlist/internal/feedback"
	"github.com/setlist/setlist/internal/model"
)

// easeFamily trains EASE with p, B pruned to keep entries per row for
// evaluation, lists and the Redis item model alike, so what is evaluated
// is what is served. It has no warm start (training is one closed form)
// and no stage-only mode (Config.Validate).
type easeFamily struct {
	r      *run
	p      ease.Params
	keep   int
	pruned *ease.Pruned
}

// easeFamily checks that EASE's matrices fit the memory limit and
// assembles its parameters (easeParams).
func (r *run) easeFamily(ctx context.Context, m *feedback.CSR) (*easeFamily, error) {
	if err := ease.CheckFits(m.Cols, r.cfg.MemoryLimit); err != nil {
		return nil, fmt.Errorf("%w: %w", setlist.ErrInvalid, err)
	}
	p, err := r.easeParams(ctx)
	if err != nil {
		return nil, err
	}
	keep := r.cfg.EASEPrune
	if keep == 0 {
		keep = ease.DefaultPrune
	}
	return &easeFamily{r: r, p: p, keep: keep}, nil
}

func (f *easeFamily) name() string { return model.FamilyEASE }

func (f *easeFamily) evaluate(ctx context.Context, train, test *feedback.CSR) (feedback.Metrics, error) {
	em, err := f.r.trainEASE(ctx, "train EASE (holdout)", train, f.p)
	if err != nil {
		return feedback.Metrics{}, err
	}
	// The pruned B is what is published: evaluate that.
	threads := f.r.cfg.Threads
	return em.Prune(f.keep, threads).Evaluate(ctx, train, test, evalK, threads)
}

func (f *easeFamily) fit(ctx context.Context, m *feedback.CSR) error {
	full, err := f.r.trainEASE(ctx, "train EASE (all data)", m, f.p)
	if err != nil {
		return err
	}
	f.pruned = full.Prune(f.keep, f.r.cfg.Threads)
	return nil
}

// validate: EASE's closed form has nothing to diverge.
func (f *easeFamily) validate() error { return nil }

func (f *easeFamily) topN(ctx context.Context, m *feedback.CSR, k int, except []int32) ([][]feedback.Scored, error) {
	return f.pruned.TopNAll(ctx, m, k, m, except, f.r.cfg.Threads)
}

func (f *easeFamily) artifact(meta model.Meta, catalog *model.Catalog, popular []model.Rec, users []setlist.UserID, _ *feedback.CSR, lists [][]feedback.Scored) (*artifact.Artifact, error) {
	p := f.p
	meta.Family, meta.EASE = model.FamilyEASE, &p
	return artifact.NewEASE(meta, artifact.SourceTrained, catalog, f.pruned, popular, users, lists)
}

// easeParams are cfg.EASE, else those of the run whose family a new run
// continues (familyRun) when it was EASE, else the defaults;
// the run's threads apply.
func (r *run) easeParams(ctx context.Context) (ease.Params, error) {
	p, source := ease.DefaultParams(), "default"
	switch {
	case r.cfg.EASE != nil && r.res.Params.Choice != nil:
		p, source = *r.cfg.EASE, "tuned"
	case r.cfg.EASE != nil:
		p, source = *r.cfg.EASE, "explicit"
	case r.deps.Registry != nil:
		rp, from, err := r.familyRun(ctx)
		if err != nil && !errors.Is(err, setlist.ErrNotFound) {
			return p, err
		}
		if err == nil && rp.EASE != nil && rp.EASE.Validate() == nil {
			p, source = *rp.EASE, from
		}
	}
	p.Threads = r.cfg.Threads
	r.res.Params.Family, r.res.Params.EASE, r.res.Params.Source = model.FamilyEASE, &p, source
	r.deps.Logger.Info("training parameters", "family", model.FamilyEASE, "source", source, "lambda", p.Lambda, "weighting", p.Weighting)
	return p, nil
}

// trainEASE fits p on m with a progress bar over the inverse's pivots.
func (r *run) trainEASE(ctx context.Context, label string, m *feedback.CSR, p ease.Params) (_ *ease.Model, err error) {
	bar := r.deps.Progress(label, int64(m.Cols))
	defer ended(bar, &err)
	fit, stats, err := ease.Train(ctx, m, p, ease.Options{MemoryLimit: r.cfg.MemoryLimit, Progress: func(phase string, done, total int) {
		if phase == "invert" {
			bar.Set(int64(done))
		}
	}})
	if err != nil {
		return nil, err
	}
	r.deps.Logger.Info("trained", "family", "ease", "phase", label, "songs", m.Cols, "gram_seconds", stats.Gram.Seconds(),
		"invert_seconds", stats.Invert.Seconds(), "weights_seconds", stats.Weights.Seconds())
	return fit, nil
}
