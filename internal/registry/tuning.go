package registry

import (
	"cmp"
	"encoding/json"
	"slices"

	"github.com/setlist/setlist/internal/store"
)

// TuningSummary is what the registry keeps about the search that chose a
// run's parameters (pipeline.RunParams.Tuning): which trial won, against what, and
// how much of the budget it spent and why it stopped. A run that did not
// tune carries the summary of the run whose parameters it inherited, so the
// served model can always name the search behind it.
type TuningSummary struct {
	// Run is the run that searched (its trials are in tuning_trials).
	Run int64 `json:"run"`
	// BestTrial is the winning trial's number (the incumbent's when kept).
	BestTrial      int     `json:"best_trial"`
	KeptIncumbent  bool    `json:"kept_incumbent"`
	IncumbentScore float64 `json:"incumbent_score"` // mean validation NDCG@5
	BestScore      float64 `json:"best_score"`
	NoiseMargin    float64 `json:"noise_margin"`
	BudgetSeconds  float64 `json:"budget_seconds"` // 0: no wall-clock budget
	UsedSeconds    float64 `json:"used_seconds"`
	// StopReason is why the search ended: budget, trials or
	// cancelled.
	StopReason string `json:"stop_reason"`
	Trials     int    `json:"trial_count"`
	Pruned     int    `json:"pruned_count"`
}

// TrialView is a recorded trial as people read it (the CLI's table, the
// web page's optimisation-history chart): its validation NDCG@5 and the best
// full-fidelity NDCG@5 so far, in order of evaluation.
type TrialView struct {
	store.TuningTrial
	NDCG float64 `json:"ndcg_at_5"`
	// FullFidelity: the top rung on the first validation split, the only
	// trials whose scores compare with each other and with the incumbent.
	FullFidelity bool `json:"full_fidelity"`
	// BestSoFar is the best full-fidelity NDCG@5 up to this trial; nil
	// before the first.
	BestSoFar *float64 `json:"best_so_far"`
}

// ViewTrials orders trials by evaluation (trial number) and adds the
// history's running best.
func ViewTrials(trials []store.TuningTrial) []TrialView {
	out := make([]TrialView, len(trials))
	top := 0
	for _, t := range trials {
		top = max(top, t.Rung)
	}
	for i, t := range trials {
		var m map[string]float64
		_ = json.Unmarshal(t.Metrics, &m) // the registry holds what TrialRecords wrote
		out[i] = TrialView{TuningTrial: t, NDCG: m["ndcg_at_5"], FullFidelity: t.Rung == top && t.Split == 0}
	}
	slices.SortStableFunc(out, func(a, b TrialView) int { return cmp.Compare(a.Number, b.Number) })
	var best *float64
	for i := range out {
		if out[i].FullFidelity && (best == nil || out[i].NDCG > *best) {
			v := out[i].NDCG
			best = &v
		}
		out[i].BestSoFar = best
	}
	return out
}
