package pipeline

import (
	"context"
	"fmt"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/als"
	"github.com/setlist/setlist/internal/artifact"
	"github.com/setlist/setlist/internal/feedback"
	"github.com/setlist/setlist/internal/model"
)

// family is what a training run needs of a model family: the phases that
// differ between ALS and EASE, called by execute in this order (evaluate,
// fit, validate, topN, artifact). A family keeps what one phase leaves for
// the next (ALS: the holdout model as the full fit's warm start).
type family interface {
	name() string
	// evaluate fits the family on train and scores test with what will
	// be served (evalK, the run's threads).
	evaluate(ctx context.Context, train, test *feedback.CSR) (feedback.Metrics, error)
	// fit trains the model to publish on all of m.
	fit(ctx context.Context, m *feedback.CSR) error
	// validate refuses a fit that diverged (artifact.ErrNotFinite).
	validate() error
	// topN is every user's top-k, the user's whole row and the items of
	// except (sorted) excluded.
	topN(ctx context.Context, m *feedback.CSR, k int, except []int32) ([][]feedback.Scored, error)
	// artifact is the version's artifact; meta holds what every family
	// records, the family adds its own.
	artifact(meta model.Meta, catalog *model.Catalog, popular []model.Rec, users []setlist.UserID, m *feedback.CSR, lists [][]feedback.Scored) (*artifact.Artifact, error)
}

// alsFamily trains ALS with params: the holdout model em is the full fit's
// warm start (unless Config.ColdStart).
type alsFamily struct {
	r      *run
	params als.Params
	em     *als.Model // the holdout model, until fit
	full   *als.Model
	side   *als.ItemSide
}

func (f *alsFamily) name() string { return model.FamilyALS }

func (f *alsFamily) evaluate(ctx context.Context, train, test *feedback.CSR) (feedback.Metrics, error) {
	em, err := f.r.train(ctx, "train (holdout)", train, f.params, nil)
	if err != nil {
		return feedback.Metrics{}, err
	}
	f.em = em
	return als.Evaluate(ctx, em.UserFactors, em.ItemSide(), train, test, evalK, f.r.cfg.Threads)
}

// fit trains on all data: a few iterations warm from the holdout model, or
// a cold fit with Config.ColdStart.
func (f *alsFamily) fit(ctx context.Context, m *feedback.CSR) (err error) {
	r := f.r
	em := f.em
	f.em = nil
	if r.cfg.ColdStart {
		f.full, err = r.train(ctx, "train (all data)", m, f.params, nil)
		return err
	}
	warm := f.params
	warm.Iterations = min(f.params.Iterations, r.cfg.WarmIterations)
	r.res.Params.WarmIterations = warm.Iterations
	f.full, err = r.train(ctx, "train (all data, warm start)", m, warm, em)
	return err
}

// validate: a diverged fit (NaN or exploding factors) stops here.
func (f *alsFamily) validate() error {
	if err := f.full.Validate(); err != nil {
		return fmt.Errorf("trained model: %w: %w", artifact.ErrNotFinite, err)
	}
	f.side = f.full.ItemSide()
	return nil
}

func (f *alsFamily) topN(ctx context.Context, m *feedback.CSR, k int, except []int32) ([][]feedback.Scored, error) {
	return als.TopNAll(ctx, f.full.UserFactors, f.side, k, m, except, f.r.cfg.Threads)
}

func (f *alsFamily) artifact(meta model.Meta, catalog *model.Catalog, popular []model.Rec, users []setlist.UserID, m *feedback.CSR, _ [][]feedback.Scored) (*artifact.Artifact, error) {
	meta.Params = f.r.res.Params.ALS
	return artifact.NewALS(meta, artifact.SourceTrained, catalog, f.side, popular, users, f.full.UserFactors, m)
}

// train fits params on m, from init's factors when init is not nil, with a
// progress bar over iterations.
func (r *run) train(ctx context.Context, label string, m *feedback.CSR, p als.Params, init *als.Model) (_ *als.Model, err error) {
	bar := r.deps.Progress(label, int64(p.Iterations))
	defer ended(bar, &err)
	return als.TrainFrom(ctx, m, p, init, func(s als.IterationStats) {
		bar.Set(int64(s.Iteration))
		if st, ok := bar.(interface{ SetStatus(string) }); ok {
			st.SetStatus(fmt.Sprintf("loss %.4g", s.Loss))
		}
		r.deps.Logger.Debug("iteration", "phase", label, "iteration", s.Iteration, "loss", s.Loss, "seconds", s.Duration.Seconds())
	})
}
