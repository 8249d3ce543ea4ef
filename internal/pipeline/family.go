package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/als"
	"github.com/setlist/setlist/internal/ease"
	"github.com/setlist/setlist/internal/feedback"
	"github.com/setlist/setlist/internal/model"
)

// FamilyAuto lets a tuning run choose the family (Config.Family).
const FamilyAuto = "auto"

// FamilyChoice is how a tuning run chose the family, recorded in its params.
type FamilyChoice struct {
	Chosen    string  `json:"chosen"`
	Incumbent string  `json:"incumbent"`
	ALSScore  float64 `json:"als_ndcg_at_5"`
	EASEScore float64 `json:"ease_ndcg_at_5,omitempty"`
	Margin    float64 `json:"noise_margin"`
	// Skipped says why EASE was not offered (memory or time).
	Skipped string `json:"ease_skipped,omitempty"`
	// Trials are the EASE settings tried with their validation NDCG@5.
	Trials []EASETrial `json:"ease_trials,omitempty"`
}

// EASETrial is one EASE setting scored on the tuner's validation split.
type EASETrial struct {
	Params  ease.Params `json:"params"`
	NDCG    float64     `json:"ndcg_at_5"`
	Seconds float64     `json:"seconds"`
}

// easeTrials is how many EASE trials a family comparison plans (ease.Search).
var easeTrials = ease.SearchTrials()

// easeOffer says whether EASE can be offered on a catalog of n songs
// (skipped is why not: memory, or with a tune budget time) and how long
// one of its trials is predicted to take.
func (r *run) easeOffer(n int) (perTrial time.Duration, skipped string) {
	cfg := r.cfg
	if err := ease.CheckFits(n, cfg.MemoryLimit); err != nil {
		return 0, err.Error()
	}
	// The inverse is a trial's cost (the Gram and B are seconds), as
	// this machine's inverse was measured to take.
	perTrial = ease.InverseTime(n, cfg.Threads)
	return perTrial, r.budget.easeTooSlow(n, perTrial)
}

// chooseFamily compares ALS's pick with EASE on the tuner's first
// validation split (the same SplitHoldout of train, fraction and seed) and
// keeps the incumbent family (the last published one, else ALS) unless
// the other beats it by more than the ALS search's noise margin
// (familyWinner). EASE is offered only when its matrices fit
// Config.MemoryLimit and, with a tune budget, when two of its trials fit in
// a quarter of it. With a budget the comparison runs in what the ALS search
// left of it (budget.reserve): an EASE trial starts only when its predicted
// end (the last trial's measured time, at first the flop estimate) is
// within the budget, except the first, whose cost was reserved.
func (r *run) chooseFamily(ctx context.Context, train *feedback.CSR, alsBest als.Params) (string, *ease.Params, error) {
	cfg := r.cfg
	fc := &FamilyChoice{Chosen: model.FamilyALS, Incumbent: r.lastFamily(ctx)}
	r.res.Params.Choice = fc
	if r.res.Tuning != nil {
		fc.Margin = r.res.Tuning.NoiseMargin
	}
	n := train.Cols
	perTrial, skipped := r.easeOffer(n)
	if skipped != "" {
		fc.Skipped = skipped
		r.deps.Logger.Info("EASE not offered", "songs", n, "need_bytes", ease.NeedBytes(n), "limit_bytes", cfg.MemoryLimit,
			"seconds_per_trial", perTrial.Seconds(), "budget", r.budget.String(), "why", skipped)
		return model.FamilyALS, nil, nil
	}
	end := r.budget.familyEnd(perTrial)
	var choice *ease.Params
	err := r.phase("family", func() error {
		fit, valid := feedback.SplitHoldout(train, 0.15, cfg.Seed)
		am, err := als.Train(ctx, fit, alsBest, nil)
		if err != nil {
			return err
		}
		met, err := als.Evaluate(ctx, am.UserFactors, am.ItemSide(), fit, valid, evalK, cfg.Threads)
		if err != nil {
			return err
		}
		fc.ALSScore = met.NDCG
		keep := cfg.EASEPrune
		if keep == 0 {
			keep = ease.DefaultPrune
		}
		base := ease.DefaultParams()
		base.Threads = cfg.Threads
		try := func(p ease.Params) (float64, error) {
			start := r.deps.Now()
			m, _, err := ease.Train(ctx, fit, p, ease.Options{MemoryLimit: cfg.MemoryLimit})
			if err != nil {
				return 0, err
			}
			em, err := m.Prune(keep, cfg.Threads).Evaluate(ctx, fit, valid, evalK, cfg.Threads)
			if err != nil {
				return 0, err
			}
			perTrial = r.deps.Now().Sub(start)
			fc.Trials = append(fc.Trials, EASETrial{Params: p, NDCG: em.NDCG, Seconds: perTrial.Seconds()})
			r.deps.Logger.Info("EASE trial", "lambda", p.Lambda, "weighting", p.Weighting, "ndcg_at_5", em.NDCG, "als_ndcg_at_5", fc.ALSScore)
			return em.NDCG, nil
		}
		more := func() bool { return r.budget.easeMore(len(fc.Trials), perTrial, end) }
		var best float64
		choice, best, err = ease.Search(base, ease.Scale(fit, base), r.budget.maxLambdas(), more, try)
		if err != nil {
			return err
		}
		fc.EASEScore = best
		return nil
	})
	if err != nil {
		return "", nil, err
	}
	if choice != nil {
		fc.Chosen = familyWinner(fc.Incumbent, fc.ALSScore, fc.EASEScore, fc.Margin)
	}
	easeWins := fc.Chosen == model.FamilyEASE
	r.deps.Logger.Info("family chosen", "family", fc.Chosen, "incumbent", fc.Incumbent, "als_ndcg_at_5", fc.ALSScore,
		"ease_ndcg_at_5", fc.EASEScore, "noise_margin", fc.Margin)
	if !easeWins {
		return model.FamilyALS, nil, nil
	}
	return model.FamilyEASE, choice, nil
}

// familyWinner is the incumbent rule across families: the incumbent
// (ALS unless it is EASE) stays unless the other family's validation
// NDCG@5 beats it by more than the noise margin.
func familyWinner(incumbent string, alsScore, easeScore, margin float64) string {
	if incumbent == model.FamilyEASE {
		if alsScore > easeScore+margin {
			return model.FamilyALS
		}
		return model.FamilyEASE
	}
	if easeScore > alsScore+margin {
		return model.FamilyEASE
	}
	return model.FamilyALS
}

// lastFamily is the family of the run a new one starts from (familyRun);
// ALS when none or older.
func (r *run) lastFamily(ctx context.Context) string {
	rp, _, err := r.familyRun(ctx)
	if err != nil {
		if !errors.Is(err, setlist.ErrNotFound) {
			r.deps.Logger.Warn("the run to start from is unreadable; ALS is the incumbent family", "err", err)
		}
		return model.FamilyALS
	}
	if rp.Family == model.FamilyEASE {
		return model.FamilyEASE
	}
	return model.FamilyALS
}

// familyRun is the params of the run whose family a new run continues:
// the run to start from (startRun), unless that is a search that did not
// compare families (batch tune without --family auto), which says nothing
// about them: then the last published run. source names which.
func (r *run) familyRun(ctx context.Context) (rp RunParams, source string, err error) {
	last, source, err := r.startRun(ctx)
	if err != nil {
		return RunParams{}, "", err
	}
	if json.Unmarshal(last.Params, &rp) != nil {
		r.deps.Logger.Warn("the params of the run to start from are unreadable; ALS is the incumbent family", "run", last.ID, "source", source)
		return RunParams{}, source, nil
	}
	if source == "last-tuned" && rp.Choice == nil {
		last, err = r.deps.Registry.LastPublished(ctx)
		if err != nil {
			return RunParams{}, "", err
		}
		rp = RunParams{}
		if json.Unmarshal(last.Params, &rp) != nil {
			r.deps.Logger.Warn("the params of the last published run are unreadable; ALS is the incumbent family", "run", last.ID)
		}
		source = "last-published"
	}
	return rp, source, nil
}
