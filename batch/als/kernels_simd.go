//go:build goexperiment.simd && amd64

package als

import (
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

// scoreBlock writes out[b*itemPanel+j] = x_b·y_j for nb users against a
// packed panel yt (k × itemPanel, item-contiguous). Four users × sixteen
// items are accumulated in eight registers so each loaded item vector feeds
// four FMAs.
func scoreBlock(x []float32, nb int, yt []float32, ni, k int, out []float32) {
	if !useAVX2 {
		scoreBlockGo(x, nb, yt, ni, k, out)
		return
	}
	b := 0
	for ; b+4 <= nb; b += 4 {
		x0 := x[b*k : (b+1)*k]
		x1 := x[(b+1)*k : (b+2)*k]
		x2 := x[(b+2)*k : (b+3)*k]
		x3 := x[(b+3)*k : (b+4)*k]
		o0 := out[b*itemPanel : (b+1)*itemPanel]
		o1 := out[(b+1)*itemPanel : (b+2)*itemPanel]
		o2 := out[(b+2)*itemPanel : (b+3)*itemPanel]
		o3 := out[(b+3)*itemPanel : (b+4)*itemPanel]
		for j := 0; j < ni; j += 16 {
			var a0, a1, a2, a3, c0, c1, c2, c3 archsimd.Float32x8
			for kk := 0; kk < k; kk++ {
				row := yt[kk*itemPanel+j : kk*itemPanel+j+16]
				y0 := archsimd.LoadFloat32x8((*[8]float32)(row[0:8]))
				y1 := archsimd.LoadFloat32x8((*[8]float32)(row[8:16]))
				v := archsimd.BroadcastFloat32x8(x0[kk])
				a0 = y0.MulAdd(v, a0)
				c0 = y1.MulAdd(v, c0)
				v = archsimd.BroadcastFloat32x8(x1[kk])
				a1 = y0.MulAdd(v, a1)
				c1 = y1.MulAdd(v, c1)
				v = archsimd.BroadcastFloat32x8(x2[kk])
				a2 = y0.MulAdd(v, a2)
				c2 = y1.MulAdd(v, c2)
				v = archsimd.BroadcastFloat32x8(x3[kk])
				a3 = y0.MulAdd(v, a3)
				c3 = y1.MulAdd(v, c3)
			}
			a0.Store((*[8]float32)(o0[j : j+8]))
			c0.Store((*[8]float32)(o0[j+8 : j+16]))
			a1.Store((*[8]float32)(o1[j : j+8]))
			c1.Store((*[8]float32)(o1[j+8 : j+16]))
			a2.Store((*[8]float32)(o2[j : j+8]))
			c2.Store((*[8]float32)(o2[j+8 : j+16]))
			a3.Store((*[8]float32)(o3[j : j+8]))
			c3.Store((*[8]float32)(o3[j+8 : j+16]))
		}
	}
	for ; b < nb; b++ {
		xb := x[b*k : (b+1)*k]
		ob := out[b*itemPanel : (b+1)*itemPanel]
		for j := 0; j < ni; j += 16 {
			var a0, c0 archsimd.Float32x8
			for kk := 0; kk < k; kk++ {
				row := yt[kk*itemPanel+j : kk*itemPanel+j+16]
				v := archsimd.BroadcastFloat32x8(xb[kk])
				a0 = archsimd.LoadFloat32x8((*[8]float32)(row[0:8])).MulAdd(v, a0)
				c0 = archsimd.LoadFloat32x8((*[8]float32)(row[8:16])).MulAdd(v, c0)
			}
			a0.Store((*[8]float32)(ob[j : j+8]))
			c0.Store((*[8]float32)(ob[j+8 : j+16]))
		}
	}
	archsimd.ClearAVXUpperBits()
}
