package figures

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/keyspace/redistest"
	"github.com/setlist/setlist/internal/model"
	"github.com/setlist/setlist/internal/postgres"
	"github.com/setlist/setlist/internal/postgres/pgtest"
	"github.com/setlist/setlist/serve/internal/api"
	"github.com/setlist/setlist/serve/internal/fixture"
	"github.com/setlist/setlist/serve/internal/recs"
	"github.com/setlist/setlist/serve/internal/server"
	"github.com/setlist/setlist/serve/internal/servertest"
)

// Issue 24 items 1, 3 and 4: one client's read-only flood must not slow
// other users' fold-ins. Each test measures other users' fold-ins quiet,
// then under the flood, and asserts their p50/p99 stay within 2× (with a
// floor, so a 1 ms quiet p50 on an idle machine does not make 3 ms a
// failure) and that none of them fails.

// floodWorld is a flood figure's stores: a fresh database with 60 songs
// and version 1 published over the first 40 (8 factors, a popular list of
// songs 20–39), as serve/internal/server's test world has them (without
// its few named users, whom no flood asks for).
type floodWorld struct {
	db     *postgres.DB
	rdb    redis.UniversalClient
	prefix string
	songs  []setlist.SongID
}

func newFloodWorld(tb testing.TB) *floodWorld {
	tb.Helper()
	ctx := context.Background()
	w := &floodWorld{db: pgtest.DB(tb)}
	w.rdb, w.prefix = redistest.Client(tb)
	var err error
	if w.songs, err = fixture.Songs(ctx, w.db, 0, 60); err != nil {
		tb.Fatal(err)
	}
	v := fixture.Version{Version: 1, Songs: w.songs[:40], Factors: 8, Seed: 1, K: 10,
		Metrics: map[string]float64{"ndcg@5": 0.1, "precision@5": 0.05}}
	for i, s := range v.Songs[20:] {
		v.Popular = append(v.Popular, model.Rec{Song: s, Score: float32(50 - i)})
	}
	if err := fixture.Publish(ctx, w.rdb, w.prefix, v); err != nil {
		tb.Fatal(err)
	}
	return w
}

// start runs serve on w's stores, reading PostgreSQL through db (nil: w's
// own database).
func (w *floodWorld) start(tb testing.TB, cfg server.Config, db server.DB) *servertest.Instance {
	tb.Helper()
	deps := server.Deps{DB: w.db, Redis: w.rdb, RedisPrefix: w.prefix}
	if db != nil {
		deps.DB = db
	}
	return servertest.Start(tb, cfg, deps)
}

// probeUsers adds n users with three likes each over w's first 40 songs
// (fixture.LikingUsers: each one's first answer is a real fold-in).
func (w *floodWorld) probeUsers(tb testing.TB, prefix string, n int) []setlist.UserID {
	tb.Helper()
	ids, err := fixture.LikingUsers(context.Background(), w.db, prefix, n, w.songs[:40])
	if err != nil {
		tb.Fatal(err)
	}
	return ids
}

// probeClient sends the probes and the floods' requests. Unlike
// serve/internal/server's tests it does not check the exchanges against
// the OpenAPI document (the tests there do): the checks' CPU would be
// measured with the latency.
var probeClient = &http.Client{Timeout: 10 * time.Second}

// latencies are one phase's probe results.
type latencies struct {
	took  []time.Duration
	codes map[int]int
}

func (l latencies) quantile(q float64) time.Duration {
	s := slices.Clone(l.took)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

// probePhase sends one fold-in request for a user not asked before every
// interval (open loop: a slow answer does not delay the next probe) for d,
// and returns what they saw. send does the request.
func probePhase(users []setlist.UserID, next *atomic.Int32, d, interval time.Duration, send func(u setlist.UserID) (int, error)) latencies {
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		out = latencies{codes: map[int]int{}}
	)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for end := time.Now().Add(d); time.Now().Before(end); <-tick.C {
		i := int(next.Add(1)) - 1
		if i >= len(users) {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			code, err := send(users[i])
			took := time.Since(start)
			if err != nil {
				code = -1
			}
			mu.Lock()
			out.took = append(out.took, took)
			out.codes[code]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// floodFigure runs a quiet phase and a flood phase of probes (flood runs
// until its context ends), logs the figure and checks other users'
// answers: all 200, p50 and p99 within 2× of quiet (floors: 25 ms and 250 ms, so a 1 ms quiet p50 on an idle machine
// does not make 3 ms a failure). Latency is a figure, not a test: under the
// race detector on a loaded 2-core machine the quiet phase alone reaches
// 200 ms, so make test asserts each fix's mechanism instead
// (TestModelReportOncePerPollInterval, TestFairSlotsPerClient,
// TestUnknownUserBeforeSlot, TestSimilarComputedOnce).
func floodFigure(t *testing.T, name string, users []setlist.UserID, send func(u setlist.UserID) (int, error), flood func(ctx context.Context)) {
	t.Helper()
	quiet, loud := measureFlood(t, name, users, send, flood)
	checkFlood(t, name, quiet, loud)
}

// checkFlood holds a flood's figure to the goal (its callers run
// only when figures are asked for: skipUnlessFigures).
func checkFlood(t *testing.T, name string, quiet, loud latencies) {
	t.Helper()
	q50, q99, l50, l99 := quiet.quantile(0.5), quiet.quantile(0.99), loud.quantile(0.5), loud.quantile(0.99)
	if quiet.codes[http.StatusOK] != len(quiet.took) || loud.codes[http.StatusOK] != len(loud.took) {
		t.Errorf("%s: other users' answers not all 200: quiet %v, under the flood %v", name, quiet.codes, loud.codes)
	}
	if l50 > 2*max(q50, 25*time.Millisecond) || l99 > 2*max(q99, 250*time.Millisecond) {
		t.Errorf("%s: other users' p50/p99 went from %v/%v to %v/%v under the flood; want within 2×", name, q50, q99, l50, l99)
	}
}

// floodWorkers runs fn in workers goroutines, each again and again until
// ctx ends: a flood of workers requests at once.
func floodWorkers(ctx context.Context, workers int, fn func()) {
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				fn()
			}
		})
	}
	wg.Wait()
}

// skipUnlessFigures skips a harness whose only point is its figure.
func skipUnlessFigures(t *testing.T) {
	t.Helper()
	if os.Getenv("SETLIST_FIGURES") == "" {
		t.Skip("a figure harness: SETLIST_FIGURES=1 go test ./serve/bench/figures/ -run '^" + t.Name() + "$' -v -count 1")
	}
}

// Each probe asks for a user not asked before: probesNeeded covers both
// phases.
const (
	probePhaseLength = 3 * time.Second
	probeInterval    = 10 * time.Millisecond
	probesNeeded     = 2*int(probePhaseLength/probeInterval) + 50
)

// measureFlood probes other users 3 s quiet and 3 s under the flood, 100
// a second, and logs the figure. 300 probes a phase make p99 the third
// slowest: with 100, it was the slowest, and one scheduler hiccup decided
// it.
func measureFlood(tb testing.TB, name string, users []setlist.UserID, send func(u setlist.UserID) (int, error), flood func(ctx context.Context)) (quiet, loud latencies) {
	tb.Helper()
	var next atomic.Int32
	quiet = probePhase(users, &next, probePhaseLength, probeInterval, send)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		flood(ctx)
	}()
	time.Sleep(100 * time.Millisecond) // the flood is under way
	loud = probePhase(users, &next, probePhaseLength, probeInterval, send)
	cancel()
	wg.Wait()
	q50, q99, l50, l99 := quiet.quantile(0.5), quiet.quantile(0.99), loud.quantile(0.5), loud.quantile(0.99)
	tb.Logf("%s: other users' fold-ins quiet p50 %v p99 %v (%d), under the flood p50 %v p99 %v (%d): %.1f× / %.1f×; codes %v",
		name, q50, q99, len(quiet.took), l50, l99, len(loud.took), float64(l50)/float64(q50), float64(l99)/float64(q99), loud.codes)
	return quiet, loud
}

// TestModelReportFlood (issue 24 item 1): 32 parallel GET /v1/model, each
// report holding a PostgreSQL connection for 100 ms, while other users ask
// for fold-ins. Before, the reports took every pooled connection: fold-ins
// waited for one (p50 16 ms → 3.8 s, 30 of 120 answered 503). The report is
// now computed once per snapshot and poll interval, through one gate
// (serve/internal/server's TestModelReportOncePerPollInterval checks it
// in make test), and each client's report answers have a rate
// (--report-rate, serve's default here; TestReportRatePerClient):
// without it the cached answers, ~14,000 a second, still took the cores.
// SETLIST_FIGURES_REPORT_RATE=off runs the flood without the rate, for
// the before figure.
func TestModelReportFlood(t *testing.T) {
	skipUnlessFigures(t)
	w := newFloodWorld(t)
	db := &servertest.SlowReportsDB{DB: w.db, Hold: 100 * time.Millisecond}
	cfg := servertest.FastConfig()
	if os.Getenv("SETLIST_FIGURES_REPORT_RATE") != "off" { // the before figure
		cfg.API.ReportRate, cfg.API.ReportBurst = api.DefaultReportRate, api.DefaultReportBurst
	}
	in := w.start(t, cfg, db)
	in.WaitModel(t, 1)
	users := w.probeUsers(t, "probe", probesNeeded)
	var codes floodCodes
	start := time.Now()
	floodFigure(t, "32 × GET /v1/model", users, func(u setlist.UserID) (int, error) {
		r, err := servertest.Do(probeClient, http.MethodGet, in.Base+"/v1/users/"+string(u)+"/recommendations?n=5", nil)
		return r.Status, err
	}, func(ctx context.Context) {
		floodWorkers(ctx, 32, func() {
			r, err := servertest.Do(probeClient, http.MethodGet, in.Base+"/v1/model", nil)
			codes.add(r.Status, err)
		})
	})
	t.Logf("GET /v1/model answers by status %v read the online metrics %d times in %v", &codes, db.Reads.Load(), time.Since(start).Round(time.Millisecond))
	for code, n := range codes.codes {
		if code != http.StatusOK && code != http.StatusTooManyRequests {
			t.Errorf("%d GET /v1/model answered %d; want 200, or 429 over the report rate", n, code)
		}
	}
}

// TestNoFlood is the harness's control: the same two phases with no flood
// at all. Its ratios are what the machine alone moves other users' figures
// by between two phases, the noise every flood figure carries.
func TestNoFlood(t *testing.T) {
	skipUnlessFigures(t)
	w := newFloodWorld(t)
	in := w.start(t, servertest.FastConfig(), nil)
	in.WaitModel(t, 1)
	users := w.probeUsers(t, "probe", probesNeeded)
	measureFlood(t, "no flood", users, func(u setlist.UserID) (int, error) {
		r, err := servertest.Do(probeClient, http.MethodGet, in.Base+"/v1/users/"+string(u)+"/recommendations?n=5", nil)
		return r.Status, err
	}, func(ctx context.Context) { <-ctx.Done() })
}

// tokenGet is a GET with a bearer token.
func tokenGet(in *servertest.Instance, path, token string) (int, error) {
	return tokenGetWith(probeClient, in, path, token)
}

// tokenGetWith is tokenGet through c.
func tokenGetWith(c *http.Client, in *servertest.Instance, path, token string) (int, error) {
	req, err := http.NewRequest(http.MethodGet, in.Base+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	_, err = io.Copy(io.Discard, res.Body)
	return res.StatusCode, err
}

// floodClients is a flood figure's clients: one read token floods, and
// the probed users are spread over probeClients other read tokens (other
// users are other clients: each asks 50/probeClients fold-ins a second,
// a backend's few users a second). cfg gets serve's default scoring and
// similar-songs rates and requires the tokens. probe is the token of the next probe.
func floodClients(tb testing.TB, cfg *server.Config) (flood string, probe func() string) {
	tb.Helper()
	const probeClients = 8
	flood = "flood-token-0123456789"
	lines := []string{"read " + flood}
	probes := make([]string, probeClients)
	for i := range probes {
		probes[i] = fmt.Sprintf("probe-token-%02d-0123456789", i)
		lines = append(lines, "read "+probes[i])
	}
	tokens, err := api.ParseTokens(strings.NewReader(strings.Join(lines, "\n")), "tokens")
	if err != nil {
		tb.Fatal(err)
	}
	cfg.API.Tokens, cfg.API.RequireAuth = tokens, true
	cfg.Recs.ScoringRate, cfg.Recs.ScoringBurst = recs.DefaultScoringRate, recs.DefaultScoringBurst
	cfg.Recs.SimilarRate, cfg.Recs.SimilarBurst = recs.DefaultSimilarRate, recs.DefaultSimilarBurst
	var next atomic.Int32
	return flood, func() string { return probes[int(next.Add(1))%probeClients] }
}

// floodCodes counts a flood's answers by status.
type floodCodes struct {
	mu    sync.Mutex
	codes map[int]int
}

func (f *floodCodes) add(code int, err error) {
	if err != nil {
		code = -1
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.codes == nil {
		f.codes = map[int]int{}
	}
	f.codes[code]++
}

func (f *floodCodes) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fmt.Sprint(f.codes)
}

// TestClientSpreadFlood (issue 24 item 3): one client (one read token), 64
// requests at once, each for a different real user whose fold-in takes
// 20 ms, n=100 (beyond the stored depth: every one scored), while other
// clients' users ask for theirs. Fair queuing was per user only: the probe
// was one user among 65 in the ring and waited for 16 solves. Per client,
// it waits for at most one; and with the client's scoring rate
// (--scoring-rate) its requests beyond it wait for their turn, asleep,
// instead of being refused at once and re-sent in a busy loop.
func TestClientSpreadFlood(t *testing.T) {
	skipUnlessFigures(t)
	w := newFloodWorld(t)
	cfg := servertest.FastConfig()
	floodToken, probeToken := floodClients(t, &cfg)
	in := w.start(t, cfg, &servertest.SlowUsersDB{DB: w.db, Prefix: "spread", Delay: 20 * time.Millisecond})
	in.WaitModel(t, 1)
	users := w.probeUsers(t, "probe", probesNeeded)
	spread := w.probeUsers(t, "spread", 1500)
	// The flood's answers are not checked against the OpenAPI document,
	// as in similarFlood: checking thousands took the 2 cores from the
	// latency measured (in the first figures, up to half of the process's
	// CPU was the flood's checks).
	plain := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var next atomic.Int32
	var flooded floodCodes
	floodFigure(t, "one client × 64 users", users, func(u setlist.UserID) (int, error) {
		return tokenGet(in, "/v1/users/"+string(u)+"/recommendations?n=5", probeToken())
	}, func(ctx context.Context) {
		floodWorkers(ctx, 64, func() {
			u := spread[int(next.Add(1))%len(spread)]
			flooded.add(tokenGetWith(plain, in, "/v1/users/"+string(u)+"/recommendations?n=100", floodToken))
		})
	})
	t.Logf("the flood's answers by status: %v", &flooded)
}
