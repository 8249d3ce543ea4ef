package ease

import (
	"context"
	"fmt"
	"math"

	"github.com/setlist/setlist/internal/als"
	"github.com/setlist/setlist/internal/feedback"
)

// Folded is one user's weighted row: their songs and x_j per song. Their
// scores are Σ_j x_j·B[j,:], so a fold-in is a sum of rows, not a solve.
type Folded struct {
	m    *Model
	Cols []int32   // the user's songs, sorted, merged
	X    []float32 // x_j = f(|w_j|), 0 for dislikes
}

// Fold weighs a row of raw weights (as in feedback.Entry.Value) exactly as
// training weighed X. cols need not be sorted; duplicates are summed.
func (m *Model) Fold(cols []int32, vals []float32) (*Folded, error) {
	if len(cols) != len(vals) {
		return nil, fmt.Errorf("%d songs but %d values", len(cols), len(vals))
	}
	entries := make([]feedback.Entry, 0, len(cols))
	for j, c := range cols {
		if c < 0 || int(c) >= m.Items {
			return nil, fmt.Errorf("item %d outside catalogue of %d items", c, m.Items)
		}
		v := vals[j]
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("item %d has non-finite weight %v", c, v)
		}
		entries = append(entries, feedback.Entry{Col: c, Value: v})
	}
	row := feedback.NewCSR(1, m.Items, entries)
	x := make([]float32, len(row.Indices))
	feedback.Weights(m.Params.Weighing(), m.ItemWeights, row.Indices, row.Data, x)
	return &Folded{m: m, Cols: row.Indices, X: x}, nil
}

// Scores writes the user's score of every song into dst (len Items).
func (f *Folded) Scores(dst []float32) {
	clear(dst)
	n := f.m.Items
	for j, c := range f.Cols {
		if f.X[j] != 0 {
			als.Axpy(f.X[j], f.m.B[int(c)*n:int(c+1)*n], dst)
		}
	}
}

// Recommend returns the user's top n songs, never one of exclude.
func (f *Folded) Recommend(n int, exclude []int32) []feedback.Scored {
	s := make([]float32, f.m.Items)
	f.Scores(s)
	return feedback.TopNRow(s, n, exclude)
}

// Explain decomposes the user's score of item into each reacted song's
// exact term x_j·B_j,item and returns the total and the n largest.
func (f *Folded) Explain(item int32, n int) (total float32, top []feedback.Contribution, err error) {
	if item < 0 || int(item) >= f.m.Items {
		return 0, nil, fmt.Errorf("item %d outside catalogue of %d items", item, f.m.Items)
	}
	contrib := make([]float32, len(f.Cols))
	var sum float64
	for j, c := range f.Cols {
		contrib[j] = f.X[j] * f.m.B[int(c)*f.m.Items+int(item)]
		sum += float64(contrib[j])
	}
	// The reacted songs are few: rank their terms with the shared top-N
	// over a row indexed by position, then map back to songs.
	for _, sc := range feedback.TopNRow(contrib, n, nil) {
		if f.X[sc.Item] == 0 {
			continue
		}
		top = append(top, feedback.Contribution{Item: f.Cols[sc.Item], Score: sc.Score})
	}
	return float32(sum), top, nil
}

// Similar returns up to n songs with the largest weights in song item's
// row of B: the songs a reaction to item raises most, which is what a
// listener with only that song would be recommended.
func (m *Model) Similar(item int32, n int) []feedback.Scored {
	if item < 0 || int(item) >= m.Items || n <= 0 {
		return nil
	}
	return feedback.TopNRow(m.B[int(item)*m.Items:int(item+1)*m.Items], n, []int32{item})
}

// fill is the dense score row of user u of m's weighted rows.
func (m *Model) fill(x *feedback.CSR) feedback.ScoreFill {
	wp := m.Params.Weighing()
	return func(_, u int, dst []float32) {
		cols, vals := x.Row(u)
		w := make([]float32, len(cols))
		feedback.Weights(wp, m.ItemWeights, cols, vals, w)
		n := m.Items
		for j, c := range cols {
			if w[j] != 0 {
				als.Axpy(w[j], m.B[int(c)*n:int(c+1)*n], dst)
			}
		}
	}
}

// TopNAll returns every user's top n songs from their row of x (users ×
// songs of raw weights, the training matrix), never a song of their row of
// exclude (nil excludes nothing), as als.TopNAll does.
func (m *Model) TopNAll(ctx context.Context, x *feedback.CSR, n int, exclude *feedback.CSR, threads int) ([][]feedback.Scored, error) {
	if x.Cols != m.Items {
		return nil, fmt.Errorf("top-n: matrix has %d songs, model %d", x.Cols, m.Items)
	}
	out := make([][]feedback.Scored, x.Rows)
	err := feedback.TopNDense(ctx, x.Rows, nil, m.Items, n, exclude, nil, threads, m.fill(x), func(u int, top []feedback.Scored) { out[u] = top })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Evaluate scores the top k of every test user (ranked from their train row,
// train songs excluded) with the same metrics and users as als.Evaluate.
func (m *Model) Evaluate(ctx context.Context, train, test *feedback.CSR, k, threads int) (feedback.Metrics, error) {
	return feedback.EvaluateDense(ctx, m.Items, m.fill(train), train, test, k, threads)
}
