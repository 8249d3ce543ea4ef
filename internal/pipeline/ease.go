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

// executeEASE is execute for the EASE family: the same phases (eval on the
// holdout split, train on all data, every user's top-K, gate, publish)
// with ease.Train instead of ALS, B pruned to Config.EASEPrune entries per
// row for all three (evaluation, lists, the Redis item model), so what is
// evaluated is what is served. It has no warm start (training is one
// closed form) and no stage-only mode.
func (r *run) executeEASE(ctx context.Context, tr *model.Training, m, train, test *feedback.CSR) error {
	cfg := r.cfg
	if err := ease.CheckFits(m.Cols, cfg.MemoryLimit); err != nil {
		return fmt.Errorf("%w: %w", setlist.ErrInvalid, err)
	}
	p, err := r.easeParams(ctx)
	if err != nil {
		return err
	}
	keep := cfg.EASEPrune
	if keep == 0 {
		keep = ease.DefaultPrune
	}
	var metrics, baseline feedback.Metrics
	if err := r.phase("eval", func() error {
		em, err := r.trainEASE(ctx, "train EASE (holdout)", train, p)
		if err != nil {
			return err
		}
		// The pruned B is what is published: evaluate that.
		if metrics, err = em.Prune(keep, cfg.Threads).Evaluate(ctx, train, test, evalK, cfg.Threads); err != nil {
			return err
		}
		baseline = feedback.PopularityBaseline(train, test, evalK)
		return nil
	}); err != nil {
		return err
	}
	r.res.Counts.EvalUsers = metrics.Users
	r.res.Metrics = metricsMap(metrics, baseline)
	r.deps.Logger.Info("evaluated", "family", model.FamilyEASE, "users", metrics.Users, "ndcg_at_5", metrics.NDCG,
		"precision_at_5", metrics.Precision, "baseline_ndcg_at_5", baseline.NDCG)
	var pruned *ease.Pruned
	if err := r.phase("train", func() error {
		full, err := r.trainEASE(ctx, "train EASE (all data)", m, p)
		if err != nil {
			return err
		}
		pruned = full.Prune(keep, cfg.Threads)
		return nil
	}); err != nil {
		return err
	}
	// Songs taken down at the snapshot trained B (their reactions describe
	// the listeners' taste) but enter no list.
	catalog := model.NewCatalog(tr.Songs)
	except := catalog.Indexes(tr.Unavailable)
	var lists [][]feedback.Scored
	if err := r.phase("topk", func() (err error) {
		bar := r.deps.Progress("top-K", int64(m.Rows))
		defer ended(bar, &err)
		lists, err = pruned.TopNAll(ctx, m, cfg.K, m, except, cfg.Threads)
		bar.Set(int64(m.Rows))
		return err
	}); err != nil {
		return err
	}
	popular := catalog.Recs(popularItems(m, cfg.Popular, except))
	r.res.Counts.Popular = len(popular)
	if err := r.gate(ctx, metrics, baseline, CheckLists(lists, m, cfg.K, except)); err != nil || cfg.DryRun {
		return err
	}
	build := func() (*artifact.Artifact, error) {
		meta := model.Meta{
			Version: r.res.Version, TrainedAt: r.deps.Now().UTC(), SnapshotAt: tr.SnapshotAt, SnapshotSeq: tr.SnapshotSeq,
			Family: model.FamilyEASE, EASE: &p, Scheme: cfg.Scheme, Metrics: r.res.Metrics, K: cfg.K, Items: catalog.Len(),
			Unavailable: tr.Unavailable,
		}
		return artifact.NewEASE(meta, artifact.SourceTrained, catalog, pruned, popular, tr.Users, lists)
	}
	if err := r.phase("publish", func() error { return r.publish(ctx, build, lists) }); err != nil {
		return err
	}
	r.cleanup(ctx)
	return nil
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
