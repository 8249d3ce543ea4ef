package ease

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/setlist/setlist/internal/als"
	"github.com/setlist/setlist/internal/parallel"
)

const (
	// sweepBlock pivots are swept together: each block step is one rank-
	// sweepBlock update of the trailing triangle, so the matrix (800 MB at
	// 10 k songs) is streamed n/sweepBlock times instead of n times.
	sweepBlock = 128
	// sweepCols columns of the update share one packed panel of Y
	// (sweepCols × sweepBlock float64 = 128 KiB) that stays in L2 while
	// every row block streams past it.
	sweepCols = 128
	tileRows  = 4
	tileCols  = 8
)

// invertSPD overwrites the lower triangle of the symmetric positive definite
// n×n row-major matrix a (only the lower triangle is read) with the lower
// triangle of a⁻¹; the upper triangle is left undefined.
//
// It uses the sweep operator (Goodnight 1979) in blocks: sweeping the pivot
// block K of a symmetric matrix maps A_KK → −A_KK⁻¹, A_JK → A_JK·A_KK⁻¹ and
// A_JJ → A_JJ − A_JK·A_KK⁻¹·A_KJ; sweeping every block yields −A⁻¹. For a
// positive definite matrix each pivot block is a Schur complement, itself
// positive definite, so no pivoting is needed (as for Cholesky). Against
// Cholesky, triangular inverse and product (LAPACK's potrf+potri), it costs
// the same n³ flops but has a single hot kernel (a rank-128 update of the
// lower triangle), parallel over row blocks. Every entry is updated by one
// worker in a fixed order, so the result does not depend on scheduling or
// the thread count.
func invertSPD(ctx context.Context, a []float64, n, threads int, progress func(done, total int)) error {
	if len(a) != n*n {
		return fmt.Errorf("invert: %d values for %d×%d", len(a), n, n)
	}
	nb := min(sweepBlock, n)
	x := make([]float64, n*nb)
	y := make([]float64, n*nb)
	panels := (n + tileCols - 1) / tileCols
	yp := make([]float64, panels*tileCols*nb)
	s := make([]float64, nb*nb)
	sinv := make([]float64, nb*nb)
	for k0 := 0; k0 < n; k0 += nb {
		if err := ctx.Err(); err != nil {
			return err
		}
		k1 := min(n, k0+nb)
		kb := k1 - k0
		// S = A_KK (symmetric, from the lower triangle), then S⁻¹.
		for r := 0; r < kb; r++ {
			for c := 0; c <= r; c++ {
				v := a[(k0+r)*n+k0+c]
				s[r*kb+c], s[c*kb+r] = v, v
			}
		}
		if err := smallInverse(s[:kb*kb], sinv[:kb*kb], kb); err != nil {
			return fmt.Errorf("pivot block at song %d: %w", k0, err)
		}
		// X = A_{:,K} with K's own rows zero, so the update leaves them.
		chunks(n, 256, threads, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				xi := x[i*kb : (i+1)*kb]
				switch {
				case i < k0:
					for t := range xi {
						xi[t] = a[(k0+t)*n+i]
					}
				case i < k1:
					clear(xi)
				default:
					copy(xi, a[i*n+k0:i*n+k1])
				}
				// Y = X·S⁻¹ (S⁻¹ symmetric: row t of it is column t).
				yi := y[i*kb : (i+1)*kb]
				clear(yi)
				for t, v := range xi {
					if v == 0 {
						continue
					}
					row := sinv[t*kb : (t+1)*kb]
					for c, w := range row {
						yi[c] += v * w
					}
				}
			}
		})
		// Pack Y's rows into panels of tileCols rows, t-major, zero padded.
		chunks(panels, 64, threads, func(lo, hi int) {
			for p := lo; p < hi; p++ {
				dst := yp[p*tileCols*kb : (p+1)*tileCols*kb]
				for c := 0; c < tileCols; c++ {
					j := p*tileCols + c
					for t := 0; t < kb; t++ {
						if j < n {
							dst[t*tileCols+c] = y[j*kb+t]
						} else {
							dst[t*tileCols+c] = 0
						}
					}
				}
			}
		})
		// A_JJ −= X·Yᵀ on the lower triangle, one column chunk at a time.
		for jc := 0; jc < n; jc += sweepCols {
			jend := min(n, jc+sweepCols)
			first := jc / tileRows * tileRows
			rowBlocks := (n - first + tileRows - 1) / tileRows
			chunks(rowBlocks, 16, threads, func(lo, hi int) {
				for b := lo; b < hi; b++ {
					i0 := first + b*tileRows
					if i0+tileRows > n || (i0+tileRows > k0 && i0 < k1) {
						for i := i0; i < min(n, i0+tileRows); i++ {
							if i >= k0 && i < k1 {
								continue
							}
							updateRowGo(a[i*n:], x[i*kb:(i+1)*kb], yp, kb, jc, min(jend, i+1))
						}
						continue
					}
					j := jc
					for ; j+tileCols <= min(jend, i0+tileRows); j += tileCols {
						tile4x8(x[i0*kb:(i0+tileRows)*kb], yp[(j/tileCols)*tileCols*kb:(j/tileCols+1)*tileCols*kb], kb, a, i0*n+j, n)
					}
					if j < min(jend, i0+tileRows) {
						for i := i0; i < i0+tileRows; i++ {
							updateRowGo(a[i*n:], x[i*kb:(i+1)*kb], yp, kb, j, min(jend, i+1))
						}
					}
				}
			})
		}
		// A_JK ← Y (stored as the lower entries), A_KK ← −S⁻¹.
		chunks(n, 256, threads, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				switch {
				case i < k0:
					for t := 0; t < kb; t++ {
						a[(k0+t)*n+i] = y[i*kb+t]
					}
				case i >= k1:
					copy(a[i*n+k0:i*n+k1], y[i*kb:(i+1)*kb])
				}
			}
		})
		for r := 0; r < kb; r++ {
			for c := 0; c <= r; c++ {
				a[(k0+r)*n+k0+c] = -sinv[r*kb+c]
			}
		}
		if progress != nil {
			progress(k1, n)
		}
	}
	// The sweeps leave −A⁻¹.
	chunks(n, 256, threads, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			row := a[i*n : i*n+i+1]
			for j := range row {
				row[j] = -row[j]
			}
		}
	})
	return nil
}

// updateRowGo is the portable update of row a[j0:j1) (a is the row's start):
// a_j −= x·Y_j for the packed panels yp.
func updateRowGo(a, x, yp []float64, kb, j0, j1 int) {
	for j := j0; j < j1; j++ {
		p := yp[(j/tileCols)*tileCols*kb:]
		c := j % tileCols
		var sum float64
		for t, v := range x {
			sum += v * p[t*tileCols+c]
		}
		a[j] -= sum
	}
}

// tile4x8Go is tile4x8 without vector instructions.
func tile4x8Go(x, yp []float64, kb int, a []float64, off, n int) {
	var acc [tileRows][tileCols]float64
	for t := 0; t < kb; t++ {
		y := yp[t*tileCols : (t+1)*tileCols]
		for r := 0; r < tileRows; r++ {
			v := x[r*kb+t]
			for c, w := range y {
				acc[r][c] += v * w
			}
		}
	}
	for r := 0; r < tileRows; r++ {
		row := a[off+r*n : off+r*n+tileCols]
		for c := range row {
			row[c] -= acc[r][c]
		}
	}
}

// smallInverse writes the inverse of the symmetric positive definite k×k
// matrix s into out (als.InvertSPD: Cholesky and k solves).
func smallInverse(s, out []float64, k int) error {
	inv, err := als.InvertSPD(s, k)
	if err != nil {
		return err
	}
	copy(out, inv)
	return nil
}

// inverseCost is the measured model of the inverse's time on this machine:
// a·n³ for the blocked rank-128 updates (the vector kernel) plus b·n² for
// the per-block work around them (gathering the pivot columns and X·S⁻¹,
// n·128² flops a block in scalar code), which dominates below a few
// thousand songs.
type inverseCost struct{ a, b float64 } // seconds per n³ and per n²

// calibrationSongs are the sizes InverseTime times the inverse at (about
// half a second together on 2 cores, once per process, only when a tuning
// run weighs EASE): two sizes separate the two terms, and below a thousand
// songs the timings are too short and too noisy to extrapolate from.
var calibrationSongs = [2]int{1024, 2048}

var inverseCosts sync.Map // resolved thread count → inverseCost

// InverseTime predicts how long inverting an n-song Gram takes on this
// machine with threads workers, from the inverse timed once per process at
// two small sizes rather than from an assumed rate: the same kernel ran 2
// GFlop/s per core without AVX2, 4.7 on one VM and 12 on another, and a
// budget planned on a constant skipped EASE where it would have fit.
// BenchmarkInversePrediction compares it with the real time.
func InverseTime(n, threads int) time.Duration {
	threads = parallel.Threads(threads)
	c, ok := inverseCosts.Load(threads)
	if !ok {
		c = calibrate(threads)
		inverseCosts.Store(threads, c)
	}
	ic := c.(inverseCost)
	f := float64(n)
	return time.Duration((ic.a*f*f*f + ic.b*f*f) * float64(time.Second))
}

func calibrate(threads int) inverseCost {
	var secs [2]float64
	for k, n := range calibrationSongs {
		a := make([]float64, n*n)
		for i := 0; i < n; i++ {
			for j := 0; j < i; j++ {
				a[i*n+j] = float64((i*31+j*17)%97) / float64(97*n)
			}
			a[i*n+i] = 2
		}
		start := time.Now()
		if err := invertSPD(context.Background(), a, n, threads, nil); err != nil {
			panic("ease: the calibration matrix is not positive definite: " + err.Error())
		}
		secs[k] = time.Since(start).Seconds()
	}
	return fitCost(calibrationSongs, secs)
}

// fitCost solves T(n) = a·n³ + b·n² through the two timings. Noise can
// make the solution negative in a term; then all the time is put on the
// cubic term of the larger size (which errs long for large n, never short).
func fitCost(n [2]int, secs [2]float64) inverseCost {
	n1, n2 := float64(n[0]), float64(n[1])
	a := (secs[1]/(n2*n2) - secs[0]/(n1*n1)) / (n2 - n1)
	b := secs[0]/(n1*n1) - a*n1
	if a <= 0 || b < 0 {
		return inverseCost{a: secs[1] / (n2 * n2 * n2)}
	}
	return inverseCost{a: a, b: b}
}
