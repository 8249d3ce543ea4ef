package figures

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/setlist/setlist/internal/als"
	"github.com/setlist/setlist/internal/feedback"
	"github.com/setlist/setlist/internal/realdata"
	"github.com/setlist/setlist/internal/synth"
)

// How the one-process trainer grows with users (docs/scaling.md): synthetic
// data from internal/synth (fixed catalog, ~50 reactions a user), ALS with the
// default 64 factors for a few iterations, then top-5 for every user, each
// size in a child process of its own so its peak RSS is its own. Gated:
//
//	GOEXPERIMENT=simd go test -c -o /tmp/figures.test ./bench/figures/
//	cd bench/figures && SETLIST_FIGURES=1 SETLIST_SCALE_SIZES=100000,300000,1000000,3000000 \
//	  /tmp/figures.test -test.run TestTrainerScale -test.v -test.timeout 120m
//
// SETLIST_SCALE_SONGS (default 20000), SETLIST_SCALE_PER_USER (50) and
// SETLIST_SCALE_ITERATIONS (3) shape the runs; a result line is appended to
// SETLIST_FIGURES_OUT when set.

// scaleResult is what one child measures; the parent prints the table.
type scaleResult struct {
	Users, Songs, NNZ int
	Iterations        int
	GenSeconds        float64 // synth → entries → CSR
	TrainSeconds      float64 // Train, incl. weighting/transposing setup
	IterSeconds       float64 // Train's mean iteration
	TopKSeconds       float64 // top-5 for every user
	TrainCPU, TopKCPU float64 // user+system CPU seconds of each phase (wall time swings with the shared machine's load)
	CSRBytes          int64   // Indptr+Indices+Data of the user×item matrix
	TrainHeapPeak     int64   // Go heap objects, peak during Train (sampled every 20 ms)
	TopKHeapPeak      int64   // the same during top-K, the model still held
	TrainRSSPeak      int64   // VmHWM during Train (reset after the data was built)
	TopKRSSPeak       int64   // VmHWM during top-K (reset before)
	GenRSSPeak        int64   // VmHWM while the data was generated and built
}

func TestTrainerScale(t *testing.T) {
	if v := os.Getenv("SETLIST_SCALE_CHILD"); v != "" {
		scaleChild(t, v)
		return
	}
	skipUnlessFigures(t, "the trainer's growth with users (minutes, GBs)")
	sizes := strings.Split(realdata.EnvOr("SETLIST_SCALE_SIZES", "100000,300000,1000000"), ",")
	var results []scaleResult
	for _, s := range sizes {
		start := time.Now()
		load := realdata.LoadAvg()
		var r scaleResult
		realdata.RunChild(t, "^TestTrainerScale$", "SCALE", []string{"SETLIST_SCALE_CHILD=" + strings.TrimSpace(s)}, &r)
		results = append(results, r)
		line := fmt.Sprintf("%s load-before %s load-after %s users %d songs %d nnz %d iters %d | gen %.1fs (peak RSS %d MiB) | train %.1fs (%.1fs/iter, %.0f cpu-s) heap %d MiB RSS %d MiB | top-5 %.1fs (%.0f cpu-s) heap %d MiB RSS %d MiB | CSR %d MiB | wall %s",
			time.Now().UTC().Format(time.RFC3339), load, realdata.LoadAvg(), r.Users, r.Songs, r.NNZ, r.Iterations,
			r.GenSeconds, r.GenRSSPeak>>20, r.TrainSeconds, r.IterSeconds, r.TrainCPU, r.TrainHeapPeak>>20, r.TrainRSSPeak>>20,
			r.TopKSeconds, r.TopKCPU, r.TopKHeapPeak>>20, r.TopKRSSPeak>>20, r.CSRBytes>>20, time.Since(start).Round(time.Second))
		t.Log(line)
		if p := os.Getenv("SETLIST_FIGURES_OUT"); p != "" {
			f, err := os.OpenFile(p, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintln(f, line)
			f.Close()
		}
	}
	// Growth between consecutive sizes: the exponent b in cost ∝ usersᵇ,
	// of CPU time (wall time follows the shared machine's load).
	for i := 1; i < len(results); i++ {
		a, b := results[i-1], results[i]
		ratio := float64(b.Users) / float64(a.Users)
		exp := func(x, y float64) float64 { return math.Log(y/x) / math.Log(ratio) }
		t.Logf("%d → %d users: train CPU ∝ users^%.2f, top-K CPU ∝ users^%.2f, train RSS ∝ users^%.2f, top-K RSS ∝ users^%.2f",
			a.Users, b.Users, exp(a.TrainCPU, b.TrainCPU), exp(a.TopKCPU, b.TopKCPU),
			exp(float64(a.TrainRSSPeak), float64(b.TrainRSSPeak)), exp(float64(a.TopKRSSPeak), float64(b.TopKRSSPeak)))
	}
}

// scaleChild measures one size and prints "SCALE {json}".
func scaleChild(t *testing.T, size string) {
	users, err := strconv.Atoi(size)
	if err != nil || users < 1 {
		t.Fatalf("SETLIST_SCALE_CHILD=%q", size)
	}
	songs := realdata.EnvInt(t, "SETLIST_SCALE_SONGS", 20000)
	perUser := realdata.EnvInt(t, "SETLIST_SCALE_PER_USER", 50)
	iters := realdata.EnvInt(t, "SETLIST_SCALE_ITERATIONS", 3)
	r := scaleResult{Users: users, Songs: songs, Iterations: iters}

	start := time.Now()
	m, err := synthCSR(synth.Config{Users: users, Songs: songs, Reactions: int64(users) * int64(perUser), Clusters: 50, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	r.GenSeconds = time.Since(start).Seconds()
	r.NNZ = m.NNZ()
	r.CSRBytes = int64(len(m.Indptr))*8 + int64(len(m.Indices))*4 + int64(len(m.Data))*4
	r.GenRSSPeak = realdata.PeakRSS()

	// What follows is what the trainer holds once the data is loaded.
	runtime.GC()
	debug.FreeOSMemory()
	resetPeakRSS(t)
	p := als.DefaultParams()
	p.Iterations = iters
	heap := realdata.SampleHeap()
	start, c0 := time.Now(), realdata.CPUSeconds()
	model, err := als.Train(context.Background(), m, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.TrainSeconds, r.TrainCPU = time.Since(start).Seconds(), realdata.CPUSeconds()-c0
	r.IterSeconds = r.TrainSeconds / float64(iters)
	r.TrainHeapPeak = heap()
	r.TrainRSSPeak = realdata.PeakRSS()

	runtime.GC()
	debug.FreeOSMemory()
	resetPeakRSS(t)
	heap = realdata.SampleHeap()
	start, c0 = time.Now(), realdata.CPUSeconds()
	recs, err := als.TopNAll(context.Background(), model.UserFactors, model.ItemSide(), 5, m, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	r.TopKSeconds, r.TopKCPU = time.Since(start).Seconds(), realdata.CPUSeconds()-c0
	r.TopKHeapPeak = heap()
	r.TopKRSSPeak = realdata.PeakRSS()
	if len(recs) != users || len(recs[0]) != 5 {
		t.Fatalf("top-5 for %d users, first list %d long", len(recs), len(recs[0]))
	}
	runtime.KeepAlive(m)
	realdata.PrintResult("SCALE", r)
}

// synthCSR parses internal/synth's CSV stream for cfg straight into
// entries ("userN", "Track J" name user N and song J), then builds the
// matrix; the stream is never held whole.
func synthCSR(cfg synth.Config) (*feedback.CSR, error) {
	pr, pw := io.Pipe()
	go func() {
		_, err := synth.Write(pw, cfg)
		pw.CloseWithError(err)
	}()
	entries := make([]feedback.Entry, 0, cfg.Reactions+cfg.Reactions/50)
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	sc.Scan() // header
	for sc.Scan() {
		f := bytes.Split(sc.Bytes(), []byte{','})
		if len(f) != 4 {
			return nil, fmt.Errorf("synth line %q", sc.Text())
		}
		u, err1 := strconv.Atoi(string(bytes.TrimPrefix(f[0], []byte("user"))))
		j, err2 := strconv.Atoi(string(bytes.TrimPrefix(f[2], []byte("Track "))))
		c, err3 := strconv.Atoi(string(f[3]))
		if err1 != nil || err2 != nil || err3 != nil {
			return nil, fmt.Errorf("synth line %q", sc.Text())
		}
		entries = append(entries, feedback.Entry{Row: int32(u), Col: int32(j), Value: float32(c)})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return feedback.NewCSR(cfg.Users, cfg.Songs, entries), nil
}

// resetPeakRSS sets VmHWM back to the current RSS, so the next phase's
// peak is its own.
func resetPeakRSS(t *testing.T) {
	if err := realdata.ResetPeak(); err != nil {
		t.Fatalf("reset peak RSS: %v", err)
	}
}
