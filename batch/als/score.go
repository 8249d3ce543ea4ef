package als

import (
	"context"
	"sync/atomic"
)

// userBlock users share one pass over each item panel: with the block's user
// vectors hot in cache, every item row loaded is used userBlock times.
const userBlock = 8

// scoreAll ranks all items for users [0,users) and hands each user's heap to
// emit (called concurrently for different users, once per user).
func scoreAll(ctx context.Context, uf []float32, users int, s *ItemSide, n int, exclude *CSR, threads int, emit func(u int, t *topK)) error {
	k := s.Factors
	nt := resolveThreads(threads)
	heaps := make([][]*topK, nt)
	stamps := make([][]int32, nt)
	scores := make([][]float32, nt)
	for w := range heaps {
		heaps[w] = make([]*topK, userBlock)
		for b := range heaps[w] {
			heaps[w][b] = newTopK(min(n, s.Items))
		}
		stamps[w] = make([]int32, s.Items)
		for i := range stamps[w] {
			stamps[w][i] = -1
		}
		scores[w] = make([]float32, userBlock*itemPanel)
	}
	packed := packPanels(s.ItemFactors, s.Items, k)
	var cancelled atomic.Bool
	parallelChunks(users, userBlock, threads, func(w, lo, hi int) {
		if cancelled.Load() || ctx.Err() != nil {
			cancelled.Store(true)
			return
		}
		hs, stamp, sc := heaps[w], stamps[w], scores[w]
		nb := hi - lo
		for b := 0; b < nb; b++ {
			hs[b].reset()
			if exclude != nil && lo+b < exclude.Rows {
				cols, _ := exclude.Row(lo + b)
				for _, c := range cols {
					stamp[c] = int32(lo + b)
				}
			}
		}
		for i0 := 0; i0 < s.Items; i0 += itemPanel {
			i1 := min(i0+itemPanel, s.Items)
			scoreBlock(uf[lo*k:hi*k], nb, packed[i0*k:i0*k+k*itemPanel], i1-i0, k, sc)
			for b := 0; b < nb; b++ {
				h := hs[b]
				row := sc[b*itemPanel : b*itemPanel+i1-i0]
				u := int32(lo + b)
				for j, v := range row {
					if h.full() && v <= h.minScore() {
						continue
					}
					if stamp[i0+j] == u {
						continue
					}
					h.push(int32(i0+j), v)
				}
			}
		}
		for b := 0; b < nb; b++ {
			emit(lo+b, hs[b])
		}
	})
	if cancelled.Load() {
		return ctx.Err()
	}
	return nil
}
