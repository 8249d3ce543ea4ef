//go:build !(goexperiment.simd && amd64)

package als

const simdEnabled = false

func dot(a, b []float32) float32                { return dotGo(a, b) }
func axpy(alpha float32, x, y []float32)        { axpyGo(alpha, x, y) }
func symv(a []float32, k int, v, out []float32) { symvGo(a, k, v, out) }
func accumRows(other []float32, k int, cols []int32, cm1, bias, v, out []float32) {
	accumRowsGo(other, k, cols, cm1, bias, v, out)
}

func scoreBlock(x []float32, nb int, y []float32, ni, k int, out []float32) {
	scoreBlockGo(x, nb, y, ni, k, out)
}
