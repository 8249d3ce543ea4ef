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
	if err := scoreAll(ctx, userFactors, users, nil, s, n, exclude, except, threads, func(u int, t *feedback.TopK) {
		out[u] = t.Sorted()
	}); err != nil {
		return nil, fmt.Errorf("top-n: %w", err)
	}
	return out, nil
}
