package als

import (
	"context"
	"sync/atomic"
)

// userBlock users share one pass over each item panel: with the block's user
// vectors hot in cache, every item row loaded is used userBlock times.
const userBlock = 8 // at most 8: exclusion masks are one byte per item

// scoreAll ranks all items for users [0,users) and hands each user's heap to
// emit (called concurrently for different users, once per user).
func scoreAll(ctx context.Context, uf []float32, users int, s *ItemSide, n int, exclude *CSR, threads int, emit func(u int, t *topK)) error {
	k := s.Factors
	nt := resolveThreads(threads)
	heaps := make([][]*topK, nt)
	// masks[w][item] has bit b set when the user in block slot b excludes
	// item; userBlock ≤ 8 keeps it one byte per item.
	masks := make([][]uint8, nt)
	scores := make([][]float32, nt)
	for w := range heaps {
		heaps[w] = make([]*topK, userBlock)
		for b := range heaps[w] {
			heaps[w][b] = newTopK(min(n, s.Items))
		}
		masks[w] = make([]uint8, s.Items)
		scores[w] = make([]float32, userBlock*itemPanel)
	}
	packed := packPanels(s.ItemFactors, s.Items, k)
	var cancelled atomic.Bool
	parallelChunks(users, userBlock, threads, func(w, lo, hi int) {
		if cancelled.Load() || ctx.Err() != nil {
			cancelled.Store(true)
			return
		}
		hs, mask, sc := heaps[w], masks[w], scores[w]
		nb := hi - lo
		for b := 0; b < nb; b++ {
			hs[b].reset()
			if exclude != nil && lo+b < exclude.Rows {
				cols, _ := exclude.Row(lo + b)
				for _, c := range cols {
					mask[c] |= 1 << b
				}
			}
		}
		for i0 := 0; i0 < s.Items; i0 += itemPanel {
			i1 := min(i0+itemPanel, s.Items)
			scoreBlock(uf[lo*k:hi*k], nb, packed[i0*k:i0*k+k*itemPanel], i1-i0, k, sc)
			for b := 0; b < nb; b++ {
				h := hs[b]
				row := sc[b*itemPanel : b*itemPanel+i1-i0]
				bit := uint8(1) << b
				for j, v := range row {
					if h.full() && v <= h.minScore() {
						continue
					}
					if mask[i0+j]&bit != 0 {
						continue
					}
					h.push(int32(i0+j), v)
				}
			}
		}
		for b := 0; b < nb; b++ {
			emit(lo+b, hs[b])
			if exclude != nil && lo+b < exclude.Rows {
				cols, _ := exclude.Row(lo + b)
				for _, c := range cols {
					mask[c] = 0
				}
			}
		}
	})
	if cancelled.Load() {
		return ctx.Err()
	}
	return nil
}
