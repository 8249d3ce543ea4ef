package als

import (
	"context"
	"testing"
	"time"
)

// TestRealHoldout prints holdout metrics for DefaultParams and popularity on
// the shared data (skipped when absent). Run:
//
//	go test ./batch/als/ -run TestRealHoldout -v
func TestRealHoldout(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	m := loadReal(t)
	train, test := SplitHoldout(m, 0.15, 1)
	t.Logf("data: %d users × %d items, %d nnz (train %d, test %d)", m.Rows, m.Cols, m.NNZ(), train.NNZ(), test.NNZ())
	t.Logf("popularity: %v", PopularityBaseline(train, test, 5))
	p := DefaultParams()
	start := time.Now()
	model, err := Train(context.Background(), train, p, func(s IterationStats) {
		t.Logf("iter %d loss %.6g %v", s.Iteration, s.Loss, s.Duration)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("trained %+v in %v", p, time.Since(start))
	met, err := Evaluate(context.Background(), model.UserFactors, model.ItemSide(), train, test, 5, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("als default: %v", met)
}
