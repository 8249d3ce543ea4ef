package feedback

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/setlist/setlist/internal/parallel"
)

// What a model family that scores users by dense rows (EASE) needs besides
// ALS's own paths: the weighting without α, the threshold-filtered top-K
// over a dense score row, and the holdout metrics over such rows.

// Weights writes f(|w|) for each entry of one row into out (len(vals)):
// the weighting of w (raw, log or bm25, exactly as ALS's confidence uses
// it, without α) for positive entries and 0 for dislikes, which carry no
// preference. cols must be the row's item indexes (bm25 reads their idf).
func Weights(w Weighing, itemWeights []float32, cols []int32, vals []float32, out []float32) {
	cp := make([]float32, len(vals))
	Confidence(w, 1, itemWeights, cols, vals, out[:len(vals)], cp)
	for j, v := range vals {
		if !(v > 0) {
			out[j] = 0
		}
	}
}

// TopNRow returns up to n items of a dense score row (item i scores
// scores[i]) by descending score, ties to the lower index, never an item of
// exclude (any order, duplicates and out-of-range items allowed).
func TopNRow(scores []float32, n int, exclude []int32) []Scored {
	if n <= 0 {
		return nil
	}
	ex := slices.Clone(exclude)
	slices.Sort(ex)
	t := NewTopK(min(n, len(scores)))
	cur := 0
	PushRow(scores, 0, t, ex, &cur)
	return t.Sorted()
}

// ScoreFill writes user u's dense score row (one score per item) into dst;
// worker identifies the calling goroutine (0 ≤ worker < threads) so fill
// can keep per-worker scratch.
type ScoreFill func(worker, u int, dst []float32)

// TopNDense ranks the dense score rows fill produces for users [0,users)
// (or only those listed in only, when not nil) through the same threshold
// filter and heap as TopNAll, never an item of the user's exclude row nor
// one of except (sorted; nil: none), and hands each user's sorted list to
// emit (called concurrently for different users). Cancelling ctx returns
// ctx.Err().
func TopNDense(ctx context.Context, users int, only []int32, items, n int, exclude *CSR, except []int32, threads int, fill ScoreFill, emit func(u int, top []Scored)) error {
	if exclude != nil {
		if err := exclude.Validate(); err != nil {
			return fmt.Errorf("top-n: exclude: %w", err)
		}
	}
	if err := CheckExcept(except, items); err != nil {
		return fmt.Errorf("top-n: %w", err)
	}
	user := func(i int) int { return i }
	if only != nil {
		users = len(only)
		user = func(i int) int { return int(only[i]) }
	}
	if users <= 0 || n <= 0 {
		return nil
	}
	nt := parallel.Threads(threads)
	rows := make([][]float32, nt)
	heaps := make([]*TopK, nt)
	for w := range rows {
		rows[w] = make([]float32, items)
		heaps[w] = NewTopK(min(n, items))
	}
	var cancelled atomic.Bool
	parallel.Chunks(users, 16, nt, func(w, lo, hi int) {
		for i := lo; i < hi; i++ {
			if cancelled.Load() || ctx.Err() != nil {
				cancelled.Store(true)
				return
			}
			u := user(i)
			clear(rows[w])
			fill(w, u, rows[w])
			Mask(rows[w], 0, except)
			var ex []int32
			if exclude != nil && u < exclude.Rows {
				ex, _ = exclude.Row(u)
			}
			t := heaps[w]
			t.Reset()
			cur := 0
			PushRow(rows[w], 0, t, ex, &cur)
			emit(u, t.Sorted())
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
	if err := CheckShapes(train, test, items); err != nil {
		return Metrics{}, fmt.Errorf("evaluate: %w", err)
	}
	tests := PositiveRows(test)
	recs := make([][]int32, train.Rows)
	only := make([]int32, 0)
	for u, ti := range tests {
		if len(ti) > 0 {
			only = append(only, int32(u))
		}
	}
	if err := TopNDense(ctx, train.Rows, only, items, k, train, nil, threads, fill, func(u int, top []Scored) {
		for _, sc := range top {
			recs[u] = append(recs[u], sc.Item)
		}
	}); err != nil {
		return Metrics{}, fmt.Errorf("evaluate: %w", err)
	}
	return Summarize(recs, tests, k, items), nil
}
