package als

// Portable kernels. They are written with four independent accumulators and
// re-sliced operands so the compiler drops bounds checks and the CPU can
// overlap the floating-point adds; kernels_simd.go replaces the hot ones with
// AVX2/FMA when built with GOEXPERIMENT=simd.

func dotGo(a, b []float32) float32 {
	n := len(a)
	b = b[:n]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= n; i += 4 {
		aa := a[i : i+4 : i+4]
		bb := b[i : i+4 : i+4]
		s0 += aa[0] * bb[0]
		s1 += aa[1] * bb[1]
		s2 += aa[2] * bb[2]
		s3 += aa[3] * bb[3]
	}
	for ; i < n; i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// axpyGo computes y += alpha·x.
func axpyGo(alpha float32, x, y []float32) {
	n := len(x)
	y = y[:n]
	i := 0
	for ; i+4 <= n; i += 4 {
		xx := x[i : i+4 : i+4]
		yy := y[i : i+4 : i+4]
		yy[0] += alpha * xx[0]
		yy[1] += alpha * xx[1]
		yy[2] += alpha * xx[2]
		yy[3] += alpha * xx[3]
	}
	for ; i < n; i++ {
		y[i] += alpha * x[i]
	}
}

// axpy64Go is y += alpha·x in float64, a multiply then an add per element
// (never fused), so axpy64's vector form gives the same bits.
func axpy64Go(alpha float64, x, y []float64) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += alpha * v
	}
}

// div64Go is x /= d elementwise (IEEE division: the vector path, div64,
// gives the same bits).
func div64Go(x []float64, d float64) {
	for i := range x {
		x[i] /= d
	}
}

// rankUpdate64Go adds Σ_j wa_j[t]·y_j[u] to a[t·k+u] for every
// t0 ≤ t ≤ u < k (the upper triangle of A += Σ_j wa_j y_jᵀ from row t0),
// where wa_j and y_j are wa[j·k:] and y[j·k:] (rows k apart, as in A): each
// entry receives its terms in the order j = 0, 1, …, each a multiply then
// an add (never fused), so the vector path (rankUpdate64) gives the same
// bits.
func rankUpdate64Go(a []float64, k int, wa, y []float64, n, t0 int) {
	rankUpdateRows64Go(a, k, wa, y, n, t0, k, 0)
}

// rankUpdateRows64Go is rankUpdate64Go for rows [t0, t1) and, of each
// row t, the columns from max(t, u0) on.
func rankUpdateRows64Go(a []float64, k int, wa, y []float64, n, t0, t1, u0 int) {
	if u0 >= k {
		return
	}
	for t := t0; t < t1; t++ {
		u := max(t, u0)
		row := a[t*k+u : t*k+k]
		for j := 0; j < n; j++ {
			w := wa[j*k+t]
			yj := y[j*k+u : j*k+k]
			for i, v := range yj {
				row[i] += float64(w * v)
			}
		}
	}
}

// accumRowsGo adds Σ_j t_j·y_j to out over the rows y_j = other[c_j·k:] of
// the given columns, with t_j = bias_j − cm1_j·(y_j·v) when bias is non-nil
// (the CG residual) and t_j = cm1_j·(y_j·v) otherwise (the CG product).
func accumRowsGo(other []float32, k int, cols []int32, cm1, bias, v, out []float32) {
	v = v[:k]
	out = out[:k]
	cm1 = cm1[:len(cols)]
	if bias != nil {
		bias = bias[:len(cols)]
	}
	for j, c := range cols {
		off := int(c) * k
		y := other[off : off+k : off+k]
		d := dotGo(y, v)
		var t float32
		if bias != nil {
			t = bias[j] - cm1[j]*d
		} else {
			t = cm1[j] * d
		}
		axpyGo(t, y, out)
	}
}

// symvGo computes out = A·v for a row-major k×k matrix A.
func symvGo(a []float32, k int, v, out []float32) {
	v = v[:k]
	out = out[:k]
	for i := range out {
		out[i] = dotGo(a[i*k:(i+1)*k], v)
	}
}

// symv4Go is symv on four vectors stored one after another (k floats each).
func symv4Go(a []float32, k int, v, out []float32) {
	for g := 0; g < 4; g++ {
		symv(a, k, v[g*k:(g+1)*k], out[g*k:(g+1)*k])
	}
}

// The scoring micro-kernel computes a gemmRows × gemmCols tile of user·item
// scores: 6 users × 16 items is 12 AVX2 accumulators, enough independent FMA
// chains to hide FMA latency, with registers left for 2 item vectors and a
// broadcast user factor.
const gemmRows, gemmCols = 6, 16

// packPanels lays item factors out as ceil(items/gemmCols) panels of
// k × gemmCols floats (factor-major, zero-padded past the last item), so the
// micro-kernel reads each panel sequentially, one 16-item row per factor.
// Panel p starts at p·k·gemmCols, i.e. item i0 (a multiple of gemmCols) at
// i0·k.
func packPanels(f []float32, items, k int) []float32 {
	panels := (items + gemmCols - 1) / gemmCols
	out := make([]float32, panels*k*gemmCols)
	for i := 0; i < items; i++ {
		p, j := i/gemmCols, i%gemmCols
		base := p * k * gemmCols
		for kk, v := range f[i*k : (i+1)*k] {
			out[base+kk*gemmCols+j] = v
		}
	}
	return out
}

// gemm6x16Go writes out[r*ldo+p*gemmCols+j] = x_r·y_{p,j} for the gemmRows
// rows of x (stride k) against npanels packed panels. Accumulation runs over
// factors in increasing order, like the AVX2 kernel.
func gemm6x16Go(x []float32, k int, y []float32, npanels int, out []float32, ldo int) {
	for r := 0; r < gemmRows; r++ {
		xr := x[r*k : (r+1)*k]
		for p := 0; p < npanels; p++ {
			pan := y[p*k*gemmCols : (p+1)*k*gemmCols]
			o := out[r*ldo+p*gemmCols : r*ldo+(p+1)*gemmCols]
			// Eight named accumulators per half panel stay in registers.
			for h := 0; h < gemmCols; h += 8 {
				var a0, a1, a2, a3, a4, a5, a6, a7 float32
				for kk, v := range xr {
					q := (*[8]float32)(pan[kk*gemmCols+h : kk*gemmCols+h+8])
					a0 += v * q[0]
					a1 += v * q[1]
					a2 += v * q[2]
					a3 += v * q[3]
					a4 += v * q[4]
					a5 += v * q[5]
					a6 += v * q[6]
					a7 += v * q[7]
				}
				o[h], o[h+1], o[h+2], o[h+3], o[h+4], o[h+5], o[h+6], o[h+7] = a0, a1, a2, a3, a4, a5, a6, a7
			}
		}
	}
}

// gramTileGo is gramTileAVX's portable twin: out[r*ldo+p*gemmCols+j] =
// Σ_t x[t*ld+r]·y[t*ld+p*gemmCols+j] for one gemmRows-row stripe.
func gramTileGo(x, y []float32, n, ld, npanels int, out []float32, ldo int) {
	var acc [gemmRows][gemmCols]float32
	for p := 0; p < npanels; p++ {
		acc = [gemmRows][gemmCols]float32{}
		for t := 0; t < n; t++ {
			xr := x[t*ld : t*ld+gemmRows]
			yr := y[t*ld+p*gemmCols : t*ld+(p+1)*gemmCols]
			for r, xv := range xr {
				for j, yv := range yr {
					acc[r][j] += xv * yv
				}
			}
		}
		for r := range acc {
			copy(out[r*ldo+p*gemmCols:r*ldo+(p+1)*gemmCols], acc[r][:])
		}
	}
}

// gramCheck panics unless gramTile's operands are large enough.
func gramCheck(x, y []float32, n, ld, npanels int, out []float32, ldo int) {
	if n < 1 || ld < npanels*gemmCols || ld < gemmRows || len(x) < (n-1)*ld+gemmRows || len(y) < (n-1)*ld+npanels*gemmCols ||
		ldo < npanels*gemmCols || (npanels > 0 && len(out) < (gemmRows-1)*ldo+npanels*gemmCols) {
		panic("als: gram operands too small")
	}
}

// gemmCheck panics unless the kernel's operands are large enough: the AVX2
// kernel reads and writes through raw pointers.
func gemmCheck(x []float32, k int, y []float32, npanels int, out []float32, ldo int) {
	if k < 1 || len(x) < gemmRows*k || len(y) < npanels*k*gemmCols || ldo < npanels*gemmCols ||
		(npanels > 0 && len(out) < (gemmRows-1)*ldo+npanels*gemmCols) {
		panic("als: gemm operands too small")
	}
}
