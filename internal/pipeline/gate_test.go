package pipeline

import (
	"math"
	"strings"
	"testing"

	"github.com/setlist/setlist/internal/feedback"
)

func TestGate(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	tests := []struct {
		name      string
		in        GateInput
		publish   bool
		forced    bool
		reasonHas string
	}{
		{"beats baseline, nothing published", GateInput{NDCG: 0.3, BaselineNDCG: 0.1, EvalUsers: 10}, true, false, ""},
		{"ties baseline", GateInput{NDCG: 0.1, BaselineNDCG: 0.1, EvalUsers: 10}, false, false, "popularity baseline"},
		{"below baseline", GateInput{NDCG: 0.05, BaselineNDCG: 0.1, EvalUsers: 10}, false, false, "popularity baseline"},
		{"within regression", GateInput{NDCG: 0.29, BaselineNDCG: 0.1, EvalUsers: 10, PublishedNDCG: f(0.3), MaxRegression: 0.05}, true, false, ""},
		{"exactly at the limit", GateInput{NDCG: 0.285, BaselineNDCG: 0.1, EvalUsers: 10, PublishedNDCG: f(0.3), MaxRegression: 0.05}, true, false, ""},
		{"beyond regression", GateInput{NDCG: 0.28, BaselineNDCG: 0.1, EvalUsers: 10, PublishedNDCG: f(0.3), MaxRegression: 0.05}, false, false, "5.0% below the published"},
		{"better than published", GateInput{NDCG: 0.4, BaselineNDCG: 0.1, EvalUsers: 10, PublishedNDCG: f(0.3), MaxRegression: 0.05}, true, false, ""},
		{"forced past regression", GateInput{NDCG: 0.1, BaselineNDCG: 0.05, EvalUsers: 10, PublishedNDCG: f(0.3), MaxRegression: 0.05, Force: true}, true, true, "forced"},
		{"no holdout users", GateInput{EvalUsers: 0}, false, false, "cannot be evaluated"},
		{"NaN", GateInput{NDCG: math.NaN(), EvalUsers: 10}, false, false, "not a number"},
		{"full lists", GateInput{NDCG: 0.3, BaselineNDCG: 0.1, EvalUsers: 10, Lists: ListCheck{Users: 10}}, true, false, ""},
		{"imported factors beat popularity", GateInput{NDCG: 0.3, BaselineNDCG: 0.1, EvalUsers: 10, FoldIn: &FoldInCheck{NDCG: 0.5, BaselineNDCG: 0.1}}, true, false, ""},
		{"imported factors score like chance", GateInput{NDCG: 0.3, BaselineNDCG: 0.1, EvalUsers: 10, FoldIn: &FoldInCheck{NDCG: 0.01, BaselineNDCG: 0.1}}, false, false, "imported factors"},
		{"short batch lists", GateInput{NDCG: 0.3, BaselineNDCG: 0.1, EvalUsers: 10, Lists: ListCheck{Users: 10, Short: 10}}, false, false, "10 of 10 users' batch lists are shorter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Gate(tt.in)
			if d.Publish != tt.publish || d.Forced != tt.forced || !strings.Contains(d.Reason, tt.reasonHas) {
				t.Errorf("Gate = %+v, want publish %v forced %v reason containing %q", d, tt.publish, tt.forced, tt.reasonHas)
			}
			if !d.Publish && d.Reason == "" {
				t.Errorf("a rejection without a reason")
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).withDefaults().Validate(); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
	bad := Config{K: -1, HoldoutFraction: 1.5, MaxRegression: 2, Threads: -1}.withDefaults()
	err := bad.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{"k must", "holdout", "max regression", "threads"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// TestCheckLists: a user's list is short when it holds fewer than
// min(k, songs they have not reacted to) songs, as NaN user factors leave
// every list (issue 24 item 5).
func TestCheckLists(t *testing.T) {
	// 3 users × 4 songs: user 0 reacted to 1 song, user 1 to all 4, user 2 to none.
	m := feedback.NewCSR(3, 4, []feedback.Entry{{Row: 0, Col: 0, Value: 1},
		{Row: 1, Col: 0, Value: 1}, {Row: 1, Col: 1, Value: 1}, {Row: 1, Col: 2, Value: 1}, {Row: 1, Col: 3, Value: 1}})
	l := func(n int) []feedback.Scored { return make([]feedback.Scored, n) }
	tests := []struct {
		name  string
		lists [][]feedback.Scored
		k     int
		want  ListCheck
	}{
		{"full", [][]feedback.Scored{l(2), nil, l(2)}, 2, ListCheck{Users: 2}},
		{"k above the songs left", [][]feedback.Scored{l(3), nil, l(4)}, 5, ListCheck{Users: 2}},
		{"all empty (NaN factors)", [][]feedback.Scored{nil, nil, nil}, 2, ListCheck{Users: 2, Short: 2}},
		{"one short", [][]feedback.Scored{l(2), nil, l(1)}, 2, ListCheck{Users: 2, Short: 1}},
	}
	for _, tt := range tests {
		if got := CheckLists(tt.lists, m, tt.k, nil); got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
}
