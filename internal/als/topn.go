package als

import (
	"context"
	"fmt"

	"github.com/setlist/setlist/internal/feedback"
)

// TopNAll returns the top n items (score desc, item asc) for every user, row
// i of userFactors (row-major users×s.Factors), never including an item of
// row i of exclude (nil excludes nothing; exclude may have fewer rows than
// there are users) nor one of except (ascending item indexes left out for
// everyone, the songs taken down; nil: none). Scores are computed in
// blocks of users × items so each item panel is reused from cache across
// several users. Cancelling ctx returns ctx.Err().
func TopNAll(ctx context.Context, userFactors []float32, s *ItemSide, n int, exclude *feedback.CSR, except []int32, threads int) ([][]feedback.Scored, error) {
	k := s.Factors
	if k <= 0 || len(userFactors)%k != 0 {
		return nil, fmt.Errorf("top-n: user factors length %d is not a multiple of %d factors", len(userFactors), k)
	}
	if exclude != nil {
		if err := exclude.Validate(); err != nil {
			return nil, fmt.Errorf("top-n: exclude: %w", err)
		}
	}
	if err := feedback.CheckExcept(except, s.Items); err != nil {
		return nil, fmt.Errorf("top-n: %w", err)
	}
	users := len(userFactors) / k
	out := make([][]feedback.Scored, users)
	if n <= 0 {
		return out, nil
	}
	if len(except) > s.Items/2 {
		return topNAllowed(ctx, userFactors, s, n, exclude, except, threads)
	}
	if err := scoreAll(ctx, userFactors, users, nil, s, n, exclude, except, threads, func(u int, t *feedback.TopK) {
		out[u] = t.Sorted()
	}); err != nil {
		return nil, fmt.Errorf("top-n: %w", err)
	}
	return out, nil
}

// topNAllowed is TopNAll when except leaves out most of the catalog (the
// withheld songs' own ranking, feedback.RankWithheld): it scores only the
// allowed items, a compact copy of their factors, with exclude's columns
// renumbered, instead of scoring every item and masking nearly all.
func topNAllowed(ctx context.Context, userFactors []float32, s *ItemSide, n int, exclude *feedback.CSR, except []int32, threads int) ([][]feedback.Scored, error) {
	k := s.Factors
	allowed := feedback.Complement(except, s.Items)
	sub := &ItemSide{Items: len(allowed), Factors: k, ItemFactors: make([]float32, len(allowed)*k)}
	pos := make([]int32, s.Items) // item → its index in sub, or -1
	for i := range pos {
		pos[i] = -1
	}
	for j, it := range allowed {
		copy(sub.ItemFactors[j*k:(j+1)*k], s.ItemFactors[int(it)*k:(int(it)+1)*k])
		pos[it] = int32(j)
	}
	var subEx *feedback.CSR
	if exclude != nil {
		subEx = &feedback.CSR{Rows: exclude.Rows, Cols: len(allowed), Indptr: make([]int64, 1, exclude.Rows+1)}
		for u := range exclude.Rows {
			cols, vals := exclude.Row(u)
			for p, c := range cols {
				if j := pos[c]; j >= 0 { // ascending: allowed keeps the items' order
					subEx.Indices, subEx.Data = append(subEx.Indices, j), append(subEx.Data, vals[p])
				}
			}
			subEx.Indptr = append(subEx.Indptr, int64(len(subEx.Indices)))
		}
	}
	lists, err := TopNAll(ctx, userFactors, sub, n, subEx, nil, threads)
	if err != nil {
		return nil, err
	}
	for _, l := range lists {
		for i := range l {
			l[i].Item = allowed[l[i].Item]
		}
	}
	return lists, nil
}
