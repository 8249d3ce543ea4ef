//go:build goexperiment.simd && amd64

package als

import "simd/archsimd"

// AVX2+FMA kernels. Selected at run time: a CPU without them falls back to
// the portable kernels, so a GOEXPERIMENT=simd binary still runs anywhere.

var useAVX2 = archsimd.X86.AVX2() && archsimd.X86.FMA()

// blockedGram selects gram32's tiled path (gram_amd64.s).
var blockedGram = useAVX2

func dot(a, b []float32) float32 {
	if !useAVX2 || len(a) < 16 {
		return dotGo(a, b)
	}
	return dotAVX(a, b)
}

// hsumAll returns a vector whose every lane holds the sum of v's lanes, so
// the result feeds further vector maths without a round trip through scalar
// SSE registers (mixing SSE and dirty AVX state costs false dependencies).
func hsumAll(v archsimd.Float32x8) archsimd.Float32x8 {
	s := v.GetLo().Add(v.GetHi())
	s = s.AddPairs(s)
	s = s.AddPairs(s)
	return s.Broadcast1To8()
}

func load8(s []float32) archsimd.Float32x8 { return archsimd.LoadFloat32x8((*[8]float32)(s[:8])) }

// dotVec is the k-multiple-of-8 dot product, broadcast to all lanes.
func dotVec(a, b []float32) archsimd.Float32x8 {
	n := len(a)
	b = b[:n]
	var s0, s1 archsimd.Float32x8
	i := 0
	for ; i+16 <= n; i += 16 {
		s0 = load8(a[i:]).MulAdd(load8(b[i:]), s0)
		s1 = load8(a[i+8:]).MulAdd(load8(b[i+8:]), s1)
	}
	if i+8 <= n {
		s0 = load8(a[i:]).MulAdd(load8(b[i:]), s0)
	}
	return hsumAll(s0.Add(s1))
}

func dotAVX(a, b []float32) float32 {
	n := len(a) &^ 7
	s := dotVec(a[:n], b[:n]).GetLo().GetElem(0)
	archsimd.ClearAVXUpperBits()
	for i := n; i < len(a); i++ {
		s += a[i] * b[i]
	}
	return s
}

func axpy(alpha float32, x, y []float32) {
	if !useAVX2 || len(x) < 8 {
		axpyGo(alpha, x, y)
		return
	}
	axpyAVX(alpha, x, y)
}

func axpyAVX(alpha float32, x, y []float32) {
	n := len(x)
	y = y[:n]
	av := archsimd.BroadcastFloat32x8(alpha)
	i := 0
	for ; i+8 <= n; i += 8 {
		yp := (*[8]float32)(y[i : i+8])
		av.MulAdd(load8(x[i:]), archsimd.LoadFloat32x8(yp)).Store(yp)
	}
	archsimd.ClearAVXUpperBits()
	for ; i < n; i++ {
		y[i] += alpha * x[i]
	}
}

// axpy64 is y += alpha·x in float64 (the fold-in's normal equations),
// four lanes at a time with a separate multiply and add, as axpy64Go
// rounds: the same bits, so serve and the precompute agree with any build.
func axpy64(alpha float64, x, y []float64) {
	n := len(x)
	if !useAVX2 || n < 8 {
		axpy64Go(alpha, x, y)
		return
	}
	y = y[:n]
	av := archsimd.BroadcastFloat64x4(alpha)
	i := 0
	for ; i+4 <= n; i += 4 {
		yp := (*[4]float64)(y[i : i+4])
		archsimd.LoadFloat64x4(yp).Add(av.Mul(archsimd.LoadFloat64x4((*[4]float64)(x[i : i+4])))).Store(yp)
	}
	archsimd.ClearAVXUpperBits()
	for ; i < n; i++ {
		y[i] += alpha * x[i]
	}
}

// div64 is x /= d four lanes at a time: IEEE division rounds each lane
// as the scalar division does, so the bits are div64Go's.
func div64(x []float64, d float64) {
	n := len(x)
	if !useAVX2 || n < 8 {
		div64Go(x, d)
		return
	}
	dv := archsimd.BroadcastFloat64x4(d)
	i := 0
	for ; i+4 <= n; i += 4 {
		p := (*[4]float64)(x[i : i+4])
		archsimd.LoadFloat64x4(p).Div(dv).Store(p)
	}
	archsimd.ClearAVXUpperBits()
	for ; i < n; i++ {
		x[i] /= d
	}
}

// rankUpdate64 is rankUpdate64Go (A += Σ_j wa_j y_jᵀ on the upper
// triangle from row t0, in float64: the fold-in's normal equations and
// its Cholesky factor's trailing updates) in 4×8 blocks of A held in
// registers across all n rows: a broadcast of wa_j[t], a multiply and an
// add per block row and j, where axpy64 a row j (what this replaced) read
// and wrote A once per j. Each entry still gets its terms in the order
// j = 0, 1, …, multiply then add, so the bits are rankUpdate64Go's. The
// blocks on the diagonal also update entries below it, which neither the
// normal equations nor the factorisation read.
func rankUpdate64(a []float64, k int, wa, y []float64, n, t0 int) {
	k8 := k &^ 7
	if !useAVX2 || t0%4 != 0 || t0 >= k8 || n == 0 {
		rankUpdate64Go(a, k, wa, y, n, t0)
		return
	}
	_, _, _ = a[k*k-1], wa[(n-1)*k+k-1], y[(n-1)*k+k-1]
	for t := t0; t < k8; t += 4 {
		for u := t &^ 7; u < k8; u += 8 {
			rankBlock4x8AVX(&a[t*k+u], k, &wa[t], &y[u], n)
		}
	}
	// The columns past the last whole block, and the rows past it.
	rankUpdateRows64Go(a, k, wa, y, n, t0, k8, k8)
	rankUpdateRows64Go(a, k, wa, y, n, k8, k, 0)
}

// rankBlock4x8AVX is rankUpdate64's 4×8 block (rank_amd64.s): written
// with archsimd, the compiler reloaded each broadcast through a scalar
// register and re-checked the row slices' bounds every j.
//
//go:noescape
func rankBlock4x8AVX(a *float64, k int, wa *float64, y *float64, n int)

// symv1AVX is the one-vector symv (symv_amd64.s).
//
//go:noescape
func symv1AVX(a *float32, k int, v *float32, out *float32)

// symv uses A's symmetry to compute A·v as Σ_r v_r·A[r,:], a broadcast-FMA
// over rows that needs no horizontal sums. Its vector path is assembly, as
// symv4's is: one implementation of the sum order both must share bit for
// bit (docs/BENCHMARKS.md, "One vector path per kernel").
func symv(a []float32, k int, v, out []float32) {
	if !useAVX2 || k%8 != 0 || k == 0 {
		symvGo(a, k, v, out)
		return
	}
	_, _, _ = a[k*k-1], v[k-1], out[k-1]
	symv1AVX(&a[0], k, &v[0], &out[0])
}

// symv4AVX is the four-vector symv (symv_amd64.s).
//
//go:noescape
func symv4AVX(a *float32, k int, v *float32, out *float32)

// symv4 computes out[g*k:] = A·v[g*k:] for g = 0..3, bit-identical to four
// symv calls.
func symv4(a []float32, k int, v, out []float32) {
	if !useAVX2 || k%8 != 0 || k == 0 {
		symv4Go(a, k, v, out)
		return
	}
	_, _, _ = a[k*k-1], v[4*k-1], out[4*k-1]
	symv4AVX(&a[0], k, &v[0], &out[0])
}

// accumRowsAVX is the assembly CG kernel (accum_amd64.s); see accumRowsGo
// for the maths.
//
//go:noescape
func accumRowsAVX(other *float32, k int, cols *int32, n int, cm1 *float32, bias *float32, v *float32, out *float32)

// accumRows is the CG inner loop: per nonzero a dot product and an axpy
// over a k-float row of the other side. The assembly kernel keeps eight
// independent FMA chains in flight (the archsimd version, limited to what
// the compiler kept in registers, ran four) and reduces four dot products
// with one horizontal-add tree; cols must index rows inside other (the
// CSR is validated before training).
func accumRows(other []float32, k int, cols []int32, cm1, bias, v, out []float32) {
	if !useAVX2 || k%8 != 0 || k == 0 {
		accumRowsGo(other, k, cols, cm1, bias, v, out)
		return
	}
	n := len(cols)
	if n == 0 {
		return
	}
	_, _, _ = cm1[n-1], v[k-1], out[k-1]
	var bp *float32
	if bias != nil {
		_ = bias[n-1]
		bp = &bias[0]
	}
	for _, c := range cols {
		if c < 0 || (int(c)+1)*k > len(other) {
			panic("als: accumRows column outside the factor matrix")
		}
	}
	accumRowsAVX(&other[0], k, &cols[0], n, &cm1[0], bp, &v[0], &out[0])
}

// gemm6x16AVX is the assembly micro-kernel (gemm_amd64.s): the Go compiler
// does not keep twelve loop-carried vector accumulators in registers (it
// shuffles and spills them every iteration), which halved the throughput
// of the same kernel written with archsimd.
//
//go:noescape
func gemm6x16AVX(x *float32, k int, y *float32, npanels int, out *float32, ldo int)

func gemm6x16(x []float32, k int, y []float32, npanels int, out []float32, ldo int) {
	gemmCheck(x, k, y, npanels, out, ldo)
	if npanels == 0 {
		return
	}
	if !useAVX2 {
		gemm6x16Go(x, k, y, npanels, out, ldo)
		return
	}
	gemm6x16AVX(&x[0], k, &y[0], npanels, &out[0], ldo)
}

// gramTileAVX is the Gram stripe kernel (gram_amd64.s).
//
//go:noescape
func gramTileAVX(x *float32, y *float32, n int, ld int, npanels int, out *float32, ldo int)

func gramTile(x, y []float32, n, ld, npanels int, out []float32, ldo int) {
	gramCheck(x, y, n, ld, npanels, out, ldo)
	if npanels == 0 {
		return
	}
	if !useAVX2 {
		gramTileGo(x, y, n, ld, npanels, out, ldo)
		return
	}
	gramTileAVX(&x[0], &y[0], n, ld, npanels, &out[0], ldo)
}
