package ease

import (
	"context"
	"fmt"
	"math"
	"testing"
)

// BenchmarkTile times the inverse's hot kernel alone (one 4×8 tile of a
// rank-128 update), the vector kernel against the portable one. It found
// the vector kernel 5× slower than the portable one on a Sapphire Rapids
// VM: ranging over the packed panel copied each 64-byte row with legacy
// SSE moves between AVX instructions.
//
//	GOEXPERIMENT=simd go test ./internal/ease/ -run '^$' -bench Tile
func BenchmarkTile(b *testing.B) {
	const kb, n = sweepBlock, 1024
	x := make([]float64, tileRows*kb)
	yp := make([]float64, tileCols*kb)
	a := make([]float64, tileRows*n)
	for i := range x {
		x[i] = float64(i%7) * 0.1
	}
	for i := range yp {
		yp[i] = float64(i%5) * 0.1
	}
	for _, k := range []struct {
		name string
		fn   func(x, yp []float64, kb int, a []float64, off, n int)
	}{{"selected", tile4x8}, {"portable", tile4x8Go}} {
		b.Run(k.name, func(b *testing.B) {
			for b.Loop() {
				k.fn(x, yp, kb, a, 0, n)
			}
			b.ReportMetric(float64(tileRows*tileCols*kb*2)*float64(b.N)/float64(b.Elapsed().Nanoseconds()), "GFlop/s")
		})
	}
}

// TestFitCost: the two-term model goes through both timings, and noise
// that would make a term negative falls back to a cubic through the larger.
func TestFitCost(t *testing.T) {
	for _, c := range []struct {
		name   string
		a, b   float64 // the true model
		secs   [2]float64
		wantA  float64
		wantB  float64
		useTru bool
	}{
		{name: "both terms", a: 2e-11, b: 3e-7, useTru: true},
		{name: "cubic only", a: 5e-11, b: 0, useTru: true},
		{name: "larger faster than the model allows", secs: [2]float64{0.1, 0.2}, wantA: 0.2 / (2048.0 * 2048 * 2048)},
	} {
		n := calibrationSongs
		secs := c.secs
		if c.useTru {
			for k, m := range n {
				f := float64(m)
				secs[k] = c.a*f*f*f + c.b*f*f
			}
			c.wantA, c.wantB = c.a, c.b
		}
		got := fitCost(n, secs)
		if math.Abs(got.a-c.wantA) > 1e-9*c.wantA+1e-20 || math.Abs(got.b-c.wantB) > 1e-9*c.wantB+1e-20 {
			t.Errorf("%s: fit %+v, want a %g b %g", c.name, got, c.wantA, c.wantB)
		}
	}
}

// TestInverseTime: the calibration is measured once per thread count and
// predicts a positive time growing with n.
func TestInverseTime(t *testing.T) {
	small, large := InverseTime(1000, 1), InverseTime(4000, 1)
	if small <= 0 || large <= small {
		t.Fatalf("InverseTime(1000) = %v, InverseTime(4000) = %v", small, large)
	}
	if again := InverseTime(1000, 1); again != small {
		t.Errorf("measured again: %v then %v", small, again)
	}
}

// BenchmarkInversePrediction compares the time InverseTime predicts for an
// n-song inverse with the time it takes (the ratio the tuner's budget
// planning relies on; above 1 the prediction errs long):
//
//	GOEXPERIMENT=simd go test ./internal/ease/ -run '^$' -bench InversePrediction -benchtime 1x
func BenchmarkInversePrediction(b *testing.B) {
	for _, n := range []int{1000, 4000, 8000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			a := make([]float64, n*n)
			for i := 0; i < n; i++ {
				for j := 0; j < i; j++ {
					a[i*n+j] = float64((i*7+j*3)%11) / (11 * float64(n))
				}
				a[i*n+i] = 2
			}
			predicted := InverseTime(n, 0)
			w := make([]float64, n*n)
			b.ResetTimer()
			for b.Loop() {
				copy(w, a)
				if err := invertSPD(context.Background(), w, n, 0, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(predicted.Seconds()/(b.Elapsed().Seconds()/float64(b.N)), "predicted/actual")
		})
	}
}
