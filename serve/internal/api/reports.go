package api

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/serve/internal/ratelimit"
)

// Read-only reports (GET /v1/model and GET /v1/experiments) are several
// registry queries each, the online metrics a scan of days of outcomes: a
// hundred milliseconds of a PostgreSQL connection on a busy database. The
// web page asks for /v1/model on every load, and a read token may ask in
// parallel as often as it likes: 32 at once held every pooled connection
// and made other users' fold-ins and writes time out (issue 24 item 1).
//
// So a report is computed at most once per maxAge for what it depends on
// in memory (the served snapshot, the running experiment), however many
// ask: requests arriving while it is computed wait for that computation
// (singleflight), and every report shares one gate, so the reports
// together hold at most reportConcurrency connections, whatever the load.
// The rest of the pool stays with fold-ins and writes.

// ErrReportThrottled means a client asked for reports faster than its
// --report-rate and no token came before its deadline: a 429 with
// Retry-After (the error also wraps a *ratelimit.LimitedError saying when).
var ErrReportThrottled = errors.New("this client asks for GET /v1/model and GET /v1/experiments faster than its --report-rate")

// reportsQueuedPerClient bounds one client's report requests waiting for
// a token; beyond it, 429 at once.
const reportsQueuedPerClient = 64

// limitReports spends one of the client's report tokens (its bearer
// token, else its address: a.client), waiting for one up to the request's
// deadline while it is over its rate. Caching and singleflight bound what
// reports cost PostgreSQL; this bounds what one client's answers cost the
// cores: 32 connections looping on a cached GET /v1/model were ~14,000
// answers a second, and other users' fold-in p99 rose 7–13× (issue 24
// item 1).
func (a *API) limitReports(c *fiber.Ctx) error {
	waited, err := a.reportReads.Wait(c.UserContext(), a.client(c), reportsQueuedPerClient)
	if o := ratelimit.Outcome(waited, err); o != "" {
		a.deps.Metrics.Throttled.WithLabelValues("report", o).Inc()
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrReportThrottled, err)
	}
	return c.Next()
}

// reportConcurrency is how many report computations run at once in one
// process (each uses one connection at a time).
const reportConcurrency = 1

// ErrReportBusy means a report could not be computed before the request's
// deadline (the gate was held, or the database was slow): a 503 with
// Retry-After, like a busy fold-in.
var ErrReportBusy = fmt.Errorf("the report is being computed and did not finish in time: %w", setlist.ErrUnavailable)

// report caches one report's rendered JSON for the key it was computed
// under.
type report struct {
	maxAge  time.Duration
	timeout time.Duration // bounds one computation (detached from requests)
	gate    chan struct{} // shared by every report

	mu     sync.Mutex
	key    any
	body   []byte
	at     time.Time
	seq    uint64 // of the flight body came from: an older one never replaces it
	flight *reportFlight
	flown  uint64 // flights started
}

type reportFlight struct {
	key  any
	seq  uint64
	done chan struct{}
	body []byte
	err  error
}

// reportCompute renders a report. keep false means the answer is degraded
// (a part could not be read) and must not be served to later requests.
type reportCompute func(ctx context.Context) (body []byte, keep bool, err error)

func newReport(maxAge, timeout time.Duration, gate chan struct{}) *report {
	return &report{maxAge: maxAge, timeout: timeout, gate: gate}
}

// get returns the report for key: the cached body when it is younger than
// maxAge and was computed under key, else the result of the running
// computation for key, starting one if none runs. A computation is detached
// from the request that started it, so its waiters do not fail with the
// first one's deadline; a waiter gives up at its own.
func (r *report) get(ctx context.Context, key any, compute reportCompute) ([]byte, error) {
	r.mu.Lock()
	if r.body != nil && r.key == key && time.Since(r.at) < r.maxAge {
		body := r.body
		r.mu.Unlock()
		return body, nil
	}
	f := r.flight
	if f == nil || f.key != key {
		r.flown++
		f = &reportFlight{key: key, seq: r.flown, done: make(chan struct{})}
		r.flight = f
		go r.run(f, compute)
	}
	r.mu.Unlock()
	select {
	case <-f.done:
		return f.body, f.err
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", ErrReportBusy, ctx.Err())
	}
}

func (r *report) run(f *reportFlight, compute reportCompute) {
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	keep := false
	select {
	case r.gate <- struct{}{}:
		f.body, keep, f.err = compute(ctx)
		<-r.gate
	case <-ctx.Done():
		f.err = fmt.Errorf("%w: %w", ErrReportBusy, ctx.Err())
	}
	r.mu.Lock()
	if r.flight == f {
		r.flight = nil
	}
	if f.err == nil && keep && f.seq > r.seq {
		r.key, r.body, r.at, r.seq = f.key, f.body, time.Now(), f.seq
	}
	r.mu.Unlock()
	close(f.done)
}
