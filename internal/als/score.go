package als

import (
	"context"
	"sync/atomic"

	"github.com/setlist/setlist/internal/feedback"
	"github.com/setlist/setlist/internal/parallel"
)

const (
	// userBlock users are scored together: their factors (userBlock·k
	// floats) stay in L1 while an item chunk's panels stream past them.
	userBlock = 8 * gemmRows
	// itemChunk items are scored per pass: their packed panels (itemChunk·k
	// floats, 64 KiB at k = 64) stay in L2 while every user group of the
	// block reads them, and the block's scores (userBlock × itemChunk) fit
	// in L1/L2 until the top-k filter reads them back.
	itemChunk = 16 * gemmCols
)

// scoreState is one worker's memory, reused across user blocks.
type scoreState struct {
	heaps []*feedback.TopK
	ex    [][]int32 // each block user's sorted exclude row
	cur   []int     // cursor into ex (items arrive in increasing order)
	xbuf  []float32 // userBlock rows of user factors, zero-padded
	sc    []float32 // userBlock × itemChunk scores
}

// scoreAll ranks all items for users [0,users), or only for the users listed
// in only when it is not nil, and hands each user's heap to emit (called
// concurrently for different users, once per user). Scores are
// computed densely (a users × items GEMM by the gemm6x16 micro-kernel over
// packed item panels), then each user's row of a chunk goes through the
// threshold filter of feedback.PushRow; excluded items are dropped only for the few
// candidates that pass it. Each user's result is exact and deterministic:
// the same as scoring items one by one with ties to the lower index.
func scoreAll(ctx context.Context, uf []float32, users int, only []int32, s *ItemSide, n int, exclude *feedback.CSR, except []int32, threads int, emit func(u int, t *feedback.TopK)) error {
	k := s.Factors
	user := func(i int) int { return i }
	if only != nil {
		users = len(only)
		user = func(i int) int { return int(only[i]) }
	}
	if users <= 0 {
		return nil
	}
	nt := parallel.Threads(threads)
	states := make([]*scoreState, nt)
	for w := range states {
		st := &scoreState{
			heaps: make([]*feedback.TopK, userBlock),
			ex:    make([][]int32, userBlock),
			cur:   make([]int, userBlock),
			xbuf:  make([]float32, userBlock*k),
			sc:    make([]float32, userBlock*itemChunk),
		}
		for b := range st.heaps {
			st.heaps[b] = feedback.NewTopK(min(n, s.Items))
		}
		states[w] = st
	}
	packed := packPanels(s.ItemFactors, s.Items, k)
	var cancelled atomic.Bool
	parallel.Chunks(users, userBlock, threads, func(w, lo, hi int) {
		if cancelled.Load() || ctx.Err() != nil {
			cancelled.Store(true)
			return
		}
		st := states[w]
		nb := hi - lo
		clear(st.xbuf[nb*k:])
		for b := 0; b < nb; b++ {
			u := user(lo + b)
			copy(st.xbuf[b*k:(b+1)*k], uf[u*k:(u+1)*k])
			st.heaps[b].Reset()
			st.ex[b], st.cur[b] = nil, 0
			if exclude != nil && u < exclude.Rows {
				st.ex[b], _ = exclude.Row(u)
			}
		}
		groups := (nb + gemmRows - 1) / gemmRows
		for i0 := 0; i0 < s.Items; i0 += itemChunk {
			ni := min(itemChunk, s.Items-i0)
			np := (ni + gemmCols - 1) / gemmCols
			panels := packed[i0*k : (i0+np*gemmCols)*k]
			for g := 0; g < groups; g++ {
				gemm6x16(st.xbuf[g*gemmRows*k:], k, panels, np, st.sc[g*gemmRows*itemChunk:], itemChunk)
			}
			for b := 0; b < nb; b++ {
				row := st.sc[b*itemChunk : b*itemChunk+ni]
				feedback.Mask(row, int32(i0), except)
				feedback.PushRow(row, int32(i0), st.heaps[b], st.ex[b], &st.cur[b])
			}
		}
		for b := 0; b < nb; b++ {
			emit(user(lo+b), st.heaps[b])
		}
	})
	if cancelled.Load() {
		return ctx.Err()
	}
	return nil
}
