package model

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/feedback"
)

// row is the user's row under the version's scheme (Catalog.Row), or
// ErrNoSignal when no weight is positive: such a user has nothing to fold
// in and is answered with the popular list.
func (p *Published) row(reactions []setlist.Reaction) (cols []int32, vals []float32, err error) {
	cols, vals = p.Catalog.Row(p.Meta.Scheme, reactions)
	if !slices.ContainsFunc(vals, func(v float32) bool { return v > 0 }) {
		return nil, nil, ErrNoSignal
	}
	return cols, vals, nil
}

// FoldInAll is FoldIn for many users at once (users[i] is one user's
// reactions), for the scale-out precompute: each vector is solved as FoldIn
// solves it, and the lists are ranked together by the batched top-N kernel
// training uses (ItemModel.TopNRows), which scores a block of users per
// pass over the item factors instead of one user per pass. There is one
// ranking implementation for the batch, training and the precompute; it
// matches FoldIn's song for song (als.TestTopNAllMatchesRecommend), though
// a score may differ in its last bits (a different summation order). The
// songs the version was trained without (Meta.Unavailable) are withheld as
// the training's lists withhold them (feedback.RankWithheld): FoldIn's list
// is the available part of each.
// lists[i] is nil for a user with no usable reaction (ErrNoSignal).
func (p *Published) FoldInAll(ctx context.Context, users [][]setlist.Reaction, n, threads int) (lists [][]Rec, err error) {
	im := p.itemModel()
	x := &feedback.CSR{Cols: im.NumItems(), Indptr: make([]int64, 1, len(users)+1)}
	ranked := make([]int, 0, len(users)) // users[ranked[r]] is row r of x
	for i, rs := range users {
		cols, vals, err := p.row(rs)
		if errors.Is(err, ErrNoSignal) {
			continue
		}
		// Catalog.Row's columns are unique; the kernels want them sorted.
		start := len(x.Indices)
		x.Indices, x.Data = append(x.Indices, cols...), append(x.Data, vals...)
		sortRow(x.Indices[start:], x.Data[start:])
		x.Indptr = append(x.Indptr, int64(len(x.Indices)))
		ranked = append(ranked, i)
	}
	x.Rows = len(ranked)
	lists = make([][]Rec, len(users))
	if x.Rows == 0 {
		return lists, nil
	}
	scored, err := im.TopNRows(ctx, x, n, p.Catalog.Indexes(p.Meta.Unavailable), threads)
	if err != nil {
		return nil, fmt.Errorf("fold in %d users: %w", x.Rows, err)
	}
	for r, i := range ranked {
		lists[i] = p.Catalog.Recs(scored[r])
	}
	return lists, nil
}

// sortRow sorts cols ascending, carrying vals along.
func sortRow(cols []int32, vals []float32) {
	idx := make([]int, len(cols))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return int(cols[a]) - int(cols[b]) })
	c, v := slices.Clone(cols), slices.Clone(vals)
	for i, j := range idx {
		cols[i], vals[i] = c[j], v[j]
	}
}
