// Package parallel runs loops over rows on a number of workers, handing
// work out dynamically while keeping results independent of scheduling: the
// training and scoring loops of both model families use it.
package parallel

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Chunks runs fn over [0,n) in chunks of size chunk, handing chunks
// out dynamically so rows of very different lengths balance across workers.
// Determinism does not depend on which worker runs a chunk: callers only
// write per-row or per-chunk results, never shared accumulators.
func Chunks(n, chunk, threads int, fn func(worker, lo, hi int)) {
	if n <= 0 {
		return
	}
	chunks := (n + chunk - 1) / chunk
	threads = min(Threads(threads), chunks)
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

// BalancedBounds splits rows [0, len(indptr)-1) into contiguous ranges of
// about equal work, a row costing its nonzeros plus perRow, with range ends
// on multiples of align (but the last). Chunks' fixed row counts
// balance badly on heavy-tailed data: one 64-item chunk of the most popular
// songs can hold a large share of all nonzeros, and if it is handed out
// last the other worker idles. The bounds depend only on the matrix, so
// results stay independent of scheduling.
func BalancedBounds(indptr []int64, perRow int64, pieces, align int) []int {
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

// Ranges runs fn over the ranges [bounds[i], bounds[i+1]), handed
// out dynamically in order, as Chunks does.
func Ranges(bounds []int, threads int, fn func(worker, lo, hi int)) {
	n := len(bounds) - 1
	if n <= 0 {
		return
	}
	Chunks(n, 1, threads, func(w, lo, _ int) {
		fn(w, bounds[lo], bounds[lo+1])
	})
}

// Threads is the worker count n asks for: n, or GOMAXPROCS when n ≤ 0.
func Threads(n int) int {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	return max(n, 1)
}
