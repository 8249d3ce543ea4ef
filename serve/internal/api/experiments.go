package api

import (
	"context"
	"encoding/json"
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
	serving, ok := a.deps.Recs.Experiment()
	key := experimentsKey{serving: serving.ID, ok: ok}
	body, err := a.experimentsReport.get(c.UserContext(), key, func(ctx context.Context) ([]byte, bool, error) {
		info, keep, err := a.experimentsInfo(ctx, key)
		if err != nil {
			return nil, false, err
		}
		body, err := json.Marshal(info)
		return body, keep, err
	})
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(body)
}

// experimentsKey is what GET /v1/experiments depends on in memory: the
// experiment this replica routes by, if any.
type experimentsKey struct {
	serving int64
	ok      bool
}

// experimentsInfo reads the registry's experiments and their readouts;
// keep is false when a readout could not be read.
func (a *API) experimentsInfo(ctx context.Context, key experimentsKey) (info experimentsInfo, keep bool, err error) {
	list, err := a.deps.DB.Experiments(ctx, experimentsLimit)
	if err != nil {
		a.deps.Metrics.StoreError("postgres", "experiments")
		return info, false, err
	}
	keep = true
	info.Experiments = make([]experimentView, 0, len(list))
	for _, e := range list {
		v := experimentView{Experiment: e, Serving: key.ok && key.serving == e.ID}
		res, err := Readout(ctx, a.deps.DB, e)
		switch {
		case err == nil:
			v.Readout = &res
		case errors.Is(err, setlist.ErrUnavailable):
			a.deps.Metrics.StoreError("postgres", "experiment_counts")
			v.ReadoutError = "the outcome counts are unavailable"
			keep = false
		default:
			return info, false, err
		}
		info.Experiments = append(info.Experiments, v)
		if e.Status == store.ExperimentRunning {
			info.Running = &info.Experiments[len(info.Experiments)-1]
		}
	}
	return info, keep, nil
}

// Readout reads experiment e's counts and tests them by its design.
func Readout(ctx context.Context, db ExperimentDB, e store.Experiment) (experiment.Result, error) {
	control, challenger, err := db.ExperimentCounts(ctx, e.ID)
	if err != nil {
		return experiment.Result{}, err
	}
	return experiment.Test(e.Design(), control, challenger), nil
}
