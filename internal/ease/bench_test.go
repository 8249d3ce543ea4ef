package ease

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/setlist/setlist/internal/feedback"
	"github.com/setlist/setlist/internal/realdata"
)

// cpuSeconds is the process's user + system CPU time so far.
func cpuSeconds() float64 { return realdata.CPUSeconds() }

// BenchmarkInvert times the blocked sweep inverse of an n×n positive
// definite matrix (n³ flops), reporting wall and CPU time (the machine is
// shared: CPU seconds say what the kernel costs, wall what a run waits).
// SETLIST_EASE_SIZES=4000,8000 picks the sizes:
//
//	GOEXPERIMENT=simd go test ./internal/ease/ -run '^$' -bench Invert -benchtime 1x
func BenchmarkInvert(b *testing.B) {
	sizes := []int{1000, 2000}
	if s := os.Getenv("SETLIST_EASE_SIZES"); s != "" {
		sizes = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(f)
			if err != nil {
				b.Fatal(err)
			}
			sizes = append(sizes, n)
		}
	}
	for _, n := range sizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			a := make([]float64, n*n)
			for i := 0; i < n; i++ {
				for j := 0; j <= i; j++ {
					a[i*n+j] = rng.Float64() / float64(n)
				}
				a[i*n+i] += 2
			}
			w := make([]float64, n*n)
			cpu0 := cpuSeconds()
			b.ResetTimer()
			for b.Loop() {
				copy(w, a)
				if err := invertSPD(context.Background(), w, n, 0, nil); err != nil {
					b.Fatal(err)
				}
			}
			cpu := (cpuSeconds() - cpu0) / float64(b.N)
			b.ReportMetric(float64(n)*float64(n)*float64(n)/b.Elapsed().Seconds()*float64(b.N)/1e9, "GFlop/s")
			b.ReportMetric(cpu, "cpu-s/op")
			b.ReportMetric(float64(n)*float64(n)*float64(n)/cpu/1e9, "GFlop/cpu-s")
			b.ReportMetric(float64(peakRSS())/(1<<30), "peak-GiB")
		})
	}
}

// BenchmarkTopNWithheld is a pruned EASE model's top-K (K = 20) of 13,600
// synthetic users over 2,000 songs with 0, 10 and 100 songs unavailable at
// the snapshot, withheld in place (feedback.RankWithheld): what a takedown
// known at training costs EASE's top-K phase (its second ranking scores
// every song and masks, unlike ALS's).
//
//	go test ./internal/ease/ -run '^$' -bench TopNWithheld -benchtime 3x
func BenchmarkTopNWithheld(b *testing.B) {
	const users, items = 13600, 2000
	rng := rand.New(rand.NewPCG(5, 6))
	var entries []feedback.Entry
	for u := range users {
		for range 60 {
			entries = append(entries, feedback.Entry{Row: int32(u), Col: int32(rng.IntN(items) * rng.IntN(items) / items), Value: float32(1 + rng.IntN(5))})
		}
	}
	m := feedback.NewCSR(users, items, entries)
	full, _, err := Train(context.Background(), m, DefaultParams(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	p := full.Prune(200, 0)
	for _, hidden := range []int{0, 10, 100} {
		unavailable := make([]int32, hidden)
		for i := range unavailable {
			unavailable[i] = int32(i) // the most played: low indexes are drawn most
		}
		b.Run(fmt.Sprintf("unavailable=%d", hidden), func(b *testing.B) {
			cpu0 := cpuSeconds()
			for b.Loop() {
				if _, err := feedback.RankWithheld(20, items, unavailable, func(n int, except []int32) ([][]feedback.Scored, error) {
					return p.TopNAll(context.Background(), m, n, m, except, 0)
				}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N), "cpu-s/op")
		})
	}
}
