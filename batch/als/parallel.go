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
