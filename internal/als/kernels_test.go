package als

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/setlist/setlist/internal/feedback"
)

func randVec(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

// TestKernelsMatchPortable checks the dispatched (possibly SIMD) kernels
// against the portable ones over sizes that exercise every tail path.
func TestKernelsMatchPortable(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, k := range []int{1, 3, 7, 8, 15, 16, 24, 33, 64, 150, 152} {
		a, b := randVec(rng, k), randVec(rng, k)
		if got, want := dot(a, b), dotGo(a, b); math.Abs(float64(got-want)) > 1e-4*float64(k) {
			t.Errorf("k=%d dot = %v, portable %v", k, got, want)
		}
		y1 := randVec(rng, k)
		var y2 []float32
		y2 = append(y2, y1...)
		axpy(0.5, a, y1)
		axpyGo(0.5, a, y2)
		for i := range y1 {
			if math.Abs(float64(y1[i]-y2[i])) > 1e-5 {
				t.Fatalf("k=%d axpy[%d] = %v, portable %v", k, i, y1[i], y2[i])
			}
		}
		// axpy64 (the fold-in's normal equations) gives axpy64Go's bits:
		// serve's fold-in and the precompute agree whatever the build.
		x64, ya, yb := make([]float64, k+3), make([]float64, k+3), make([]float64, k+3)
		for i := range x64 {
			x64[i], ya[i] = rng.NormFloat64(), rng.NormFloat64()
		}
		copy(yb, ya)
		axpy64(0.37, x64, ya)
		axpy64Go(0.37, x64, yb)
		for i := range ya {
			if ya[i] != yb[i] {
				t.Fatalf("k=%d axpy64[%d] = %v, portable %v", k, i, ya[i], yb[i])
			}
		}
		// rankUpdate64 (the normal equations and the factor's trailing
		// updates) gives rankUpdate64Go's bits on the upper triangle.
		for _, n := range []int{0, 1, 4, 9} {
			for _, t0 := range []int{0, 4, 8, k / 2} {
				wa, y := make([]float64, n*k), make([]float64, n*k)
				for i := range wa {
					wa[i], y[i] = rng.NormFloat64(), rng.NormFloat64()
				}
				got := make([]float64, k*k)
				for i := range got {
					got[i] = rng.NormFloat64()
				}
				want := slices.Clone(got)
				rankUpdate64(got, k, wa, y, n, t0)
				rankUpdate64Go(want, k, wa, y, n, t0)
				for r := 0; r < k; r++ {
					for c := 0; c < k; c++ {
						inside := r >= t0 && c >= r
						if inside && got[r*k+c] != want[r*k+c] {
							t.Fatalf("k=%d n=%d t0=%d rankUpdate64 A[%d][%d] = %v, portable %v", k, n, t0, r, c, got[r*k+c], want[r*k+c])
						}
						if r < t0 && got[r*k+c] != want[r*k+c] {
							t.Fatalf("k=%d n=%d t0=%d rankUpdate64 changed row %d above t0", k, n, t0, r)
						}
					}
				}
			}
		}
		mat := randVec(rng, k*k)
		for i := 0; i < k; i++ { // symv relies on symmetry
			for j := 0; j < i; j++ {
				mat[i*k+j] = mat[j*k+i]
			}
		}
		o1, o2 := make([]float32, k), make([]float32, k)
		symv(mat, k, a, o1)
		symvGo(mat, k, a, o2)
		closeVec(t, "symv", k, o1, o2)
		v4 := randVec(rng, 4*k)
		got4, want4 := make([]float32, 4*k), make([]float32, 4*k)
		symv4(mat, k, v4, got4)
		for g := 0; g < 4; g++ {
			symv(mat, k, v4[g*k:(g+1)*k], want4[g*k:(g+1)*k])
		}
		for i := range got4 { // grouping must not change a bit
			if got4[i] != want4[i] {
				t.Fatalf("k=%d symv4[%d] = %v, symv %v", k, i, got4[i], want4[i])
			}
		}
		other := randVec(rng, 20*k)
		cols := []int32{3, 0, 19, 7, 7}
		cm1, bias := randVec(rng, 5), randVec(rng, 5)
		for _, bs := range [][]float32{nil, bias} {
			o1, o2 := randVec(rng, k), make([]float32, k)
			copy(o2, o1)
			accumRows(other, k, cols, cm1, bs, a, o1)
			accumRowsGo(other, k, cols, cm1, bs, a, o2)
			closeVec(t, "accumRows", k, o1, o2)
		}
	}
}

func closeVec(t *testing.T, name string, k int, got, want []float32) {
	t.Helper()
	for i := range got {
		if d := math.Abs(float64(got[i] - want[i])); d > 1e-3*(1+math.Abs(float64(want[i]))) {
			t.Fatalf("k=%d %s[%d] = %v, portable %v", k, name, i, got[i], want[i])
		}
	}
}

func BenchmarkAccumRows(b *testing.B) {
	for _, k := range []int{64, 152} {
		b.Run(fmt.Sprintf("k=%d", k), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			const rows, nnz = 10000, 128
			other := randVec(rng, rows*k)
			cols := make([]int32, nnz)
			for i := range cols {
				cols[i] = int32(rng.IntN(rows))
			}
			cm1, v, out := randVec(rng, nnz), randVec(rng, k), make([]float32, k)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				accumRows(other, k, cols, cm1, nil, v, out)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*nnz), "ns/entry")
		})
	}
}

func BenchmarkSymv(b *testing.B) {
	for _, k := range []int{64, 152} {
		b.Run(fmt.Sprintf("k=%d", k), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			a, v, out := randVec(rng, k*k), randVec(rng, k), make([]float32, k)
			for i := 0; i < b.N; i++ {
				symv(a, k, v, out)
			}
		})
	}
}

// TestCGRows4MatchesCGRow: running four rows' CG in lockstep gives exactly
// the per-row results (grouping is a scheduling choice, not a numerical one).
func TestCGRows4MatchesCGRow(t *testing.T) {
	m := planted(8, 50, 3, 5)
	rng := rand.New(rand.NewPCG(3, 4))
	for _, k := range []int{8, 24, 152} {
		p := DefaultParams()
		c := weighMatrix(m, p, feedback.ItemWeights(m, p.Weighing()))
		other := randVec(rng, m.Cols*k)
		a0 := withRidge(gram32(other, m.Cols, k, 1), k, 0.1)
		x0 := randVec(rng, m.Rows*k)
		grouped := append([]float32(nil), x0...)
		single := append([]float32(nil), x0...)
		s := newScratch(k)
		for u := 0; u+4 <= m.Rows; u += 4 {
			cgRows4(grouped[u*k:(u+4)*k], a0, other, k, m, u, c, 3, s)
		}
		for u := 0; u < m.Rows; u++ {
			b, e := m.Indptr[u], m.Indptr[u+1]
			cgRow(single[u*k:(u+1)*k], a0, other, k, m.Indices[b:e], c.cm1[b:e], c.cp[b:e], 3, s)
		}
		for i := range grouped {
			if grouped[i] != single[i] {
				t.Fatalf("k=%d x[%d]: grouped %v, single %v", k, i, grouped[i], single[i])
			}
		}
	}
}

// TestGram32: the blocked Gram matches a float64 reference and is exactly
// symmetric, for sizes off the kernel's 6×16 tile and chunk multiples.
func TestGram32(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, tc := range []struct{ rows, k int }{{1, 1}, {7, 5}, {100, 8}, {1500, 24}, {2100, 152}} {
		f := randVec(rng, tc.rows*tc.k)
		g := gram32(f, tc.rows, tc.k, 2)
		if blockedGram { // the fallback must agree too
			g1 := gram32Rank1(f, tc.rows, tc.k, 2)
			for i := range g {
				if d := math.Abs(float64(g[i] - g1[i])); d > 1e-4*float64(tc.rows) {
					t.Fatalf("%+v rank-1 g[%d] = %v, blocked %v", tc, i, g1[i], g[i])
				}
			}
		}
		for a := 0; a < tc.k; a++ {
			for b := 0; b < tc.k; b++ {
				var want float64
				for r := 0; r < tc.rows; r++ {
					want += float64(f[r*tc.k+a]) * float64(f[r*tc.k+b])
				}
				if d := math.Abs(float64(g[a*tc.k+b]) - want); d > 1e-4*float64(tc.rows) {
					t.Fatalf("%+v g[%d,%d] = %v, want %v", tc, a, b, g[a*tc.k+b], want)
				}
				if g[a*tc.k+b] != g[b*tc.k+a] {
					t.Fatalf("%+v not symmetric at %d,%d", tc, a, b)
				}
			}
		}
	}
}

// choleskyLeft is the left-looking Cholesky cholesky replaced: the
// reference its factor must equal bit for bit.
func choleskyLeft(a []float64, k int) {
	for j := 0; j < k; j++ {
		rj := a[j*k : j*k+j]
		d := a[j*k+j]
		for _, v := range rj {
			d -= v * v
		}
		d = math.Sqrt(d)
		a[j*k+j] = d
		for i := j + 1; i < k; i++ {
			ri := a[i*k : i*k+j]
			v := a[j*k+i]
			for t, x := range ri {
				v -= x * rj[t]
			}
			a[i*k+j] = v / d
		}
	}
}

// solveLower is the solve choleskySolve replaced, row by row with L (lower
// triangle of l): the reference it must equal bit for bit.
func solveLower(l []float64, k int, b []float64) {
	for i := 0; i < k; i++ {
		v := b[i]
		for t, x := range l[i*k : i*k+i] {
			v -= x * b[t]
		}
		b[i] = v / l[i*k+i]
	}
	for i := k - 1; i >= 0; i-- {
		v := b[i]
		for t := i + 1; t < k; t++ {
			v -= l[t*k+i] * b[t]
		}
		b[i] = v / l[i*k+i]
	}
}

// TestCholeskyBits: the right-looking, blocked and vectorised cholesky
// gives the left-looking factor bit for bit (the same subtractions in the
// same order; U = Lᵀ), and choleskySolve with it the row-by-row solve with
// L, so fold-ins did not change with them.
func TestCholeskyBits(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, k := range []int{1, 2, 5, 8, 13, 64, 65} {
		m := make([]float64, k*k)
		for r := 0; r < 3*k; r++ { // A = Σ y yᵀ + λI: positive definite
			y := make([]float64, k)
			for i := range y {
				y[i] = rng.NormFloat64()
			}
			for i := range k {
				for j := range k {
					m[i*k+j] += y[i] * y[j]
				}
			}
		}
		for i := range k {
			m[i*k+i] += 0.1
		}
		got, want := slices.Clone(m), slices.Clone(m)
		if err := cholesky(got, k); err != nil {
			t.Fatal(err)
		}
		choleskyLeft(want, k)
		for i := range k {
			for j := 0; j <= i; j++ {
				if got[j*k+i] != want[i*k+j] {
					t.Fatalf("k=%d U[%d][%d] = %v, left-looking L[%d][%d] %v", k, j, i, got[j*k+i], i, j, want[i*k+j])
				}
			}
		}
		b := make([]float64, k)
		for i := range b {
			b[i] = rng.NormFloat64()
		}
		gotX, wantX := slices.Clone(b), slices.Clone(b)
		choleskySolve(got, k, gotX)
		solveLower(want, k, wantX)
		if !slices.Equal(gotX, wantX) {
			t.Fatalf("k=%d choleskySolve = %v, row by row with L %v", k, gotX, wantX)
		}
	}
}
