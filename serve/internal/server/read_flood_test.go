package server_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/serve/internal/fixture"
	"github.com/setlist/setlist/serve/internal/server"
	"github.com/setlist/setlist/serve/internal/servertest"
)

// Issue 24 items 1 and 3: one client's read-only flood must not slow other
// users' fold-ins. How much it does is a figure (serve/bench/figures,
// flood_test.go); what make test checks here is each fix's mechanism.

// probeUsers adds n users with three likes each over the world's first 40
// songs (fixture.LikingUsers: each one's first answer is a real fold-in).
func probeUsers(t testing.TB, w *world, prefix string, n int) []setlist.UserID {
	t.Helper()
	ids, err := fixture.LikingUsers(context.Background(), w.db, prefix, n, w.songs[:40])
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestModelReportOncePerPollInterval (issue 24 item 1): 32 parallel GET
// /v1/model for 2 s, each report holding a PostgreSQL connection for
// 100 ms. Before, every request computed its own report and the reports
// took every pooled connection, so other users' fold-ins waited for one
// (TestModelReportFlood, a figure in serve/bench/figures, measures them).
// The report is now computed once per snapshot and poll interval, through
// one gate: the metrics are read at most once per poll interval, and none
// of the requests fails.
func TestModelReportOncePerPollInterval(t *testing.T) {
	w := newWorld(t)
	db := &servertest.SlowReportsDB{DB: w.db, Hold: 100 * time.Millisecond}
	in := w.startDeps(t, fastConfig(), func(d *server.Deps) { d.DB = db })
	in.waitModel(t, 1)
	var models, failed atomic.Int32
	start := time.Now()
	end := start.Add(2 * time.Second)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for time.Now().Before(end) {
				r, err := in.try(http.MethodGet, "/v1/model", nil)
				models.Add(1)
				if err != nil || r.status != http.StatusOK {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	// The poll interval is 200 ms: one computation per 200 ms at most, and
	// a few more for the flight that spans a boundary.
	reads, most := db.Reads.Load(), int32(took/(200*time.Millisecond))+3
	t.Logf("%d GET /v1/model (%d failed) read the online metrics %d times in %v", models.Load(), failed.Load(), reads, took.Round(time.Millisecond))
	if reads > most {
		t.Errorf("%d GET /v1/model read the online metrics %d times in %v; want at most %d (once per poll interval)", models.Load(), reads, took, most)
	}
	if failed.Load() > 0 {
		t.Errorf("%d of %d GET /v1/model failed", failed.Load(), models.Load())
	}
}

// TestUnknownUserBeforeSlot (issue 24 item 3): a made-up user id answers
// 404 from the existence check even while every fold-in slot is taken, and
// is counted as unknown_user, not as a solved fold-in.
func TestUnknownUserBeforeSlot(t *testing.T) {
	w := newWorld(t)
	g := &gatedDB{DB: w.db, user: "folder", gate: make(chan struct{})}
	cfg := fastConfig()
	cfg.Recs.FoldInConcurrency = 1
	cfg.API.RequestTimeout = 2 * time.Second
	in := w.startDeps(t, cfg, func(d *server.Deps) { d.DB = g })
	in.waitModel(t, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = in.try(http.MethodGet, "/v1/users/folder/recommendations?n=5", nil)
	}()
	defer func() { close(g.gate); <-done }()
	waitFor(t, "folder's fold-in to hold the only slot", func() bool { return g.inside.Load() == 1 })
	solved := in.metric(t, `setlist_serve_foldin_requests_total{outcome="solved"}`)
	for i := range 20 {
		start := time.Now()
		r := in.get(t, fmt.Sprintf("/v1/users/made-up-%d/recommendations?n=5", i))
		wantStatus(t, r, http.StatusNotFound)
		if took := time.Since(start); took > time.Second {
			t.Fatalf("a made-up id took %v: it waited for a fold-in slot", took)
		}
	}
	if n := in.metric(t, `setlist_serve_foldin_requests_total{outcome="unknown_user"}`); n != 20 {
		t.Errorf("20 made-up ids counted %v unknown_user; want 20", n)
	}
	if n := in.metric(t, `setlist_serve_foldin_requests_total{outcome="solved"}`); n != solved {
		t.Errorf("made-up ids counted as solved fold-ins: %v → %v", solved, n)
	}
}
