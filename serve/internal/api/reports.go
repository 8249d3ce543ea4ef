package api

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/setlist/setlist"
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
