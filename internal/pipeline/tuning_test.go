package pipeline_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/pipeline"
	"github.com/setlist/setlist/internal/registry"
	"github.com/setlist/setlist/internal/store"
)

// TestTuneOnly: `batch tune` searches, records the run as tuned with every
// trial in the registry (in the run's own update), publishes nothing, and
// the next train starts from its pick, naming the search; once a newer run
// has published, that run's parameters win and still name the search.
func TestTuneOnly(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	res, err := pipeline.Run(ctx, pipeline.Config{TuneOnly: true, TuneTrials: 3, Threads: 2}, e.deps())
	if err != nil {
		t.Fatalf("tune-only run: %v", err)
	}
	if res.Status != store.RunTuned || res.Tuning == nil || len(res.Tuning.Trials) == 0 {
		t.Fatalf("status %q, tuning %v; want a tuned run with trials", res.Status, res.Tuning != nil)
	}
	if v := e.current(t); v != 0 {
		t.Errorf("a tune-only run published version %d", v)
	}
	if _, ok := res.Timings["eval"]; ok {
		t.Errorf("a tune-only run evaluated a full model: timings %v", res.Timings)
	}
	run, err := e.db.Run(ctx, res.RunID)
	if err != nil || run.Status != store.RunTuned || run.FinishedAt == nil {
		t.Fatalf("registry row %+v, %v; want tuned and finished", run, err)
	}
	var rp pipeline.RunParams
	if err := json.Unmarshal(run.Params, &rp); err != nil || rp.Tuning == nil {
		t.Fatalf("recorded params %s: %v; want a tuning summary", run.Params, err)
	}
	s := rp.Tuning
	best := res.Tuning.Trials[res.Tuning.BestTrial]
	if s.Run != res.RunID || s.Trials != len(res.Tuning.Trials) || s.BestTrial != best.Number || s.StopReason != res.Tuning.StopReason ||
		s.KeptIncumbent != res.Tuning.KeptIncumbent || s.UsedSeconds <= 0 {
		t.Errorf("summary %+v does not match the search (best trial %d, %d trials, stop %q)", s, best.Number, len(res.Tuning.Trials), res.Tuning.StopReason)
	}
	if rp.ALS.Factors != res.Tuning.Best.Factors || rp.ALS.Weighting != res.Tuning.Best.Weighting {
		t.Errorf("recorded params %+v, want the search's pick %+v", rp.ALS, res.Tuning.Best)
	}
	trials, err := e.db.TuningTrials(ctx, res.RunID)
	if err != nil || len(trials) != len(res.Tuning.Trials) {
		t.Fatalf("recorded %d trials, %v; want %d", len(trials), err, len(res.Tuning.Trials))
	}
	for i, got := range trials {
		want := res.Tuning.Trials[i]
		var p struct {
			Factors int `json:"factors"`
		}
		var m map[string]float64
		_ = json.Unmarshal(got.Params, &p)
		_ = json.Unmarshal(got.Metrics, &m)
		if got.Number != want.Number || got.Rung != want.Rung || got.Split != want.Split || got.Incumbent != want.Incumbent ||
			got.Pruned != want.Pruned || got.Promoted != want.Promoted || got.Iterations != want.Params.Iterations ||
			p.Factors != want.Params.Factors || m["ndcg_at_5"] != want.Metrics.NDCG {
			t.Errorf("trial %d recorded as %+v (params %s, metrics %s); want %+v", i, got, got.Params, got.Metrics, want)
		}
	}
	views := registry.ViewTrials(trials)
	if last := views[len(views)-1]; last.BestSoFar == nil || *last.BestSoFar < views[0].NDCG && views[0].FullFidelity {
		t.Errorf("best so far at the end = %v; want at least the incumbent's %v", last.BestSoFar, views[0].NDCG)
	}

	// The next train starts from the search's pick.
	next, err := pipeline.Run(ctx, pipeline.Config{Threads: 2, Force: true}, e.deps())
	if err != nil {
		t.Fatalf("train after tune: %v", err)
	}
	if next.Params.Source != "last-tuned" || next.Params.ALS.Factors != rp.ALS.Factors || next.Params.Tuning == nil || next.Params.Tuning.Run != res.RunID {
		t.Errorf("train after tune: source %q, factors %d, tuning %+v; want last-tuned from run %d with %d factors",
			next.Params.Source, next.Params.ALS.Factors, next.Params.Tuning, res.RunID, rp.ALS.Factors)
	}
	if trials, err := e.db.TuningTrials(ctx, next.RunID); err != nil || len(trials) != 0 {
		t.Errorf("the train run recorded %d trials of its own (%v); it did not search", len(trials), err)
	}
	// It published, so it is newer than the search: the run after it
	// takes its parameters, and still names the search.
	third, err := pipeline.Run(ctx, pipeline.Config{Threads: 2, DryRun: true, Force: true}, e.deps())
	if err != nil {
		t.Fatal(err)
	}
	if third.Params.Source != "last-published" || third.Params.Tuning == nil || third.Params.Tuning.Run != res.RunID {
		t.Errorf("third run: source %q, tuning %+v; want last-published naming run %d's search", third.Params.Source, third.Params.Tuning, res.RunID)
	}
}

func TestTuneOnlyNeedsABudget(t *testing.T) {
	for name, cfg := range map[string]pipeline.Config{
		"no budget":  {TuneOnly: true},
		"stage only": {TuneOnly: true, TuneTrials: 2, StageOnly: true},
	} {
		if _, err := pipeline.Run(context.Background(), cfg, pipeline.Deps{}); !errors.Is(err, setlist.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

// TestTuneMetrics: `batch tune`'s registry carries the search's series and
// nothing of a retrain's (its push must not overwrite the retrain's status,
// phases or candidate score); a train that tunes carries both.
func TestTuneMetrics(t *testing.T) {
	e := newEnv(t)
	names := func(reg *prometheus.Registry) map[string]float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				v := m.GetGauge().GetValue()
				if len(m.GetLabel()) > 0 {
					if v == 0 {
						continue
					}
					out[mf.GetName()+"{"+m.GetLabel()[0].GetValue()+"}"] = v
					continue
				}
				out[mf.GetName()] = v
			}
		}
		return out
	}
	reg := prometheus.NewRegistry()
	deps := e.deps()
	deps.Metrics = pipeline.NewTuneMetrics(reg)
	res, err := pipeline.Run(context.Background(), pipeline.Config{TuneOnly: true, TuneTrials: 2, Threads: 2}, deps)
	if err != nil {
		t.Fatal(err)
	}
	got := names(reg)
	s := res.Params.Tuning
	if got["setlist_batch_tune_trials"] != float64(s.Trials) || got["setlist_batch_tune_run"] != float64(res.RunID) ||
		got["setlist_batch_tune_best_ndcg_at_5"] != s.BestScore || got["setlist_batch_tune_stop_reason{"+s.StopReason+"}"] != 1 ||
		got["setlist_batch_tune_last_success_timestamp_seconds"] == 0 {
		t.Errorf("tune metrics %v do not match the search %+v", got, s)
	}
	for name := range got {
		if !strings.HasPrefix(name, "setlist_batch_tune_") {
			t.Errorf("batch tune exports %s, a retrain's series", name)
		}
	}

	reg = prometheus.NewRegistry()
	m, err := pipeline.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	deps.Metrics = m
	if _, err := pipeline.Run(context.Background(), pipeline.Config{TuneTrials: 2, Threads: 2, Force: true}, deps); err != nil {
		t.Fatal(err)
	}
	got = names(reg)
	for _, want := range []string{"setlist_batch_tune_trials", "setlist_batch_run_status{published}", "setlist_batch_model_ndcg_at_5"} {
		if _, ok := got[want]; !ok {
			t.Errorf("a train that tunes does not export %s: %v", want, got)
		}
	}
}
