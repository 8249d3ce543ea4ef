package als

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/setlist/setlist/internal/feedback"
)

func TestEvaluateAndPopularity(t *testing.T) {
	s := handItemSide() // user (1,0) ranks 1,4 (3) > 2,5 (2) > 3 (1) > 0 (0)
	train := feedback.NewCSR(3, 6, []feedback.Entry{{Row: 0, Col: 1, Value: 1}, {Row: 1, Col: 0, Value: 1}, {Row: 2, Col: 3, Value: 1}, {Row: 2, Col: 1, Value: 1}})
	test := feedback.NewCSR(3, 6, []feedback.Entry{{Row: 0, Col: 4, Value: 1}, {Row: 0, Col: 3, Value: 1}, {Row: 1, Col: 5, Value: 1}, {Row: 1, Col: 3, Value: -1}})
	uf := []float32{1, 0, 1, 0, 1, 0}
	m, err := Evaluate(context.Background(), uf, s, train, test, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	// user 0: rec [4,2], test {3,4}: hit at 1. user 1: rec [1,4], test {5}
	// (the dislike is not a test item): no hit. user 2: no test items.
	l2 := func(r int) float64 { return 1 / math.Log2(float64(r+1)) }
	want := feedback.Metrics{K: 2, Users: 2, Precision: 0.25, Recall: 0.25, NDCG: 0.5 * 1 / (l2(1) + l2(2)) * l2(1), MAP: 0.25, HitRate: 0.5, Coverage: 3.0 / 6}
	if !closeMetrics(m, want) {
		t.Fatalf("Evaluate = %+v, want %+v", m, want)
	}
	// Popularity: item 1 (2 users), then 0, 3 (1 each, lower index first).
	// user 0 (owns 1): [0,3] hits 3 at rank 2. user 1 (owns 0): [1,3] no hit.
	pop := feedback.PopularityBaseline(train, test, 2)
	want = feedback.Metrics{K: 2, Users: 2, Precision: 0.25, Recall: 0.25, NDCG: 0.5 * l2(2) / (l2(1) + l2(2)), MAP: 0.5 * 0.5 / 2, HitRate: 0.5, Coverage: 3.0 / 6}
	if !closeMetrics(pop, want) {
		t.Fatalf("PopularityBaseline = %+v, want %+v", pop, want)
	}
	if _, err := Evaluate(context.Background(), uf[:4], s, train, test, 2, 1); err == nil {
		t.Fatal("short user factors accepted")
	}
}

func closeMetrics(a, b feedback.Metrics) bool {
	eq := func(x, y float64) bool { return math.Abs(x-y) < 1e-12 }
	return a.K == b.K && a.Users == b.Users && eq(a.Precision, b.Precision) && eq(a.Recall, b.Recall) &&
		eq(a.NDCG, b.NDCG) && eq(a.MAP, b.MAP) && eq(a.HitRate, b.HitRate) && eq(a.Coverage, b.Coverage)
}

func TestParamsJSON(t *testing.T) {
	p := DefaultParams()
	p.Weighting, p.CGSteps, p.LogEpsilon, p.Threads = feedback.WeightLog, 4, 0.5, 2
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
	want := Params{Factors: 64, Regularization: 0.5, Alpha: 2, Iterations: 9, CGSteps: 5, Weighting: feedback.WeightBM25, BM25K1: 30, BM25B: 0.6, LogEpsilon: 3, Seed: 7, Threads: 1}
	if old != want {
		t.Fatalf("legacy params decoded as %+v, want %+v", old, want)
	}
	if err := json.Unmarshal([]byte(`{"factors":"x"}`), &old); err == nil {
		t.Fatal("a string factors count was accepted")
	}
}
