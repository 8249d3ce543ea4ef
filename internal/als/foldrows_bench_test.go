package als

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/setlist/setlist/internal/feedback"
)

// BenchmarkUserHalfIteration is what a user costs training against what
// folding them in costs the precompute, on the same rows and item side
// (2,048 users of 50 reactions over 20,000 items, 64 factors as
// BenchmarkFoldInAll in internal/model, and 256 as the precompute figures'
// version: DefaultParamsFor picks 256 for that data; bm25, one thread): "training" is one
// user half of an ALS iteration (sweep: 3 warm-started float32 CG steps),
// "fold-in" the precompute's exact float64 Cholesky solve of the same
// normal equations from scratch (FoldRows). Per user, wall and CPU time:
//
//	GOEXPERIMENT=simd go test -run '^$' -bench UserHalfIteration -cpu 1 ./internal/als/
func BenchmarkUserHalfIteration(b *testing.B) {
	const users, items, perUser = 2048, 20000, 50
	rng := rand.New(rand.NewPCG(3, 4))
	entries := make([]feedback.Entry, 0, users*perUser)
	for u := range users {
		for range perUser {
			entries = append(entries, feedback.Entry{Row: int32(u), Col: int32(rng.IntN(items)), Value: float32(1 + rng.IntN(5))})
		}
	}
	m := feedback.NewCSR(users, items, entries)
	for _, k := range []int{64, 256} {
		b.Run(fmt.Sprintf("factors=%d", k), func(b *testing.B) { benchHalfIteration(b, m, k, rng) })
	}
}

func benchHalfIteration(b *testing.B, m *feedback.CSR, k int, rng *rand.Rand) {
	users, items := m.Rows, m.Cols
	p := DefaultParams()
	p.Weighting, p.Factors = feedback.WeightBM25, k
	weights := feedback.ItemWeights(m, p.Weighing())
	y := randomFactors(rng, items, k, k)
	for i := range y { // trained factors are ~10× the initial ones
		y[i] *= 10
	}
	side := &ItemSide{Params: p, Items: items, Factors: k, ItemFactors: y, ItemWeights: weights,
		Gram: gram64(y, items, k), ItemNorms: itemNorms(y, items, k)}
	perUserMetrics := func(b *testing.B, c0 float64) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1e3/float64(b.N*users), "µs/user")
		b.ReportMetric((cpuTime().Seconds()-c0)*1e6/float64(b.N*users), "cpu-µs/user")
	}
	b.Run("training", func(b *testing.B) {
		cu := weighMatrix(m, p, weights)
		a0 := withRidge(gram32(y, items, k, 1), k, p.Regularization)
		x := randomFactors(rng, users, k, k)
		b.ResetTimer()
		c0 := cpuTime().Seconds()
		for range b.N {
			sweep(x, y, k, m, cu, a0, p.cgSteps(), 1)
		}
		perUserMetrics(b, c0)
	})
	b.Run("fold-in", func(b *testing.B) {
		out := make([]float32, users*k)
		b.ResetTimer()
		c0 := cpuTime().Seconds()
		for range b.N {
			if err := side.FoldRows(context.Background(), m, out, 1); err != nil {
				b.Fatal(err)
			}
		}
		perUserMetrics(b, c0)
	})
}
