package als

import (
	"context"
	"fmt"
	"math"

	"github.com/setlist/setlist/internal/feedback"
	"github.com/setlist/setlist/internal/parallel"
)

// FoldRows folds in every row of x (raw weights, as in Entry.Value; one
// user a row) into out (x.Rows×Factors, row-major): each vector exactly as
// FoldIn solves it (the same solve, bit for bit), for the precompute's
// batches. Rows are handed out to threads workers in chunks, each worker
// keeping one scratch for all its rows, so no row allocates: serve's
// one-user FoldIn allocates its k×k system afresh (32 KiB at k = 64), which
// a batch of thousands turned into most of its garbage. x must be a valid
// CSR (rows sorted and unique, as NewCSR builds them) over this side's
// items. A row that cannot be solved fails the whole batch, naming the row.
func (s *ItemSide) FoldRows(ctx context.Context, x *feedback.CSR, out []float32, threads int) error {
	k := s.Factors
	if err := x.Validate(); err != nil {
		return fmt.Errorf("fold rows: %w", err)
	}
	if x.Cols != s.Items {
		return fmt.Errorf("fold rows: %d columns for a side of %d items", x.Cols, s.Items)
	}
	if len(out) != x.Rows*k {
		return fmt.Errorf("fold rows: %d floats for %d rows of %d factors", len(out), x.Rows, k)
	}
	for i, v := range x.Data {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("fold rows: item %d has non-finite weight %v", x.Indices[i], v)
		}
	}
	scratch := make([]*foldScratch, parallel.Threads(threads))
	for i := range scratch {
		scratch[i] = newFoldScratch(k, foldBlock)
	}
	errs := make([]error, parallel.Threads(threads))
	parallel.Chunks(x.Rows, foldChunk, threads, func(w, lo, hi int) {
		if errs[w] != nil || ctx.Err() != nil {
			return
		}
		for u := lo; u < hi; u++ {
			cols, vals := x.Row(u)
			if err := s.solve(cols, vals, scratch[w], out[u*k:(u+1)*k]); err != nil {
				errs[w] = fmt.Errorf("fold rows: row %d: %w", u, err)
				return
			}
		}
	})
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// foldChunk rows are handed out at a time: a row's solve (~k³/3 flops for
// the factor alone) dwarfs the hand-out.
const foldChunk = 16
