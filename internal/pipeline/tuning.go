package pipeline

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/setlist/setlist/internal/als"
	"github.com/setlist/setlist/internal/store"
)

// TuningSummary is what the registry keeps about the search that chose a
// run's parameters (RunParams.Tuning): which trial won, against what, and
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

// summarize condenses a search run by run id.
func summarize(run int64, tr *als.TuneResult) *TuningSummary {
	s := &TuningSummary{
		Run: run, KeptIncumbent: tr.KeptIncumbent, IncumbentScore: tr.IncumbentScore, BestScore: tr.BestScore,
		NoiseMargin: tr.NoiseMargin, BudgetSeconds: tr.Budget.Seconds(), UsedSeconds: tr.Used.Seconds(),
		StopReason: tr.StopReason, Trials: len(tr.Trials), BestTrial: tr.BestTrial,
	}
	if tr.BestTrial >= 0 && tr.BestTrial < len(tr.Trials) {
		s.BestTrial = tr.Trials[tr.BestTrial].Number
	}
	for _, t := range tr.Trials {
		if t.Pruned {
			s.Pruned++
		}
	}
	return s
}

// TrialRecords turns the trials of run's search into the registry's rows,
// metrics named as the run's are (ndcg_at_5, ...).
func TrialRecords(run int64, tr *als.TuneResult) ([]store.TuningTrial, error) {
	out := make([]store.TuningTrial, 0, len(tr.Trials))
	for _, t := range tr.Trials {
		params, err := json.Marshal(t.Params)
		if err != nil {
			return nil, fmt.Errorf("trial %d: encode params: %w", t.Number, err)
		}
		metrics, err := json.Marshal(trialMetrics(t.Metrics))
		if err != nil {
			return nil, fmt.Errorf("trial %d: encode metrics: %w", t.Number, err)
		}
		frac := t.UserFraction
		if frac == 0 {
			frac = 1 // a search without user sampling
		}
		out = append(out, store.TuningTrial{
			RunID: run, Number: t.Number, Rung: t.Rung, Split: t.Split, Params: params, Iterations: t.Params.Iterations,
			UserFraction: frac, Metrics: metrics, Seconds: t.Duration.Seconds(),
			Pruned: t.Pruned, Promoted: t.Promoted, Incumbent: t.Incumbent,
		})
	}
	return out, nil
}

// trialMetrics names a trial's validation metrics as metricsMap names a
// run's, at the trial's K.
func trialMetrics(m als.Metrics) map[string]float64 {
	k := m.K
	if k == 0 {
		k = evalK
	}
	at := func(name string) string { return fmt.Sprintf("%s_at_%d", name, k) }
	return map[string]float64{
		at("ndcg"): m.NDCG, at("precision"): m.Precision, at("recall"): m.Recall, at("map"): m.MAP,
		at("hit_rate"): m.HitRate, at("coverage"): m.Coverage, "eval_users": float64(m.Users),
	}
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
