//go:build !(goexperiment.simd && amd64)

package als

// blockedGram: without the assembly tile kernel the rank-1 Gram is faster.
const blockedGram = false

func dot(a, b []float32) float32           { return dotGo(a, b) }
func axpy(alpha float32, x, y []float32)   { axpyGo(alpha, x, y) }
func axpy64(alpha float64, x, y []float64) { axpy64Go(alpha, x, y) }
func div64(x []float64, d float64)         { div64Go(x, d) }
func rankUpdate64(a []float64, k int, wa, y []float64, n, t0 int) {
	rankUpdate64Go(a, k, wa, y, n, t0)
}
func symv(a []float32, k int, v, out []float32)  { symvGo(a, k, v, out) }
func symv4(a []float32, k int, v, out []float32) { symv4Go(a, k, v, out) }
func accumRows(other []float32, k int, cols []int32, cm1, bias, v, out []float32) {
	accumRowsGo(other, k, cols, cm1, bias, v, out)
}

func gemm6x16(x []float32, k int, y []float32, npanels int, out []float32, ldo int) {
	gemmCheck(x, k, y, npanels, out, ldo)
	gemm6x16Go(x, k, y, npanels, out, ldo)
}

func gramTile(x, y []float32, n, ld, npanels int, out []float32, ldo int) {
	gramCheck(x, y, n, ld, npanels, out, ldo)
	gramTileGo(x, y, n, ld, npanels, out, ldo)
}
