package ease

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkInvert times the blocked sweep inverse of an n×n positive
// definite matrix (n³ flops):
//
//	GOEXPERIMENT=simd go test ./batch/ease/ -run '^$' -bench Invert -benchtime 1x
func BenchmarkInvert(b *testing.B) {
	for _, n := range []int{1000, 2000} {
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
			b.ResetTimer()
			for b.Loop() {
				copy(w, a)
				if err := invertSPD(context.Background(), w, n, 0, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)*float64(n)*float64(n)/b.Elapsed().Seconds()*float64(b.N)/1e9, "GFlop/s")
		})
	}
}
