package figures

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"testing"

	"github.com/setlist/setlist/internal/als"
	"github.com/setlist/setlist/internal/feedback"
)

// holdoutNDCG trains p on train (two threads) and scores NDCG@5 on test.
func holdoutNDCG(t *testing.T, train, test *feedback.CSR, p als.Params) float64 {
	t.Helper()
	p.Threads = 2
	m, err := als.Train(context.Background(), train, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	met, err := als.Evaluate(context.Background(), m.UserFactors, m.ItemSide(), train, test, 5, 2)
	if err != nil {
		t.Fatal(err)
	}
	return met.NDCG
}

// sampleUsers is the matrix of a random share of m's rows (all columns
// kept), the same draw for the same seed.
func sampleUsers(m *feedback.CSR, share float64, seed int64) *feedback.CSR {
	rows := rand.New(rand.NewPCG(uint64(seed), 0x5a3b1e)).Perm(m.Rows)
	rows = rows[:max(1, int(math.Round(share*float64(m.Rows))))]
	slices.Sort(rows)
	return m.SubsetRows(rows)
}

// skipUnlessFigures skips a harness unless figures are asked for
// (SETLIST_FIGURES=1): they take minutes to hours and the shared data.
func skipUnlessFigures(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("SETLIST_FIGURES") == "" {
		t.Skip("set SETLIST_FIGURES=1 to measure " + what)
	}
}
