package als

import (
	"context"
	"encoding/json"
	"os"
	"strconv"
	"testing"
	"time"
)

// TestRealHoldout prints holdout metrics for DefaultParams and popularity on
// the shared data (skipped when absent). Run:
//
//	SETLIST_REAL=1 GOEXPERIMENT=simd go test ./batch/als/ -run TestRealHoldout -v
func TestRealHoldout(t *testing.T) {
	if os.Getenv("SETLIST_REAL") == "" {
		t.Skip("set SETLIST_REAL=1 to train on the shared data (normal test runs never read it)")
	}
	m := loadReal(t)
	train, test := SplitHoldout(m, 0.15, 1)
	t.Logf("data: %d users × %d items, %d nnz (train %d, test %d)", m.Rows, m.Cols, m.NNZ(), train.NNZ(), test.NNZ())
	t.Logf("popularity: %v", PopularityBaseline(train, test, 5))
	p := DefaultParams()
	// SETLIST_PARAMS overrides fields, e.g. {"Factors":150,"Weighting":"raw"}.
	if js := os.Getenv("SETLIST_PARAMS"); js != "" {
		if err := json.Unmarshal([]byte(js), &p); err != nil {
			t.Fatalf("SETLIST_PARAMS: %v", err)
		}
	}
	start := time.Now()
	model, err := Train(context.Background(), train, p, func(s IterationStats) {
		t.Logf("iter %d loss %.6g %v", s.Iteration, s.Loss, s.Duration)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("trained %+v in %v", p, time.Since(start))
	met, err := Evaluate(context.Background(), model.UserFactors, model.ItemSide(), train, test, 5, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("als default: %v", met)
}

// TestRealTune runs the tuner on the train part of the 15% holdout (the test
// part is only used afterwards to report the chosen params' metrics). Slow,
// so it also needs SETLIST_TUNE=1:
//
//	SETLIST_TUNE=1 GOEXPERIMENT=simd go test ./batch/als/ -run TestRealTune -v -timeout 60m
func TestRealTune(t *testing.T) {
	if os.Getenv("SETLIST_TUNE") == "" {
		t.Skip("set SETLIST_TUNE=1 to run the tuner on the shared data")
	}
	m := loadReal(t)
	train, test := SplitHoldout(m, 0.15, 1)
	cfg := TuneConfig{Trials: 40, Budget: 20 * time.Minute, Seed: 7}
	if v, err := strconv.Atoi(os.Getenv("SETLIST_TUNE_TRIALS")); err == nil {
		cfg.Trials = v
	}
	best, trials, err := Tune(context.Background(), train, cfg, func(tr Trial) {
		p := tr.Params
		t.Logf("trial %2d pruned=%-5v %6.1fs f=%d reg=%.4g alpha=%.4g it=%d w=%s k1=%.4g b=%.3g eps=%.3g → ndcg@5=%.4f p@5=%.4f",
			tr.Number, tr.Pruned, tr.Duration.Seconds(), p.Factors, p.Regularization, p.Alpha, p.Iterations, p.Weighting, p.BM25K1, p.BM25B, p.LogEpsilon, tr.Metrics.NDCG, tr.Metrics.Precision)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d trials; best %+v", len(trials), best)
	model, err := Train(context.Background(), train, best, nil)
	if err != nil {
		t.Fatal(err)
	}
	met, err := Evaluate(context.Background(), model.UserFactors, model.ItemSide(), train, test, 5, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("best on holdout test: %v", met)
}
