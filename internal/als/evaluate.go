package als

import (
	"context"
	"fmt"

	"github.com/setlist/setlist/internal/feedback"
)

// Evaluate ranks the whole catalogue minus each user's train items and
// scores the top k against the user's positive test items. train and test
// must have userFactors' row count and the item side's column count.
func Evaluate(ctx context.Context, userFactors []float32, s *ItemSide, train, test *feedback.CSR, k int, threads int) (feedback.Metrics, error) {
	if k <= 0 {
		return feedback.Metrics{}, fmt.Errorf("evaluate: k must be ≥ 1, got %d", k)
	}
	if err := feedback.CheckShapes(train, test, s.Items); err != nil {
		return feedback.Metrics{}, fmt.Errorf("evaluate: %w", err)
	}
	if s.Factors <= 0 || len(userFactors) != train.Rows*s.Factors {
		return feedback.Metrics{}, fmt.Errorf("evaluate: %d user factors do not match %d users × %d factors", len(userFactors), train.Rows, s.Factors)
	}
	tests := feedback.PositiveRows(test)
	recs := make([][]int32, train.Rows)
	// Only users with test items are scored: a sampled test set (the
	// pipeline's --eval-users) then costs its sample, not every user.
	only := make([]int32, 0)
	for u, ti := range tests {
		if len(ti) > 0 {
			only = append(only, int32(u))
		}
	}
	if err := scoreAll(ctx, userFactors, train.Rows, only, s, k, train, nil, threads, func(u int, t *feedback.TopK) {
		for _, sc := range t.Sorted() {
			recs[u] = append(recs[u], sc.Item)
		}
	}); err != nil {
		return feedback.Metrics{}, fmt.Errorf("evaluate: %w", err)
	}
	return feedback.Summarize(recs, tests, k, s.Items), nil
}
