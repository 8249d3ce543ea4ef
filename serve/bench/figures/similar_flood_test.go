package figures

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/serve/internal/fixture"
	"github.com/setlist/setlist/serve/internal/servertest"
)

// bigCatalog publishes version 2 over w's first 40 songs and extra more
// (64 factors), so similar songs and fold-ins scan a catalog large enough
// to cost milliseconds of CPU each, as a production one does; it returns
// the extra songs.
func bigCatalog(tb testing.TB, w *floodWorld, extra int) []setlist.SongID {
	tb.Helper()
	ctx := context.Background()
	more, err := fixture.Songs(ctx, w.db, 1000, extra)
	if err != nil {
		tb.Fatal(err)
	}
	v := fixture.Version{Version: 2, Songs: append(append([]setlist.SongID{}, w.songs[:40]...), more...), Factors: 64, Seed: 2, K: 10}
	if err := fixture.Publish(ctx, w.rdb, w.prefix, v); err != nil {
		tb.Fatal(err)
	}
	return more
}

// similarFlood starts serve with two read tokens over a 40,000-song
// version, then measures other users' fold-ins (the probe token) quiet and
// while the flood token sends 64 requests at once for the similar songs
// (n=100) of seeds(i), the i-th request's song. warm > 0 asks for seeds
// 0 … warm-1 first, one at a time from the flood token (at its scoring
// rate), so the flood measured is of cached lists only.
func similarFlood(tb testing.TB, warm int, seeds func(more []setlist.SongID, i int) setlist.SongID) (quiet, loud latencies) {
	w := newFloodWorld(tb)
	more := bigCatalog(tb, w, 40000)
	cfg := servertest.FastConfig()
	floodToken, probeToken := floodClients(tb, &cfg)
	in := w.start(tb, cfg, nil)
	in.WaitModel(tb, 2)
	users := w.probeUsers(tb, "probe", probesNeeded)
	// The flood's answers are not checked against the OpenAPI document
	// (serve/internal/server's TestSimilarComputedOnce's are): each is a 100-song list, and
	// checking thousands would take the 2 cores from the latency measured.
	plain := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for i := range warm {
		if code, err := tokenGetWith(plain, in, fmt.Sprintf("/v1/songs/%d/similar?n=100", seeds(more, i)), floodToken); err != nil || code != http.StatusOK {
			tb.Fatalf("warming seed %d: %d %v", i, code, err)
		}
	}
	var next, flooded, ok atomic.Int32
	quiet, loud = measureFlood(tb, "one client × 64 similar songs", users, func(u setlist.UserID) (int, error) {
		return tokenGet(in, "/v1/users/"+string(u)+"/recommendations?n=5", probeToken())
	}, func(ctx context.Context) {
		floodWorkers(ctx, 64, func() {
			song := seeds(more, int(next.Add(1)))
			code, _ := tokenGetWith(plain, in, fmt.Sprintf("/v1/songs/%d/similar?n=100", song), floodToken)
			flooded.Add(1)
			if code == http.StatusOK {
				ok.Add(1)
			}
		})
	})
	tb.Logf("the flood sent %d requests, %d answered 200", flooded.Load(), ok.Load())
	return quiet, loud
}

// TestSimilarFlood (issue 24 item 4): one client (one read token), 64
// requests at once for the similar songs (n=100) of 64 songs (one a
// worker: 64 × GET /v1/songs/{id}/similar?n=100), in a 40,000-song catalog, while another client's users ask
// for fold-ins. Similar songs had no bound: every request scanned the
// catalog on its own goroutine, 64 at once on the machine's cores (other
// users' p50 13 → 399 ms in the issue). Lists are now cached per loaded
// version and catalog sequence and computed once however many ask.
// BenchmarkSimilarFloodDistinct measures the worst case, every request a
// song not asked before, which only the slots bound.
func TestSimilarFlood(t *testing.T) {
	skipUnlessFigures(t)
	quiet, loud := similarFlood(t, 0, func(more []setlist.SongID, i int) setlist.SongID { return more[i%64] })
	checkFlood(t, "64 × similar", quiet, loud)
}

// TestSimilarFloodCached is TestSimilarFlood with the 64 lists computed
// before the flood: the flood is then cached answers only, which spend no
// scoring token (with the default --scoring-rate TestSimilarFlood's 2 s
// flood is mostly its first 64 lists waiting for their turn, 20 a second).
// What it measures is the cost of cheap reads no limit bounds.
func TestSimilarFloodCached(t *testing.T) {
	skipUnlessFigures(t)
	quiet, loud := similarFlood(t, 64, func(more []setlist.SongID, i int) setlist.SongID { return more[i%64] })
	checkFlood(t, "64 × cached similar", quiet, loud)
}

// BenchmarkSimilarFloodDistinct is TestSimilarFlood with every request for
// a song not asked before (nothing cached helps): the similar slots hold
// the flood to half the cores, and the figure is what the other half
// leaves other users on this machine. It reports other users' p50 and p99
// quiet and under the flood (ms).
func BenchmarkSimilarFloodDistinct(b *testing.B) {
	for range b.N {
		quiet, loud := similarFlood(b, 0, func(more []setlist.SongID, i int) setlist.SongID { return more[i%len(more)] })
		ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
		b.ReportMetric(ms(quiet.quantile(0.5)), "quiet-p50-ms")
		b.ReportMetric(ms(quiet.quantile(0.99)), "quiet-p99-ms")
		b.ReportMetric(ms(loud.quantile(0.5)), "flood-p50-ms")
		b.ReportMetric(ms(loud.quantile(0.99)), "flood-p99-ms")
	}
}
