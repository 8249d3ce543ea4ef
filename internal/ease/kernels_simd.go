//go:build goexperiment.simd && amd64

package ease

import (
	"simd/archsimd"
	"unsafe"
)

var useAVX2 = archsimd.X86.AVX2() && archsimd.X86.FMA()

// tile4x8 subtracts X·Yᵀ from the 4×8 tile of a at off (row stride n): x
// holds the tile's 4 rows of X (kb each), yp the 8 columns' packed panel
// (kb × 8, t-major). Eight accumulators of four float64 stay in registers
// across the kb-long inner product.
func tile4x8(x, yp []float64, kb int, a []float64, off, n int) {
	if !useAVX2 {
		tile4x8Go(x, yp, kb, a, off, n)
		return
	}
	_ = a[off+3*n+tileCols-1]
	ys := unsafe.Slice((*[tileCols]float64)(unsafe.Pointer(unsafe.SliceData(yp))), kb)
	x0, x1, x2, x3 := x[:kb], x[kb:2*kb], x[2*kb:3*kb], x[3*kb:4*kb]
	var a00, a01, a10, a11, a20, a21, a30, a31 archsimd.Float64x4
	// Index, not `for t, y := range ys`: ranging over array values copies
	// each 64-byte y through the stack with legacy SSE moves, and mixing
	// those with dirty AVX state stalled the loop 40× on a Sapphire Rapids
	// VM (BenchmarkTile: 0.4 against 17 GFlop/s).
	for t := range ys {
		y := &ys[t]
		y0 := archsimd.LoadFloat64x4((*[4]float64)(y[0:4]))
		y1 := archsimd.LoadFloat64x4((*[4]float64)(y[4:8]))
		b := archsimd.BroadcastFloat64x4(x0[t])
		a00 = b.MulAdd(y0, a00)
		a01 = b.MulAdd(y1, a01)
		b = archsimd.BroadcastFloat64x4(x1[t])
		a10 = b.MulAdd(y0, a10)
		a11 = b.MulAdd(y1, a11)
		b = archsimd.BroadcastFloat64x4(x2[t])
		a20 = b.MulAdd(y0, a20)
		a21 = b.MulAdd(y1, a21)
		b = archsimd.BroadcastFloat64x4(x3[t])
		a30 = b.MulAdd(y0, a30)
		a31 = b.MulAdd(y1, a31)
	}
	sub := func(o int, lo, hi archsimd.Float64x4) {
		p0 := (*[4]float64)(a[o : o+4])
		p1 := (*[4]float64)(a[o+4 : o+8])
		archsimd.LoadFloat64x4(p0).Sub(lo).Store(p0)
		archsimd.LoadFloat64x4(p1).Sub(hi).Store(p1)
	}
	sub(off, a00, a01)
	sub(off+n, a10, a11)
	sub(off+2*n, a20, a21)
	sub(off+3*n, a30, a31)
	archsimd.ClearAVXUpperBits()
}
