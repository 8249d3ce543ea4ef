//go:build goexperiment.simd && amd64

package feedback

import (
	"math/bits"
	"simd/archsimd"
)

// useAVX2 selects the vector threshold filter at run time: a CPU without
// AVX2 and FMA falls back to the portable one, so a GOEXPERIMENT=simd
// binary still runs anywhere.
var useAVX2 = archsimd.X86.AVX2() && archsimd.X86.FMA()

func load8(s []float32) archsimd.Float32x8 { return archsimd.LoadFloat32x8((*[8]float32)(s[:8])) }

// PushRow offers row[j] as item base+j to t (see pushRowGo). Once t is full,
// eight scores at a time are compared with its current worst: most vectors
// have no candidate and cost one compare and a mask test. The vector pass
// over up to 256 scores only records candidate masks; the scalar work on the
// few candidates runs after VZEROUPPER, because Go's scalar float code is
// legacy SSE and mixing it with dirty AVX upper halves stalls (measured: a
// third of the top-K time went to those transitions).
func PushRow(row []float32, base int32, t *TopK, ex []int32, cur *int) {
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
