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

// itemPanel items are scored per block; 256 rows of 64 float32 factors
// (64 KiB) stay in L2 while a user block sweeps them.
const itemPanel = 256

// scoreBlockGo writes out[b*itemPanel+j] = x_b·y_j for nb users against a
// packed panel yt (k × itemPanel, item-contiguous, zero-padded), so the
// inner loop is a unit-stride axpy over items.
func scoreBlockGo(x []float32, nb int, yt []float32, ni, k int, out []float32) {
	for b := 0; b < nb; b++ {
		xb := x[b*k : (b+1)*k]
		row := out[b*itemPanel : b*itemPanel+ni]
		clear(row)
		for kk, v := range xb {
			axpyGo(v, yt[kk*itemPanel:kk*itemPanel+ni], row)
		}
	}
}

// packPanels lays item factors out as ceil(items/itemPanel) panels of
// k × itemPanel floats (zero-padded) so scoring streams items contiguously
// for each factor and broadcasts the user's factor.
func packPanels(f []float32, items, k int) []float32 {
	panels := (items + itemPanel - 1) / itemPanel
	out := make([]float32, panels*k*itemPanel)
	for i := 0; i < items; i++ {
		p, j := i/itemPanel, i%itemPanel
		base := p * k * itemPanel
		for kk, v := range f[i*k : (i+1)*k] {
			out[base+kk*itemPanel+j] = v
		}
	}
	return out
}
