package pipeline

import (
	"encoding/json"
	"fmt"

	"github.com/setlist/setlist/internal/als"
	"github.com/setlist/setlist/internal/feedback"
	"github.com/setlist/setlist/internal/registry"
	"github.com/setlist/setlist/internal/store"
)

// summarize condenses a search run by run id.
func summarize(run int64, tr *als.TuneResult) *registry.TuningSummary {
	s := &registry.TuningSummary{
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
func trialMetrics(m feedback.Metrics) map[string]float64 {
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
