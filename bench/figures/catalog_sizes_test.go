package figures

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/setlist/setlist/internal/ease"
	"github.com/setlist/setlist/internal/realdata"
	"github.com/setlist/setlist/internal/synth"
)

// TestFigureCatalogSizes measures EASE training against the catalog size
// on synthetic data (internal/synth: 2 users and 60 reactions a song): wall
// and CPU time per phase, and the peak RSS of training against NeedBytes,
// the memory model the guard uses. SETLIST_EASE_SIZES (default 10000,20000)
// are trained in full; SETLIST_EASE_MEMONLY sizes run the same allocation
// and page touches (Gram, then every element of its buffer written, as B's
// conversion in place does) without the n³ inverse, which takes hours
// there, to check the memory model at sizes out of time's reach (the
// inverse itself allocates only its n×128 panels):
//
//	SETLIST_FIGURES=1 SETLIST_EASE_SIZES=10000,20000 SETLIST_EASE_MEMONLY=20000,30000 \
//	  GOEXPERIMENT=simd go test ./bench/figures/ -run TestFigureCatalogSizes -v -timeout 5h
func TestFigureCatalogSizes(t *testing.T) {
	skipUnlessFigures(t, "EASE training against the catalog size")
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
			x, err := synthCSR(synth.Config{Users: 2 * n, Songs: n, Reactions: 60 * int64(n), Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			p := ease.DefaultParams()
			_ = realdata.ResetPeak()
			base := realdata.PeakRSS()
			cpu0, start := realdata.CPUSeconds(), time.Now()
			var st ease.Stats
			if memOnly {
				g, err := ease.Gram(ctx, x, p)
				if err != nil {
					t.Fatal(err)
				}
				st.Gram = time.Since(start)
				// Training writes B over the Gram's buffer, every element
				// of it; writing it here makes every page resident as that
				// does (the Gram filled only its lower triangle).
				clear(g)
				runtime.KeepAlive(g)
			} else {
				// The inverse's progress every tenth, so a run cut short
				// still measured its rate.
				last := 0
				progress := func(phase string, done, total int) {
					if phase == "invert" && done*10/total > last {
						last = done * 10 / total
						out("  %d songs: inverse %d/%d after %v (%.0f cpu-s)", n, done, total, time.Since(start).Round(time.Second), realdata.CPUSeconds()-cpu0)
					}
				}
				m, s, err := ease.Train(ctx, x, p, ease.Options{Progress: progress})
				if err != nil {
					t.Fatal(err)
				}
				st = s
				runtime.KeepAlive(m)
			}
			took, cpu, peak := time.Since(start), realdata.CPUSeconds()-cpu0, realdata.PeakRSS()
			mode := fmt.Sprintf("trained: wall %v (gram %v, invert %v = %.2f GFlop/wall-s, InverseTime predicted %v, B %v), %.0f cpu-s", took.Round(time.Second), st.Gram.Round(time.Millisecond),
				st.Invert.Round(time.Second), float64(n)*float64(n)*float64(n)/max(st.Invert.Seconds(), 1e-9)/1e9, ease.InverseTime(n, 0).Round(time.Second), st.Weights.Round(time.Millisecond), cpu)
			if memOnly {
				mode = fmt.Sprintf("memory only (Gram and B, no inverse): wall %v", took.Round(time.Second))
			}
			out("EASE %d songs (%d users, %d nnz), %s; peak RSS %.2f GiB (%.2f GiB before training), NeedBytes %.2f GiB, RSS added / NeedBytes %.3f",
				n, x.Rows, x.NNZ(), mode, gib(peak), gib(base), gib(ease.NeedBytes(n)), float64(peak-base)/float64(ease.NeedBytes(n)))
		}
	}
}
