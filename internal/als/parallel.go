package als

import (
	"sync"
	"sync/atomic"
)

// parallelChunks runs fn over [0,n) in chunks of size chunk, handing chunks
// out dynamically so rows of very different lengths balance across workers.
// Determinism does not depend on which worker runs a chunk: callers only
// write per-row or per-chunk results, never shared accumulators.
func parallelChunks(n, chunk, threads int, fn func(worker, lo, hi int)) {
	if n <= 0 {
		return
	}
	chunks := (n + chunk - 1) / chunk
	threads = min(resolveThreads(threads), chunks)
	if threads == 1 {
		for c := 0; c < chunks; c++ {
			fn(0, c*chunk, min(n, (c+1)*chunk))
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < threads; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for {
				c := int(next.Add(1) - 1)
				if c >= chunks {
					return
				}
				fn(w, c*chunk, min(n, (c+1)*chunk))
			}
		}(w)
	}
	wg.Wait()
}

// balancedBounds splits rows [0, len(indptr)-1) into contiguous ranges of
// about equal work, a row costing its nonzeros plus perRow, with range ends
// on multiples of align (but the last). parallelChunks' fixed row counts
// balance badly on heavy-tailed data: one 64-item chunk of the most popular
// songs can hold a large share of all nonzeros, and if it is handed out
// last the other worker idles. The bounds depend only on the matrix, so
// results stay independent of scheduling.
func balancedBounds(indptr []int64, perRow int64, pieces, align int) []int {
	rows := len(indptr) - 1
	total := indptr[rows] + perRow*int64(rows)
	target := max(total/int64(max(pieces, 1)), 1)
	bounds := []int{0}
	var acc int64
	for r := 0; r < rows; r++ {
		acc += indptr[r+1] - indptr[r] + perRow
		if acc >= target && (r+1)%align == 0 && r+1 < rows {
			bounds = append(bounds, r+1)
			acc = 0
		}
	}
	return append(bounds, rows)
}

// parallelRanges runs fn over the ranges [bounds[i], bounds[i+1]), handed
// out dynamically in order, as parallelChunks does.
func parallelRanges(bounds []int, threads int, fn func(worker, lo, hi int)) {
	n := len(bounds) - 1
	if n <= 0 {
		return
	}
	parallelChunks(n, 1, threads, func(w, lo, _ int) {
		fn(w, bounds[lo], bounds[lo+1])
	})
}
