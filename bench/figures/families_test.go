package figures

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/setlist/setlist/internal/als"
	"github.com/setlist/setlist/internal/ease"
	"github.com/setlist/setlist/internal/feedback"
	"github.com/setlist/setlist/internal/realdata"
)

// The family figure (docs/BENCHMARKS.md, "EASE against the tuned ALS"):
// on the shared data, in one process and on one split, the best ALS the
// tuner finds in a fixed budget against EASE (default λ, B pruned as
// published). CPU-heavy: it needs SETLIST_FIGURES=1 and the shared data
// (it skips without either). Lines are appended to SETLIST_FIGURES_OUT
// (default a temporary file) with the load average beside each.
//
//	SETLIST_FIGURES=1 SETLIST_TUNE_BUDGET=10m GOEXPERIMENT=simd \
//	  go test ./bench/figures/ -run TestFigureFamilies -v -timeout 90m
func TestFigureFamilies(t *testing.T) {
	skipUnlessFigures(t, "EASE against the tuned ALS on the shared data")
	budget := 10 * time.Minute
	if v := os.Getenv("SETLIST_TUNE_BUDGET"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("SETLIST_TUNE_BUDGET: %v", err)
		}
		budget = d
	}
	out := realdata.FigureLog(t)
	m := realdata.CSR(t)
	ctx := context.Background()
	train, test := feedback.SplitHoldout(m, 0.15, 1)
	out("data %d users × %d songs, %d nnz; holdout split seed 1 (train %d, test %d)", m.Rows, m.Cols, m.NNZ(), train.NNZ(), test.NNZ())

	// ALS: the tuner's pick within the budget (the defaults as incumbent).
	inc := als.DefaultParamsFor(train)
	start := time.Now()
	res, err := als.Tune(ctx, train, als.TuneConfig{Budget: budget, Seed: 42, Incumbent: &inc}, nil)
	if err != nil {
		t.Fatal(err)
	}
	best := res.Best
	out("als tune: %v of a %v budget, %d trials, stop %s, kept incumbent %v, pick %+v", time.Since(start).Round(time.Second), budget, len(res.Trials), res.StopReason, res.KeptIncumbent, best)

	_ = realdata.ResetPeak()
	start = time.Now()
	am, err := als.Train(ctx, train, best, nil)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	side := am.ItemSide()
	met, err := als.Evaluate(ctx, am.UserFactors, side, train, test, 5, 0)
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if _, err := als.TopNAll(ctx, am.UserFactors, side, 5, train, nil, 0); err != nil {
		t.Fatal(err)
	}
	topAll := time.Since(start)
	p50, p99 := foldLatency(train, func(cols []int32, vals []float32) error {
		u, err := side.FoldIn(cols, vals)
		if err != nil {
			return err
		}
		side.Recommend(u, 5, cols)
		return nil
	})
	out("ALS tuned: p@5 %.4f ndcg@5 %.4f | train %v | peak RSS %.2f GiB | top-5 all %d users %v | fold-in (solve + score + top-5) p50 %v p99 %v",
		met.Precision, met.NDCG, took.Round(time.Millisecond), gib(realdata.PeakRSS()), train.Rows, topAll.Round(time.Millisecond), p50, p99)
	am, side = nil, nil

	_ = realdata.ResetPeak()
	p := ease.DefaultParams()
	start = time.Now()
	em, st, err := ease.Train(ctx, train, p, ease.Options{})
	if err != nil {
		t.Fatal(err)
	}
	took = time.Since(start)
	pr := em.Prune(ease.DefaultPrune, 0)
	peak := realdata.PeakRSS()
	dense, err := em.Evaluate(ctx, train, test, 5, 0)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := pr.Evaluate(ctx, train, test, 5, 0)
	if err != nil {
		t.Fatal(err)
	}
	em = nil
	start = time.Now()
	if _, err := pr.TopNAll(ctx, train, 5, train, nil, 0); err != nil {
		t.Fatal(err)
	}
	topAll = time.Since(start)
	p50, p99 = foldLatency(train, func(cols []int32, vals []float32) error {
		f, err := pr.Fold(cols, vals)
		if err != nil {
			return err
		}
		f.Recommend(5, cols)
		return nil
	})
	out("EASE λ %g pruned %d (published): p@5 %.4f ndcg@5 %.4f (dense B %.4f / %.4f) | train %v (gram %v, invert %v, B %v) + prune | peak RSS %.2f GiB | top-5 all %v | fold-in (sum of B rows + top-5) p50 %v p99 %v",
		p.Lambda, ease.DefaultPrune, pm.Precision, pm.NDCG, dense.Precision, dense.NDCG, took.Round(time.Millisecond), st.Gram.Round(time.Millisecond), st.Invert.Round(time.Millisecond), st.Weights.Round(time.Millisecond),
		gib(peak), topAll.Round(time.Millisecond), p50, p99)
	out("EASE/ALS: p@5 %+.1f%% ndcg@5 %+.1f%%", 100*(pm.Precision/met.Precision-1), 100*(pm.NDCG/met.NDCG-1))
}

// foldLatency times one goroutine's fold-ins of ~2000 evenly spaced users.
func foldLatency(train *feedback.CSR, fold func(cols []int32, vals []float32) error) (p50, p99 time.Duration) {
	var lat []time.Duration
	for u := 0; u < train.Rows && len(lat) < 2000; u += max(1, train.Rows/2000) {
		cols, vals := train.Row(u)
		s := time.Now()
		if fold(cols, vals) != nil {
			continue
		}
		lat = append(lat, time.Since(s))
	}
	slices.Sort(lat)
	return lat[len(lat)/2], lat[len(lat)*99/100]
}

func gib(b int64) float64 { return float64(b) / (1 << 30) }
