package als

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
)

// This file exposes the pieces another model family (internal/ease) shares
// with ALS, so that family has no second weighting, top-N or evaluation:
// the confidence formula, the threshold-filtered top-K over a dense score
// row, and the holdout metrics.

// ItemWeightsFor is the per-item data Weights needs for p's weighting (idf
// and the mean row length for bm25; nil otherwise), computed on m as
// training computes it.
func ItemWeightsFor(m *CSR, p Params) []float32 { return itemWeightsFor(m, p) }

// Weights writes f(|w|) for each entry of one row into out (len(vals)):
// the weighting of p (raw, log or bm25, exactly as ALS's confidence uses
// it, without α) for positive entries and 0 for dislikes, which carry no
// preference. cols must be the row's item indexes (bm25 reads their idf).
func Weights(p Params, itemWeights []float32, cols []int32, vals []float32, out []float32) {
	q := p
	q.Alpha = 1
	cp := make([]float32, len(vals))
	weighRow(q, itemWeights, cols, vals, out[:len(vals)], cp)
	for j, v := range vals {
		if !(v > 0) {
			out[j] = 0
		}
	}
}

// Axpy is y += alpha·x with the package's vector kernel.
func Axpy(alpha float32, x, y []float32) { axpy(alpha, x[:len(y)], y) }

// TopNRow returns up to n items of a dense score row (item i scores
// scores[i]) by descending score, ties to the lower index, never an item of
// exclude (any order, duplicates and out-of-range items allowed).
func TopNRow(scores []float32, n int, exclude []int32) []Scored {
	if n <= 0 {
		return nil
	}
	ex := slices.Clone(exclude)
	slices.Sort(ex)
	t := newTopK(min(n, len(scores)))
	cur := 0
	pushRow(scores, 0, t, ex, &cur)
	return t.sorted()
}

// ScoreFill writes user u's dense score row (one score per item) into dst;
// worker identifies the calling goroutine (0 ≤ worker < threads) so fill
// can keep per-worker scratch.
type ScoreFill func(worker, u int, dst []float32)

// TopNDense ranks the dense score rows fill produces for users [0,users)
// (or only those listed in only, when not nil) through the same threshold
// filter and heap as TopNAll, never an item of the user's exclude row, and
// hands each user's sorted list to emit (called concurrently for different
// users). Cancelling ctx returns ctx.Err().
func TopNDense(ctx context.Context, users int, only []int32, items, n int, exclude *CSR, threads int, fill ScoreFill, emit func(u int, top []Scored)) error {
	if exclude != nil {
		if err := exclude.validate(); err != nil {
			return fmt.Errorf("top-n: exclude: %w", err)
		}
	}
	user := func(i int) int { return i }
	if only != nil {
		users = len(only)
		user = func(i int) int { return int(only[i]) }
	}
	if users <= 0 || n <= 0 {
		return nil
	}
	nt := resolveThreads(threads)
	rows := make([][]float32, nt)
	heaps := make([]*topK, nt)
	for w := range rows {
		rows[w] = make([]float32, items)
		heaps[w] = newTopK(min(n, items))
	}
	var cancelled atomic.Bool
	parallelChunks(users, 16, nt, func(w, lo, hi int) {
		for i := lo; i < hi; i++ {
			if cancelled.Load() || ctx.Err() != nil {
				cancelled.Store(true)
				return
			}
			u := user(i)
			clear(rows[w])
			fill(w, u, rows[w])
			var ex []int32
			if exclude != nil && u < exclude.Rows {
				ex, _ = exclude.Row(u)
			}
			t := heaps[w]
			t.reset()
			cur := 0
			pushRow(rows[w], 0, t, ex, &cur)
			emit(u, t.sorted())
		}
	})
	if cancelled.Load() {
		return ctx.Err()
	}
	return nil
}

// EvaluateDense is Evaluate for a model that scores users by dense rows:
// the same ranking (whole catalogue minus the user's train items), the same
// users (those with a positive test item) and the same metrics, so two
// families compared on one split are compared on one yardstick.
func EvaluateDense(ctx context.Context, items int, fill ScoreFill, train, test *CSR, k, threads int) (Metrics, error) {
	if k <= 0 {
		return Metrics{}, fmt.Errorf("evaluate: k must be ≥ 1, got %d", k)
	}
	if err := checkEvalShapes(train, test, items); err != nil {
		return Metrics{}, fmt.Errorf("evaluate: %w", err)
	}
	tests := positiveRows(test)
	recs := make([][]int32, train.Rows)
	only := make([]int32, 0)
	for u, ti := range tests {
		if len(ti) > 0 {
			only = append(only, int32(u))
		}
	}
	if err := TopNDense(ctx, train.Rows, only, items, k, train, threads, fill, func(u int, top []Scored) {
		for _, sc := range top {
			recs[u] = append(recs[u], sc.Item)
		}
	}); err != nil {
		return Metrics{}, fmt.Errorf("evaluate: %w", err)
	}
	return summarize(recs, tests, k, items), nil
}

// InvertSPD returns the inverse of the symmetric positive definite k×k
// matrix a (row-major, not modified) by the package's Cholesky factor and
// k solves.
func InvertSPD(a []float64, k int) ([]float64, error) {
	l := slices.Clone(a[:k*k])
	if err := cholesky(l, k); err != nil {
		return nil, err
	}
	out := make([]float64, k*k)
	b := make([]float64, k)
	for c := 0; c < k; c++ {
		clear(b)
		b[c] = 1
		choleskySolve(l, k, b)
		for r, v := range b {
			out[r*k+c] = v
		}
	}
	return out, nil
}

// ResolveThreads is the worker count threads asks for (0: GOMAXPROCS).
func ResolveThreads(threads int) int { return resolveThreads(threads) }

// ParallelChunks runs fn over [0,n) in chunks handed out dynamically (see
// parallelChunks); results must not depend on which worker runs a chunk.
func ParallelChunks(n, chunk, threads int, fn func(worker, lo, hi int)) {
	parallelChunks(n, chunk, threads, fn)
}

// BalancedBounds splits rows into ranges of about equal work (see
// balancedBounds), for ParallelRanges.
func BalancedBounds(indptr []int64, perRow int64, pieces, align int) []int {
	return balancedBounds(indptr, perRow, pieces, align)
}

// ParallelRanges runs fn over [bounds[i], bounds[i+1]) dynamically.
func ParallelRanges(bounds []int, threads int, fn func(worker, lo, hi int)) {
	parallelRanges(bounds, threads, fn)
}
