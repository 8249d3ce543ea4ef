//go:build !(goexperiment.simd && amd64)

package feedback

// PushRow offers row[j] as item base+j to t (see pushRowGo).
func PushRow(row []float32, base int32, t *TopK, ex []int32, cur *int) {
	pushRowGo(row, base, t, ex, cur)
}
