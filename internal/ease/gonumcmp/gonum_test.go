// Package gonumcmp times gonum's Cholesky factorisation and inverse of the
// matrices internal/ease's BenchmarkInvert inverts, for the comparison in
// docs/BENCHMARKS.md:
//
//	cd internal/ease/gonumcmp && go test -run '^$' -bench Gonum -benchtime 1x
//	cd ../../.. && SETLIST_EASE_SIZES=2000,4000 GOEXPERIMENT=simd go test ./internal/ease/ -run '^$' -bench Invert -benchtime 1x
package gonumcmp

import (
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"

	"gonum.org/v1/gonum/mat"
)

func cpuSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

func BenchmarkGonumInverse(b *testing.B) {
	for _, n := range []int{2000, 4000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			// BenchmarkInvert's matrix: the same generator and seed.
			rng := rand.New(rand.NewPCG(1, 2))
			a := mat.NewSymDense(n, nil)
			for i := 0; i < n; i++ {
				for j := 0; j <= i; j++ {
					v := rng.Float64() / float64(n)
					if i == j {
						v += 2
					}
					a.SetSym(i, j, v)
				}
			}
			cpu0 := cpuSeconds()
			b.ResetTimer()
			for b.Loop() {
				var c mat.Cholesky
				if !c.Factorize(a) {
					b.Fatal("not positive definite")
				}
				var inv mat.SymDense
				if err := c.InverseTo(&inv); err != nil {
					b.Fatal(err)
				}
			}
			cpu := (cpuSeconds() - cpu0) / float64(b.N)
			flops := float64(n) * float64(n) * float64(n)
			b.ReportMetric(flops/(b.Elapsed().Seconds()/float64(b.N))/1e9, "GFlop/s")
			b.ReportMetric(flops/cpu/1e9, "GFlop/cpu-s")
		})
	}
}
