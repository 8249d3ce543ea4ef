package api

import (
	"context"
	"errors"

	"github.com/gofiber/fiber/v2"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/experiment"
	"github.com/setlist/setlist/internal/store"
)

// ExperimentDB is the experiment registry and its outcome counts.
type ExperimentDB interface {
	Experiments(ctx context.Context, limit int) ([]store.Experiment, error)
	ExperimentCounts(ctx context.Context, id int64) (control, challenger experiment.Counts, err error)
}

// experimentView is one experiment with its readout.
type experimentView struct {
	store.Experiment
	// Serving is whether this replica routes users by it right now (its
	// challenger is loaded); only the running experiment can be.
	Serving bool               `json:"serving"`
	Readout *experiment.Result `json:"readout,omitempty"`
	// ReadoutError says why the readout is missing (the counts could not
	// be read); the experiment itself is still shown.
	ReadoutError string `json:"readout_error,omitempty"`
}

type experimentsInfo struct {
	Running     *experimentView  `json:"running"`
	Experiments []experimentView `json:"experiments"`
}

// experimentsLimit is how many past experiments GET /v1/experiments lists.
const experimentsLimit = 10

// experiments answers GET /v1/experiments: the running experiment (null
// when none) and the last ones, newest first, each with its per-arm
// readout (internal/experiment: rates with 95 % intervals, the always-valid
// p-value and the verdict). Read only: experiments are started and ended
// with `batch experiment`.
func (a *API) experiments(c *fiber.Ctx) error {
	ctx := c.UserContext()
	list, err := a.deps.DB.Experiments(ctx, experimentsLimit)
	if err != nil {
		a.deps.Metrics.StoreError("postgres", "experiments")
		return err
	}
	serving, ok := a.deps.Recs.Experiment()
	info := experimentsInfo{Experiments: make([]experimentView, 0, len(list))}
	for _, e := range list {
		v := experimentView{Experiment: e, Serving: ok && serving.ID == e.ID}
		res, err := Readout(ctx, a.deps.DB, e)
		switch {
		case err == nil:
			v.Readout = &res
		case errors.Is(err, setlist.ErrUnavailable):
			a.deps.Metrics.StoreError("postgres", "experiment_counts")
			v.ReadoutError = "the outcome counts are unavailable"
		default:
			return err
		}
		info.Experiments = append(info.Experiments, v)
		if e.Status == store.ExperimentRunning {
			info.Running = &info.Experiments[len(info.Experiments)-1]
		}
	}
	return c.JSON(info)
}

// Readout reads experiment e's counts and tests them by its design.
func Readout(ctx context.Context, db ExperimentDB, e store.Experiment) (experiment.Result, error) {
	control, challenger, err := db.ExperimentCounts(ctx, e.ID)
	if err != nil {
		return experiment.Result{}, err
	}
	return experiment.Test(e.Design(), control, challenger), nil
}
