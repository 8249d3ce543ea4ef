//go:build !(goexperiment.simd && amd64)

package ease

func tile4x8(x, yp []float64, kb int, a []float64, off, n int) { tile4x8Go(x, yp, kb, a, off, n) }
