package als

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func TestMetricSums(t *testing.T) {
	l2 := func(r int) float64 { return 1 / math.Log2(float64(r+1)) }
	tests := []struct {
		name                          string
		rec, test                     []int32
		k                             int
		precision, recall, ndcg, mapk float64
	}{
		{"all hits", []int32{1, 2}, []int32{1, 2}, 2, 1, 1, 1, 1},
		{"hit at rank 2 of 3", []int32{5, 1, 7}, []int32{1, 9}, 3, 1.0 / 3, 0.5, l2(2) / (l2(1) + l2(2)), (1.0 / 2) / 2},
		{"no hits", []int32{5, 6}, []int32{1}, 2, 0, 0, 0, 0},
		{"short list, small test", []int32{3}, []int32{3}, 5, 0.2, 1, 1, 1},
		{"hits at 1 and 3, big test", []int32{4, 0, 8}, []int32{4, 8, 10, 11, 12}, 3, 2.0 / 3, 2.0 / 5, (l2(1) + l2(3)) / (l2(1) + l2(2) + l2(3)), (1 + 2.0/3) / 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s metricSums
			s.add(tc.rec, tc.test, tc.k)
			m := s.metrics(tc.k, 20, make([]bool, 20))
			for _, c := range []struct {
				name      string
				got, want float64
			}{{"precision", m.Precision, tc.precision}, {"recall", m.Recall, tc.recall}, {"ndcg", m.NDCG, tc.ndcg}, {"map", m.MAP, tc.mapk}} {
				if math.Abs(c.got-c.want) > 1e-12 {
					t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
				}
			}
			if wantHit := tc.precision > 0; (m.HitRate == 1) != wantHit {
				t.Errorf("hit rate %v", m.HitRate)
			}
		})
	}
}

func TestEvaluateAndPopularity(t *testing.T) {
	s := handItemSide() // user (1,0) ranks 1,4 (3) > 2,5 (2) > 3 (1) > 0 (0)
	train := NewCSR(3, 6, []Entry{{0, 1, 1}, {1, 0, 1}, {2, 3, 1}, {2, 1, 1}})
	test := NewCSR(3, 6, []Entry{{0, 4, 1}, {0, 3, 1}, {1, 5, 1}, {1, 3, -1}})
	uf := []float32{1, 0, 1, 0, 1, 0}
	m, err := Evaluate(context.Background(), uf, s, train, test, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	// user 0: rec [4,2], test {3,4}: hit at 1. user 1: rec [1,4], test {5}
	// (the dislike is not a test item): no hit. user 2: no test items.
	l2 := func(r int) float64 { return 1 / math.Log2(float64(r+1)) }
	want := Metrics{K: 2, Users: 2, Precision: 0.25, Recall: 0.25, NDCG: 0.5 * 1 / (l2(1) + l2(2)) * l2(1), MAP: 0.25, HitRate: 0.5, Coverage: 3.0 / 6}
	if !closeMetrics(m, want) {
		t.Fatalf("Evaluate = %+v, want %+v", m, want)
	}
	// Popularity: item 1 (2 users), then 0, 3 (1 each, lower index first).
	// user 0 (owns 1): [0,3] hits 3 at rank 2. user 1 (owns 0): [1,3] no hit.
	pop := PopularityBaseline(train, test, 2)
	want = Metrics{K: 2, Users: 2, Precision: 0.25, Recall: 0.25, NDCG: 0.5 * l2(2) / (l2(1) + l2(2)), MAP: 0.5 * 0.5 / 2, HitRate: 0.5, Coverage: 3.0 / 6}
	if !closeMetrics(pop, want) {
		t.Fatalf("PopularityBaseline = %+v, want %+v", pop, want)
	}
	if _, err := Evaluate(context.Background(), uf[:4], s, train, test, 2, 1); err == nil {
		t.Fatal("short user factors accepted")
	}
}

func closeMetrics(a, b Metrics) bool {
	eq := func(x, y float64) bool { return math.Abs(x-y) < 1e-12 }
	return a.K == b.K && a.Users == b.Users && eq(a.Precision, b.Precision) && eq(a.Recall, b.Recall) &&
		eq(a.NDCG, b.NDCG) && eq(a.MAP, b.MAP) && eq(a.HitRate, b.HitRate) && eq(a.Coverage, b.Coverage)
}

func TestSplitHoldout(t *testing.T) {
	m := NewCSR(3, 10, []Entry{
		{0, 0, 1}, {0, 1, 2}, {0, 2, 1}, {0, 3, 1}, {0, 4, 1}, {0, 5, 1}, {0, 6, -1},
		{1, 0, 1}, {1, 1, -3},
		{2, 7, 1}, {2, 8, 1},
	})
	train, test := SplitHoldout(m, 0.5, 9)
	// user 0: 6 positives → 3 to test; dislike stays. user 1: 1 positive →
	// all train. user 2: 2 positives → round(1) = 1 to test.
	if got := []int{rowLen(test, 0), rowLen(test, 1), rowLen(test, 2)}; got[0] != 3 || got[1] != 0 || got[2] != 1 {
		t.Fatalf("test row sizes %v, want [3 0 1]", got)
	}
	if train.NNZ()+test.NNZ() != m.NNZ() {
		t.Fatal("split lost entries")
	}
	cols, vals := train.Row(0)
	if cols[len(cols)-1] != 6 || vals[len(vals)-1] != -1 {
		t.Fatal("dislike not kept in train")
	}
	tr2, te2 := SplitHoldout(m, 0.5, 9)
	if !equalCSR(train, tr2) || !equalCSR(test, te2) {
		t.Fatal("split not deterministic")
	}
}

func rowLen(m *CSR, r int) int { c, _ := m.Row(r); return len(c) }

func equalCSR(a, b *CSR) bool {
	if a.Rows != b.Rows || a.Cols != b.Cols || len(a.Indices) != len(b.Indices) {
		return false
	}
	for i := range a.Indices {
		if a.Indices[i] != b.Indices[i] || a.Data[i] != b.Data[i] {
			return false
		}
	}
	for i := range a.Indptr {
		if a.Indptr[i] != b.Indptr[i] {
			return false
		}
	}
	return true
}

func TestParamsJSON(t *testing.T) {
	p := DefaultParams()
	p.Weighting, p.CGSteps, p.LogEpsilon, p.Threads = WeightLog, 4, 0.5, 2
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"factors":`, `"cg_steps":4`, `"bm25_k1":`, `"bm25_b":`, `"log_epsilon":0.5`, `"threads":2`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("%s lacks %s", b, key)
		}
	}
	var back Params
	if err := json.Unmarshal(b, &back); err != nil || back != p {
		t.Fatalf("round trip: %+v, %v; want %+v", back, err, p)
	}
	// What the registry holds for runs recorded before the tags existed.
	legacy := `{"Factors":64,"Regularization":0.5,"Alpha":2,"Iterations":9,"CGSteps":5,"Weighting":"bm25","BM25K1":30,"BM25B":0.6,"LogEpsilon":3,"Seed":7,"Threads":1}`
	var old Params
	if err := json.Unmarshal([]byte(legacy), &old); err != nil {
		t.Fatal(err)
	}
	want := Params{Factors: 64, Regularization: 0.5, Alpha: 2, Iterations: 9, CGSteps: 5, Weighting: WeightBM25, BM25K1: 30, BM25B: 0.6, LogEpsilon: 3, Seed: 7, Threads: 1}
	if old != want {
		t.Fatalf("legacy params decoded as %+v, want %+v", old, want)
	}
	if err := json.Unmarshal([]byte(`{"factors":"x"}`), &old); err == nil {
		t.Fatal("a string factors count was accepted")
	}
}
