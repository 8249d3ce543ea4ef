package als

import (
	"context"
	"encoding/json"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/setlist/setlist/internal/feedback"
)

// TestRealHoldout prints holdout metrics for DefaultParams and popularity on
// the shared data (skipped when absent). Run:
//
//	SETLIST_REAL=1 GOEXPERIMENT=simd go test ./internal/als/ -run TestRealHoldout -v
func TestRealHoldout(t *testing.T) {
	if os.Getenv("SETLIST_REAL") == "" {
		t.Skip("set SETLIST_REAL=1 to train on the shared data (normal test runs never read it)")
	}
	m := loadReal(t)
	train, test := feedback.SplitHoldout(m, 0.15, 1)
	t.Logf("data: %d users × %d items, %d nnz (train %d, test %d)", m.Rows, m.Cols, m.NNZ(), train.NNZ(), test.NNZ())
	t.Logf("popularity: %v", feedback.PopularityBaseline(train, test, 5))
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
//	SETLIST_TUNE=1 GOEXPERIMENT=simd go test ./internal/als/ -run TestRealTune -v -timeout 60m
func TestRealTune(t *testing.T) {
	if os.Getenv("SETLIST_TUNE") == "" {
		t.Skip("set SETLIST_TUNE=1 to run the tuner on the shared data")
	}
	m := loadReal(t)
	train, test := feedback.SplitHoldout(m, 0.15, 1)
	cfg := TuneConfig{Trials: 40, Budget: 20 * time.Minute, Seed: 7}
	if v, err := strconv.Atoi(os.Getenv("SETLIST_TUNE_TRIALS")); err == nil {
		cfg.Trials = v
	}
	res, err := Tune(context.Background(), train, cfg, func(tr Trial) {
		p := tr.Params
		t.Logf("trial %2d pruned=%-5v %6.1fs f=%d reg=%.4g alpha=%.4g it=%d w=%s k1=%.4g b=%.3g eps=%.3g → ndcg@5=%.4f p@5=%.4f",
			tr.Number, tr.Pruned, tr.Duration.Seconds(), p.Factors, p.Regularization, p.Alpha, p.Iterations, p.Weighting, p.BM25K1, p.BM25B, p.LogEpsilon, tr.Metrics.NDCG, tr.Metrics.Precision)
	})
	if err != nil {
		t.Fatal(err)
	}
	best := res.Best
	t.Logf("%d trials; best %+v (kept incumbent %v, %v of %v, stop %s)", len(res.Trials), best, res.KeptIncumbent, res.Used, res.Budget, res.StopReason)
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

// TestRealWarmStart measures what the batch pipeline's warm start costs in
// quality: a model fitted on the 15% holdout's train part, refitted on all
// data for a few iterations (TrainFrom), against a cold full fit of
// p.Iterations. It logs both final full-data losses and the top-5 agreement
// (share of common items in every user's top-5, training items excluded).
//
//	SETLIST_REAL=1 GOEXPERIMENT=simd go test ./internal/als/ -run TestRealWarmStart -v
//
// SETLIST_PARAMS overrides fields as in TestRealHoldout (the pipeline runs
// 64 factors, 15 iterations).
func TestRealWarmStart(t *testing.T) {
	if os.Getenv("SETLIST_REAL") == "" {
		t.Skip("set SETLIST_REAL=1 to train on the shared data (normal test runs never read it)")
	}
	m := loadReal(t)
	train, _ := feedback.SplitHoldout(m, 0.15, 42)
	p := DefaultParams()
	p.Factors, p.Iterations = 64, 15
	if js := os.Getenv("SETLIST_PARAMS"); js != "" {
		if err := json.Unmarshal([]byte(js), &p); err != nil {
			t.Fatalf("SETLIST_PARAMS: %v", err)
		}
	}
	ctx := context.Background()
	var last float64
	keep := func(s IterationStats) { last = s.Loss }
	split, err := Train(ctx, train, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	cold, err := Train(ctx, m, p, keep)
	if err != nil {
		t.Fatal(err)
	}
	coldLoss := last
	t.Logf("cold: %d iterations, loss %.6g, %v", p.Iterations, coldLoss, time.Since(start))
	coldTop, err := TopNAll(ctx, cold.UserFactors, cold.ItemSide(), 5, m, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	// A second cold fit from another seed: the agreement two equally good
	// cold models reach is the yardstick for the warm start's.
	q := p
	q.Seed++
	cold2, err := Train(ctx, m, q, keep)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cold (seed+1): loss %.6g (%+.3f%%), top-5 agreement with cold %.4f", last, 100*(last/coldLoss-1), agreement(coldTop, cold2, m))
	for _, it := range []int{1, 2, 3, 5, 8} {
		w := p
		w.Iterations = it
		start := time.Now()
		warm, err := TrainFrom(ctx, m, w, split, keep)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("warm: %d iterations, loss %.6g (%+.3f%% vs cold), top-5 agreement with cold %.4f, %v",
			it, last, 100*(last/coldLoss-1), agreement(coldTop, warm, m), time.Since(start))
	}
}

func agreement(ref [][]feedback.Scored, model *Model, m *feedback.CSR) float64 {
	top, err := TopNAll(context.Background(), model.UserFactors, model.ItemSide(), 5, m, nil, 0)
	if err != nil {
		panic(err)
	}
	var common, total int
	for u := range ref {
		total += len(ref[u])
		for _, a := range ref[u] {
			for _, b := range top[u] {
				if a.Item == b.Item {
					common++
				}
			}
		}
	}
	return float64(common) / float64(total)
}
