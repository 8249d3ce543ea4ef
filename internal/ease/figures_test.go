package ease

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/setlist/setlist/internal/als"
	"github.com/setlist/setlist/internal/feedback"
	"github.com/setlist/setlist/internal/realdata"
	"github.com/setlist/setlist/internal/synth"
)

// The family figure (docs/BENCHMARKS.md, "EASE against the tuned ALS"):
// on the shared data, in one process and on one split, the best ALS the
// tuner finds in a fixed budget against EASE (default λ, B pruned as
// published). CPU-heavy: it needs SETLIST_FIGURES=1 and the shared data
// (it skips without either). Lines are appended to SETLIST_FIGURES_OUT
// (default a temporary file) with the load average beside each.
//
//	SETLIST_FIGURES=1 SETLIST_TUNE_BUDGET=10m GOEXPERIMENT=simd \
//	  go test ./internal/ease/ -run TestFigureFamilies -v -timeout 90m
func TestFigureFamilies(t *testing.T) {
	if os.Getenv("SETLIST_FIGURES") == "" {
		t.Skip("set SETLIST_FIGURES=1 to measure EASE against the tuned ALS on the shared data")
	}
	budget := 10 * time.Minute
	if v := os.Getenv("SETLIST_TUNE_BUDGET"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("SETLIST_TUNE_BUDGET: %v", err)
		}
		budget = d
	}
	out := realdata.FigureLog(t)
	m := loadReal(t)
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

	resetPeak()
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
		met.Precision, met.NDCG, took.Round(time.Millisecond), gib(peakRSS()), train.Rows, topAll.Round(time.Millisecond), p50, p99)
	am, side = nil, nil

	resetPeak()
	p := DefaultParams()
	start = time.Now()
	em, st, err := Train(ctx, train, p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	took = time.Since(start)
	pr := em.Prune(DefaultPrune, 0)
	peak := peakRSS()
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
		p.Lambda, DefaultPrune, pm.Precision, pm.NDCG, dense.Precision, dense.NDCG, took.Round(time.Millisecond), st.Gram.Round(time.Millisecond), st.Invert.Round(time.Millisecond), st.Weights.Round(time.Millisecond),
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

// resetPeak frees what the heap no longer uses and resets the process's
// peak RSS (VmHWM), so the next peakRSS is the next phase's own.
func resetPeak() {
	runtime.GC()
	debug.FreeOSMemory()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

func gib(b int64) float64 { return float64(b) / (1 << 30) }

// TestFigureCatalogSizes measures EASE training against the catalog size
// on synthetic data (internal/synth: 2 users and 60 reactions a song): wall
// and CPU time per phase, and the peak RSS of training against NeedBytes,
// the memory model the guard uses. SETLIST_EASE_SIZES (default 10000,20000)
// are trained in full; SETLIST_EASE_MEMONLY sizes run the same allocation
// and page touches (Gram, then B written over it) without the n³ inverse,
// which takes hours there, to check the memory model at sizes out of
// time's reach (the inverse itself allocates only its n×128 panels):
//
//	SETLIST_FIGURES=1 SETLIST_EASE_SIZES=10000,20000 SETLIST_EASE_MEMONLY=20000,30000 \
//	  GOEXPERIMENT=simd go test ./internal/ease/ -run TestFigureCatalogSizes -v -timeout 5h
func TestFigureCatalogSizes(t *testing.T) {
	if os.Getenv("SETLIST_FIGURES") == "" {
		t.Skip("set SETLIST_FIGURES=1 to measure EASE training against the catalog size")
	}
	out := realdata.FigureLog(t)
	sizes := func(env, def string) []int {
		v := os.Getenv(env)
		if v == "" {
			v = def
		}
		var ns []int
		for _, f := range strings.Split(v, ",") {
			if f == "" {
				continue
			}
			n, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("%s: %v", env, err)
			}
			ns = append(ns, n)
		}
		return ns
	}
	ctx := context.Background()
	for _, memOnly := range []bool{true, false} {
		list := sizes("SETLIST_EASE_SIZES", "10000,20000")
		if memOnly {
			list = sizes("SETLIST_EASE_MEMONLY", "")
		}
		for _, n := range list {
			x := synthCSR(t, n)
			p := DefaultParams()
			resetPeak()
			base := peakRSS()
			cpu0, start := cpuSeconds(), time.Now()
			var st Stats
			if memOnly {
				g, err := gram(ctx, x, p.Weighing(), feedback.ItemWeights(x, p.Weighing()), 0)
				if err != nil {
					t.Fatal(err)
				}
				for i := 0; i < n; i++ {
					g[i*n+i] += p.Lambda
				}
				st.Gram = time.Since(start)
				b := weightsFromInverse(g, n, 0)
				runtime.KeepAlive(b)
			} else {
				// The inverse's progress every tenth, so a run cut short
				// still measured its rate.
				last := 0
				progress := func(phase string, done, total int) {
					if phase == "invert" && done*10/total > last {
						last = done * 10 / total
						out("  %d songs: inverse %d/%d after %v (%.0f cpu-s)", n, done, total, time.Since(start).Round(time.Second), cpuSeconds()-cpu0)
					}
				}
				m, s, err := Train(ctx, x, p, Options{Progress: progress})
				if err != nil {
					t.Fatal(err)
				}
				st = s
				runtime.KeepAlive(m)
			}
			took, cpu, peak := time.Since(start), cpuSeconds()-cpu0, peakRSS()
			mode := fmt.Sprintf("trained: wall %v (gram %v, invert %v = %.2f GFlop/wall-s, InverseTime predicted %v, B %v), %.0f cpu-s", took.Round(time.Second), st.Gram.Round(time.Millisecond),
				st.Invert.Round(time.Second), float64(n)*float64(n)*float64(n)/max(st.Invert.Seconds(), 1e-9)/1e9, InverseTime(n, 0).Round(time.Second), st.Weights.Round(time.Millisecond), cpu)
			if memOnly {
				mode = fmt.Sprintf("memory only (Gram and B, no inverse): wall %v", took.Round(time.Second))
			}
			out("EASE %d songs (%d users, %d nnz), %s; peak RSS %.2f GiB (%.2f GiB before training), NeedBytes %.2f GiB, RSS added / NeedBytes %.3f",
				n, x.Rows, x.NNZ(), mode, gib(peak), gib(base), gib(NeedBytes(n)), float64(peak-base)/float64(NeedBytes(n)))
		}
	}
}

// synthCSR is internal/synth's data set for a catalog of n songs (2n users,
// 60n reactions), parsed from its CSV.
func synthCSR(t *testing.T, n int) *feedback.CSR {
	t.Helper()
	var buf bytes.Buffer
	if _, err := synth.Write(&buf, synth.Config{Users: 2 * n, Songs: n, Reactions: 60 * int64(n), Seed: 1}); err != nil {
		t.Fatal(err)
	}
	var e []feedback.Entry
	r := csv.NewReader(&buf)
	if _, err := r.Read(); err != nil { // header
		t.Fatal(err)
	}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		u, err1 := strconv.Atoi(strings.TrimPrefix(rec[0], "user"))
		s, err2 := strconv.Atoi(strings.TrimPrefix(rec[2], "Track "))
		c, err3 := strconv.ParseFloat(rec[3], 32)
		if err := errors.Join(err1, err2, err3); err != nil {
			t.Fatalf("synthetic row %v: %v", rec, err)
		}
		e = append(e, feedback.Entry{Row: int32(u), Col: int32(s), Value: float32(c)})
	}
	return feedback.NewCSR(2*n, n, e)
}
