package server_test

import (
	"net/http"
	"testing"
)

// TestReportRatePerClient (issue 24 item 1): GET /v1/model and GET
// /v1/experiments answers, cached ones included, spend a token of the
// client's --report-rate, so a client looping on the cached report is
// bounded over time; the next one waits up to its deadline and gets 429
// with Retry-After. Another client is served meanwhile, and
// recommendations spend nothing of it. Counting, not timing: one token in
// 1000 s. Before, cached reports had no bound (TestModelReportFlood: 32
// connections, ~14,000 answers a second, other users' fold-in p99 7–13×
// of quiet).
func TestReportRatePerClient(t *testing.T) {
	w := newWorld(t)
	cfg := rateConfig(t)
	cfg.API.ReportRate, cfg.API.ReportBurst = 0.001, 3
	in := w.start(t, cfg, nil)
	in.waitModel(t, 1)
	for i, path := range []string{"/v1/model", "/v1/experiments", "/v1/model"} {
		if code, _ := tokenStatus(t, in, path, floodToken); code != http.StatusOK {
			t.Fatalf("report %d of the burst of 3 (%s): %d", i+1, path, code)
		}
	}
	for _, path := range []string{"/v1/model", "/v1/experiments"} {
		wantHeldRefusal(t, in, path, floodToken)
	}
	for range 10 {
		if code, _ := tokenStatus(t, in, "/v1/users/batchy/recommendations?n=5", floodToken); code != http.StatusOK {
			t.Fatalf("recommendations for the throttled client: %d; want 200", code)
		}
	}
	for i := range 3 {
		if code, _ := tokenStatus(t, in, "/v1/model", otherToken); code != http.StatusOK {
			t.Fatalf("another client's report %d: %d; want 200", i+1, code)
		}
	}
	if got := in.metric(t, `setlist_serve_scored_throttled_total{outcome="refused",work="report"}`); got != 2 {
		t.Errorf("refused reports counted %v; want 2", got)
	}
}
