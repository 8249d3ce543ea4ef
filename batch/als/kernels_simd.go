//go:build goexperiment.simd && amd64

package als

import (
	"math/bits"
	"simd/archsimd"
	"unsafe"
)

// AVX2+FMA kernels. Selected at run time: a CPU without them falls back to
// the portable kernels, so a GOEXPERIMENT=simd binary still runs anywhere.

const simdEnabled = true

var useAVX2 = archsimd.X86.AVX2() && archsimd.X86.FMA()

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

// blocks8 views s (len a multiple of 8) as 8-float blocks. Indexing blocks
// with a range loop lets the compiler drop the per-vector bounds checks and
// register spills that slicing float32s for every load costs (measured: 2×
// on the CG kernel).
func blocks8(s []float32) [][8]float32 {
	if len(s) < 8 {
		return nil
	}
	return unsafe.Slice((*[8]float32)(unsafe.Pointer(unsafe.SliceData(s))), len(s)/8)
}

// symv uses A's symmetry to compute A·v as Σ_r v_r·A[r,:], a broadcast-FMA
// over rows that needs no horizontal sums.
func symv(a []float32, k int, v, out []float32) {
	if !useAVX2 || k%8 != 0 {
		symvGo(a, k, v, out)
		return
	}
	v = v[:k]
	kb := k / 8
	a8 := blocks8(a[:k*k])
	o8 := blocks8(out[:k])
	c := 0
	for ; c+4 <= kb; c += 4 {
		var s0, s1, s2, s3 archsimd.Float32x8
		for r, vr := range v {
			row := a8[r*kb+c : r*kb+c+4 : r*kb+c+4]
			b := archsimd.BroadcastFloat32x8(vr)
			s0 = archsimd.LoadFloat32x8(&row[0]).MulAdd(b, s0)
			s1 = archsimd.LoadFloat32x8(&row[1]).MulAdd(b, s1)
			s2 = archsimd.LoadFloat32x8(&row[2]).MulAdd(b, s2)
			s3 = archsimd.LoadFloat32x8(&row[3]).MulAdd(b, s3)
		}
		s0.Store(&o8[c])
		s1.Store(&o8[c+1])
		s2.Store(&o8[c+2])
		s3.Store(&o8[c+3])
	}
	for ; c < kb; c++ {
		var s0 archsimd.Float32x8
		for r, vr := range v {
			s0 = archsimd.LoadFloat32x8(&a8[r*kb+c]).MulAdd(archsimd.BroadcastFloat32x8(vr), s0)
		}
		s0.Store(&o8[c])
	}
	archsimd.ClearAVXUpperBits()
}

// accumRows keeps the whole per-entry computation (dot, confidence scaling,
// axpy) in vector registers; see accumRowsGo for the maths. Entries are
// taken four at a time so four independent dot-product chains hide FMA
// latency and out is loaded and stored once per group.
func accumRows(other []float32, k int, cols []int32, cm1, bias, v, out []float32) {
	if !useAVX2 || k%8 != 0 {
		accumRowsGo(other, k, cols, cm1, bias, v, out)
		return
	}
	v8 := blocks8(v[:k])
	o8 := blocks8(out[:k])[:len(v8)]
	cm1 = cm1[:len(cols)]
	if bias != nil {
		bias = bias[:len(cols)]
	}
	row := func(c int32) [][8]float32 {
		off := int(c) * k
		return blocks8(other[off : off+k])[:len(v8)]
	}
	j := 0
	for ; j+4 <= len(cols); j += 4 {
		ya, yb, yc, yd := row(cols[j]), row(cols[j+1]), row(cols[j+2]), row(cols[j+3])
		var sa, sb, sc, sd archsimd.Float32x8
		for i := range v8 {
			vi := archsimd.LoadFloat32x8(&v8[i])
			sa = archsimd.LoadFloat32x8(&ya[i]).MulAdd(vi, sa)
			sb = archsimd.LoadFloat32x8(&yb[i]).MulAdd(vi, sb)
			sc = archsimd.LoadFloat32x8(&yc[i]).MulAdd(vi, sc)
			sd = archsimd.LoadFloat32x8(&yd[i]).MulAdd(vi, sd)
		}
		c := cm1[j : j+4 : j+4]
		ta := archsimd.BroadcastFloat32x8(c[0]).Mul(hsumAll(sa))
		tb := archsimd.BroadcastFloat32x8(c[1]).Mul(hsumAll(sb))
		tc := archsimd.BroadcastFloat32x8(c[2]).Mul(hsumAll(sc))
		td := archsimd.BroadcastFloat32x8(c[3]).Mul(hsumAll(sd))
		if bias != nil {
			bs := bias[j : j+4 : j+4]
			ta = archsimd.BroadcastFloat32x8(bs[0]).Sub(ta)
			tb = archsimd.BroadcastFloat32x8(bs[1]).Sub(tb)
			tc = archsimd.BroadcastFloat32x8(bs[2]).Sub(tc)
			td = archsimd.BroadcastFloat32x8(bs[3]).Sub(td)
		}
		for i := range o8 {
			o := archsimd.LoadFloat32x8(&ya[i]).MulAdd(ta, archsimd.LoadFloat32x8(&o8[i]))
			o = archsimd.LoadFloat32x8(&yb[i]).MulAdd(tb, o)
			o = archsimd.LoadFloat32x8(&yc[i]).MulAdd(tc, o)
			archsimd.LoadFloat32x8(&yd[i]).MulAdd(td, o).Store(&o8[i])
		}
	}
	for ; j < len(cols); j++ {
		y := row(cols[j])
		var s0 archsimd.Float32x8
		for i := range v8 {
			s0 = archsimd.LoadFloat32x8(&y[i]).MulAdd(archsimd.LoadFloat32x8(&v8[i]), s0)
		}
		t := archsimd.BroadcastFloat32x8(cm1[j]).Mul(hsumAll(s0))
		if bias != nil {
			t = archsimd.BroadcastFloat32x8(bias[j]).Sub(t)
		}
		for i := range o8 {
			archsimd.LoadFloat32x8(&y[i]).MulAdd(t, archsimd.LoadFloat32x8(&o8[i])).Store(&o8[i])
		}
	}
	archsimd.ClearAVXUpperBits()
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

// pushRow offers row[j] as item base+j to t (see pushRowGo). Once t is full,
// eight scores at a time are compared with its current worst: most vectors
// have no candidate and cost one compare and a mask test. The vector pass
// over up to 256 scores only records candidate masks; the scalar work on the
// few candidates runs after VZEROUPPER, because Go's scalar float code is
// legacy SSE and mixing it with dirty AVX upper halves stalls (measured: a
// third of the top-K time went to those transitions).
func pushRow(row []float32, base int32, t *topK, ex []int32, cur *int) {
	if !useAVX2 {
		pushRowGo(row, base, t, ex, cur)
		return
	}
	j := 0
	for ; j < len(row) && !t.full(); j++ {
		t.offer(base+int32(j), row[j], ex, cur)
	}
	var masks [32]uint8
	for j < len(row) {
		end := min(len(row), j+8*len(masks))
		worst := t.minScore()
		thr := archsimd.BroadcastFloat32x8(worst)
		var seen uint8
		g, jj := 0, j
		for ; jj+8 <= end; jj += 8 {
			m := load8(row[jj:]).Greater(thr).ToBits()
			masks[g] = m
			seen |= m
			g++
		}
		archsimd.ClearAVXUpperBits()
		if seen != 0 {
			for gi, m := range masks[:g] {
				for ; m != 0; m &= m - 1 {
					b := j + gi*8 + bits.TrailingZeros8(m)
					if row[b] > worst {
						t.offer(base+int32(b), row[b], ex, cur)
						worst = t.minScore()
					}
				}
			}
		}
		for ; jj < end; jj++ {
			if row[jj] > worst {
				t.offer(base+int32(jj), row[jj], ex, cur)
				worst = t.minScore()
			}
		}
		j = end
	}
}
