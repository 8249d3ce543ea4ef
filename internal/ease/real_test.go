package ease

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/setlist/setlist/internal/als"
	"github.com/setlist/setlist/internal/feedback"
	"github.com/setlist/setlist/internal/realdata"
)

func loadReal(t *testing.T) *feedback.CSR { return realdata.CSR(t) }

// peakRSS is the process's high-water resident set (realdata.PeakRSS).
func peakRSS() int64 { return realdata.PeakRSS() }

// TestRealHoldout trains EASE on the per-user 15 % holdout split of the
// shared data that als.TestRealHoldout uses (seed 1) and logs holdout
// precision@5 and NDCG@5, training time, peak memory, top-5 for all users
// and fold-in latency (p50/p99 over 2000 users). SETLIST_EASE_LAMBDAS
// (comma-separated) and SETLIST_EASE_WEIGHTING pick the settings:
//
//	SETLIST_REAL=1 GOEXPERIMENT=simd go test ./internal/ease/ -run TestRealHoldout -v -timeout 2h
func TestRealHoldout(t *testing.T) {
	if os.Getenv("SETLIST_REAL") == "" {
		t.Skip("set SETLIST_REAL=1 to train on the shared data (normal test runs never read it)")
	}
	m := loadReal(t)
	train, test := feedback.SplitHoldout(m, 0.15, 1)
	t.Logf("data: %d users × %d songs, %d nnz (train %d, test %d)", m.Rows, m.Cols, m.NNZ(), train.NNZ(), test.NNZ())
	lambdas := []float64{100}
	if s := os.Getenv("SETLIST_EASE_LAMBDAS"); s != "" {
		lambdas = nil
		for _, f := range strings.Split(s, ",") {
			v, err := strconv.ParseFloat(f, 64)
			if err != nil {
				t.Fatal(err)
			}
			lambdas = append(lambdas, v)
		}
	}
	ctx := context.Background()
	for _, lambda := range lambdas {
		p := DefaultParams()
		p.Lambda = lambda
		if w := os.Getenv("SETLIST_EASE_WEIGHTING"); w != "" {
			p.Weighting = feedback.Weighting(w)
		}
		start := time.Now()
		model, st, err := Train(ctx, train, p, Options{})
		if err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		met, err := model.Evaluate(ctx, train, test, 5, 0)
		if err != nil {
			t.Fatal(err)
		}
		js, _ := json.Marshal(p)
		t.Logf("ease %s: %v", js, met)
		t.Logf("  train %v (gram %v, invert %v, B %v), peak RSS %.2f GiB", took.Round(time.Millisecond), st.Gram.Round(time.Millisecond), st.Invert.Round(time.Millisecond), st.Weights.Round(time.Millisecond), float64(peakRSS())/(1<<30))
		start = time.Now()
		if _, err := model.TopNAll(ctx, train, 5, train, 0); err != nil {
			t.Fatal(err)
		}
		t.Logf("  top-5 for all %d users: %v", train.Rows, time.Since(start).Round(time.Millisecond))
		var lat []time.Duration
		for u := 0; u < train.Rows && len(lat) < 2000; u += max(1, train.Rows/2000) {
			cols, vals := train.Row(u)
			s := time.Now()
			f, err := model.Fold(cols, vals)
			if err != nil {
				t.Fatal(err)
			}
			f.Recommend(5, cols)
			lat = append(lat, time.Since(s))
		}
		slices.Sort(lat)
		t.Logf("  fold-in (weigh + score + top-5, one goroutine) p50 %v p99 %v over %d users", lat[len(lat)/2], lat[len(lat)*99/100], len(lat))
		// What serve's fold-ins lose when Redis holds B pruned to m per row.
		for _, keep := range []int{32, 64, 128, 256, 512, 1024} {
			pr := model.Prune(keep, 0)
			pm, err := pr.Evaluate(ctx, train, test, 5, 0)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := pr.MarshalBinary()
			var lat []time.Duration
			for u := 0; u < train.Rows && len(lat) < 2000; u += max(1, train.Rows/2000) {
				cols, vals := train.Row(u)
				s := time.Now()
				f, _ := pr.Fold(cols, vals)
				f.Recommend(5, cols)
				lat = append(lat, time.Since(s))
			}
			slices.Sort(lat)
			t.Logf("  pruned m=%d: p@5 %.4f (%+.1f%%) ndcg@5 %.4f (%+.1f%%), %.1f MB in Redis (dense B %.0f MB), fold-in p50 %v p99 %v", keep,
				pm.Precision, 100*(pm.Precision/met.Precision-1), pm.NDCG, 100*(pm.NDCG/met.NDCG-1), float64(len(b))/1e6, float64(4*len(model.B))/1e6,
				lat[len(lat)/2], lat[len(lat)*99/100])
		}
	}
	if os.Getenv("SETLIST_EASE_ALS") != "" {
		p := als.DefaultParams()
		if js := os.Getenv("SETLIST_PARAMS"); js != "" {
			if err := json.Unmarshal([]byte(js), &p); err != nil {
				t.Fatal(err)
			}
		}
		start := time.Now()
		model, err := als.Train(ctx, train, p, nil)
		if err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		met, err := als.Evaluate(ctx, model.UserFactors, model.ItemSide(), train, test, 5, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("als %+v: %v, train %v", p, met, took.Round(time.Millisecond))
	}
}
