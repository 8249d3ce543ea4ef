package figures

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/setlist/setlist/internal/als"
	"github.com/setlist/setlist/internal/feedback"
	"github.com/setlist/setlist/internal/realdata"
)

// The tuner's figures (docs/BENCHMARKS.md, "Tuner"). CPU-heavy; they need
// SETLIST_FIGURES=1 and the shared data (they skip without it). Results are
// appended to SETLIST_FIGURES_OUT (default: a temporary file, logged) as
// they come, with the load average beside each.
//
//	SETLIST_FIGURES=1 SETLIST_TUNE_BUDGET=10m GOEXPERIMENT=simd \
//	  go test ./bench/figures/ -run TestFigureTuneShared -v -timeout 60m
//	SETLIST_FIGURES=1 SETLIST_TUNE_BUDGET=10m SETLIST_SHAPES=heavy,binary,sample10 \
//	  GOEXPERIMENT=simd go test ./bench/figures/ -run TestFigureShapes -v -timeout 180m

const figureSplitSeed = 42 // the pipeline's default seed: its holdout split

func figureSetup(t *testing.T) (budget time.Duration, out func(format string, a ...any)) {
	t.Helper()
	skipUnlessFigures(t, "the tuner's figures on the shared data")
	budget = 10 * time.Minute
	if v := os.Getenv("SETLIST_TUNE_BUDGET"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("SETLIST_TUNE_BUDGET: %v", err)
		}
		budget = d
	}
	out = realdata.FigureLog(t)
	return budget, out
}

// holdoutSeeds trains p on train with several seeds and scores each on
// test: the seed-to-seed spread of a published model's holdout figure.
func holdoutSeeds(t *testing.T, train, test *feedback.CSR, p als.Params, seeds int) (avg, sd float64, all []float64) {
	t.Helper()
	for s := range seeds {
		q := p
		q.Seed = int64(100 + s)
		all = append(all, holdoutNDCG(t, train, test, q))
	}
	return feedback.Mean(all), feedback.StdDev(all), all
}

func describe(p als.Params) string {
	s := fmt.Sprintf("%s f=%d λ=%.3g α=%.3g it=%d", p.Weighting, p.Factors, p.Regularization, p.Alpha, p.Iterations)
	switch p.Weighting {
	case feedback.WeightLog:
		s += fmt.Sprintf(" ε=%.3g", p.LogEpsilon)
	case feedback.WeightBM25:
		s += fmt.Sprintf(" K1=%.3g B=%.2f", p.BM25K1, p.BM25B)
	}
	return s
}

// tuneAndCompare is one `batch train --tune-budget` equivalent on m: the
// pipeline's 15 % holdout (seed 42), the search on its train part with the
// defaults as incumbent, then the tuned and the untuned parameters each
// trained with 3 seeds and scored on the holdout.
func tuneAndCompare(t *testing.T, name string, m *feedback.CSR, budget time.Duration, out func(string, ...any)) (tuned, def float64) {
	train, test := feedback.SplitHoldout(m, 0.15, figureSplitSeed)
	inc := als.DefaultParamsFor(train)
	out("%s: %d users × %d items, %d nnz; stats %+v; defaults %s", name, m.Rows, m.Cols, m.NNZ(), als.StatsOf(train), describe(inc))
	start := time.Now()
	res, err := als.Tune(context.Background(), train, als.TuneConfig{Budget: budget, Seed: figureSplitSeed, Threads: 2, Incumbent: &inc}, func(tr als.Trial) {
		t.Logf("trial %3d rung %d split %d inc=%-5v %6.1fs %s users=%.2f → ndcg@5 %.4f", tr.Number, tr.Rung, tr.Split, tr.Incumbent,
			tr.Duration.Seconds(), describe(tr.Params), tr.UserFraction, tr.Metrics.NDCG)
	})
	if err != nil {
		t.Fatal(err)
	}
	rungs := map[int]int{}
	for _, tr := range res.Trials {
		rungs[tr.Rung]++
	}
	out("%s: tuned in %v of %v (%.1f%%, call %v), stop %s, %d trials (per rung %v); kept incumbent %v; pick %s; validation %.4f vs incumbent %.4f, noise margin %.4f",
		name, res.Used.Round(time.Second), budget, 100*res.Used.Seconds()/budget.Seconds(), time.Since(start).Round(time.Second), res.StopReason,
		len(res.Trials), rungs, res.KeptIncumbent, describe(res.Best), res.BestScore, res.IncumbentScore, res.NoiseMargin)
	dm, ds, da := holdoutSeeds(t, train, test, inc, 3)
	tm, ts, ta := dm, ds, da
	if !res.KeptIncumbent {
		tm, ts, ta = holdoutSeeds(t, train, test, res.Best, 3)
	}
	out("%s: holdout NDCG@5 tuned %.4f ± %.4f %v, defaults %.4f ± %.4f %v, ratio %.3f", name, tm, ts, ta, dm, ds, da, tm/dm)
	return tm, dm
}

// TestFigureTuneShared is figure (a): the shared data, a 10-minute budget.
func TestFigureTuneShared(t *testing.T) {
	budget, out := figureSetup(t)
	m := realdata.CSR(t)
	tuneAndCompare(t, "shared", m, budget, out)
}

// shapes are transformations of the shared data the tuner never saw.
func shapes(m *feedback.CSR) map[string]func() *feedback.CSR {
	return map[string]func() *feedback.CSR{
		// Play counts replaced by heavy-tailed draws: each row has its own
		// scale (log-normal) and each entry a log-normal count around it,
		// so counts reach the thousands and say little about taste.
		"heavy": func() *feedback.CSR {
			rng := rand.New(rand.NewPCG(7, 7))
			var e []feedback.Entry
			for u := 0; u < m.Rows; u++ {
				mu := 1 + rng.NormFloat64()
				cols, _ := m.Row(u)
				for _, c := range cols {
					e = append(e, feedback.Entry{Row: int32(u), Col: c, Value: float32(math.Ceil(math.Exp(mu + 1.5*rng.NormFloat64())))})
				}
			}
			return feedback.NewCSR(m.Rows, m.Cols, e)
		},
		"binary": func() *feedback.CSR {
			var e []feedback.Entry
			for u := 0; u < m.Rows; u++ {
				cols, _ := m.Row(u)
				for _, c := range cols {
					e = append(e, feedback.Entry{Row: int32(u), Col: c, Value: 1})
				}
			}
			return feedback.NewCSR(m.Rows, m.Cols, e)
		},
		"sample10": func() *feedback.CSR { return sampleUsers(m, 0.1, 11) },
	}
}

// TestFigureShapes is figure (b): per transformation, the tuned model
// against the best cell of a grid (factors {32, 64, 128, 256} × weighting
// {raw, log, bm25} × α {0.3, 1, 3, 10}, λ 0.05, 15 iterations, one seed),
// both scored on the same holdout. SETLIST_GRID_FACTORS (e.g. "32,64")
// shortens the grid, SETLIST_GRID=0 skips it (for a second tuner run
// against a grid already measured); SETLIST_SHAPES picks transformations.
func TestFigureShapes(t *testing.T) {
	budget, out := figureSetup(t)
	m := realdata.CSR(t)
	factors := []int{32, 64, 128, 256}
	if v := os.Getenv("SETLIST_GRID_FACTORS"); v != "" {
		factors = nil
		for _, s := range strings.Split(v, ",") {
			f, err := strconv.Atoi(s)
			if err != nil {
				t.Fatal(err)
			}
			factors = append(factors, f)
		}
	}
	names := []string{"heavy", "binary", "sample10"}
	if v := os.Getenv("SETLIST_SHAPES"); v != "" {
		names = strings.Split(v, ",")
	}
	all := shapes(m)
	for _, name := range names {
		mk, ok := all[name]
		if !ok {
			t.Fatalf("unknown shape %q", name)
		}
		d := mk()
		tuned, def := tuneAndCompare(t, name, d, budget, out)
		if os.Getenv("SETLIST_GRID") == "0" {
			continue // the grid is deterministic: a run with it gave its best cell
		}
		train, test := feedback.SplitHoldout(d, 0.15, figureSplitSeed)
		best, bestCell := 0.0, ""
		for _, f := range factors {
			for _, w := range []feedback.Weighting{feedback.WeightRaw, feedback.WeightLog, feedback.WeightBM25} {
				for _, a := range []float64{0.3, 1, 3, 10} {
					p := als.DefaultParams()
					p.Factors, p.Weighting, p.Alpha, p.Threads = f, w, a, 2
					p.LogEpsilon, p.BM25K1, p.BM25B = 1, 100, 0.8
					start := time.Now()
					s := holdoutNDCG(t, train, test, p)
					t.Logf("%s grid %s: %.4f (%v)", name, describe(p), s, time.Since(start).Round(time.Second))
					if s > best {
						best, bestCell = s, describe(p)
					}
				}
			}
		}
		out("%s: grid best %s NDCG@5 %.4f; tuned %.4f (%.3f of the grid's best), defaults %.4f", name, bestCell, best, tuned, tuned/best, def)
	}
}
