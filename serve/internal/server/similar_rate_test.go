package server_test

import (
	"fmt"
	"net/http"
	"testing"
)

// TestSimilarRatePerClient (issue 24 item 4): similar-song answers, cached
// ones included, spend a token of the client's --similar-rate, so a client
// looping on a few cached songs is bounded over time; the next one waits
// up to its deadline and gets 429 with Retry-After. Another client is
// served meanwhile, and recommendations spend nothing of it. Counting, not
// timing: one token in 1000 s. Before, cached similar answers had no bound
// (TestSimilarFloodCached: other users' p50 2.1–2.4× of quiet).
func TestSimilarRatePerClient(t *testing.T) {
	w := newWorld(t)
	cfg := rateConfig(t)
	cfg.Recs.SimilarRate, cfg.Recs.SimilarBurst = 0.001, 4
	in := w.start(t, cfg, nil)
	in.waitModel(t, 1)
	similar := fmt.Sprintf("/v1/songs/%d/similar?n=5", w.songs[3])
	// The burst: the first answer computes the list, the other three are
	// cached answers, and each spends a token.
	for i := range 4 {
		if code, _ := tokenStatus(t, in, similar, floodToken); code != http.StatusOK {
			t.Fatalf("similar answer %d of the burst of 4: %d", i+1, code)
		}
	}
	wantHeldRefusal(t, in, similar, floodToken) // a cached answer
	for range 10 {
		if code, _ := tokenStatus(t, in, "/v1/users/batchy/recommendations?n=5", floodToken); code != http.StatusOK {
			t.Fatalf("recommendations for the throttled client: %d; want 200", code)
		}
	}
	for i := range 4 {
		if code, _ := tokenStatus(t, in, similar, otherToken); code != http.StatusOK {
			t.Fatalf("another client's similar answer %d: %d; want 200", i+1, code)
		}
	}
	if got := in.metric(t, `setlist_serve_scored_throttled_total{outcome="refused",work="similar_read"}`); got != 1 {
		t.Errorf("refused similar reads counted %v; want 1", got)
	}
	if got := in.metric(t, `setlist_serve_similar_requests_total{outcome="cached"}`); got != 7 {
		t.Errorf("cached similar answers %v; want 7 (3 of the flood client's, 4 of the other's)", got)
	}
}
