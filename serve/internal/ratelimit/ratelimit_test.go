package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// TestBuckets checks the token bucket arithmetic and that the buckets'
// memory stays bounded under a flood of distinct sources.
func TestBuckets(t *testing.T) {
	now := time.Unix(1000, 0)
	l := New[netip.Addr](2, 3)
	l.now = func() time.Time { return now }
	a := netip.MustParseAddr("192.0.2.1")
	for i := range 3 {
		if ok, _ := l.Take(a); !ok {
			t.Fatalf("request %d within the burst was refused", i+1)
		}
	}
	ok, wait := l.Take(a)
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("4th request: ok %v, wait %v; want refused, 500ms until a token", ok, wait)
	}
	if ok, _ := l.Take(netip.MustParseAddr("192.0.2.2")); !ok {
		t.Fatal("another client shares the first one's bucket")
	}
	now = now.Add(500 * time.Millisecond)
	if ok, _ := l.Take(a); !ok {
		t.Fatal("no token after 1/rate")
	}
	if New[netip.Addr](0, 10) != nil {
		t.Fatal("rate 0 should disable the limiter")
	}

	// A flood of distinct addresses, all still draining (not evictable as
	// refilled), must not grow the map past MaxBuckets.
	for i := range 2 * MaxBuckets {
		var b [16]byte
		b[0], b[1] = 0x20, 0x01
		b[12], b[13], b[14], b[15] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
		l.Take(netip.AddrFrom16(b))
	}
	if n := l.Len(); n > MaxBuckets {
		t.Fatalf("%d buckets after a flood, want ≤ %d", n, MaxBuckets)
	}
	// Once time passes, refilled buckets are the ones evicted: the next
	// eviction drops them all, not an arbitrary tenth.
	now = now.Add(time.Hour)
	for i := 0; ; i++ {
		before := l.Len()
		l.Take(netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)}))
		if n := l.Len(); n < before {
			if n > i+1 {
				t.Fatalf("eviction after an hour idle left %d buckets, want only the %d new clients'", n, i+1)
			}
			break
		}
		if i > MaxBuckets {
			t.Fatal("no eviction at the bound")
		}
	}
}

// TestWaitCounts: a client gets exactly burst + rate×T tokens at once in T
// (the clock is the test's: counting, not timing); the next request, whose
// token would come after its deadline, is refused with the time until
// one; another client is served at once meanwhile.
func TestWaitCounts(t *testing.T) {
	now := time.Now()
	l := New[string](4, 5) // 4 a second, burst 5
	l.now = func() time.Time { return now }
	// A deadline the refill cannot meet (a token takes 250 ms; the clock
	// does not move while the test waits for it).
	soon := func() context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		t.Cleanup(cancel)
		return ctx
	}
	served := func(client string) int {
		n := 0
		for {
			waited, err := l.Wait(soon(), client, 8)
			if err != nil {
				var le *LimitedError
				if !errors.As(err, &le) || !errors.Is(err, ErrLimited) || le.QueueFull || le.RetryAfter <= 0 {
					t.Fatalf("%s's request %d: %v; want a *LimitedError refused at its deadline, with a retry time", client, n+1, err)
				}
				return n
			}
			if waited != 0 {
				t.Fatalf("%s's request %d waited %v; want served at once or refused", client, n+1, waited)
			}
			n++
		}
	}
	if n := served("a"); n != 5 {
		t.Fatalf("a full bucket served %d at once; want the burst, 5", n)
	}
	if n := served("b"); n != 5 {
		t.Fatalf("b, another client, served %d while a was empty; want 5", n)
	}
	now = now.Add(1500 * time.Millisecond) // 6 tokens at 4 a second, capped at the burst: 5
	if n := served("a"); n != 5 {
		t.Fatalf("after 1.5 s a served %d; want 5 (the burst caps the refill)", n)
	}
	now = now.Add(750 * time.Millisecond)
	if n := served("a"); n != 3 {
		t.Fatalf("after 0.75 s a served %d; want 3 (4 a second)", n)
	}
}

// TestWaitReservesInOrder: requests over the rate wait for tokens the
// refill brings, in arrival order (the n-th waits n/rate); beyond
// maxWaiting a request is refused at once; a request that gives up returns
// its reserved token.
func TestWaitReservesInOrder(t *testing.T) {
	now := time.Now()
	l := New[string](100, 1) // a token every 10 ms
	l.now = func() time.Time { return now }
	if _, err := l.Wait(context.Background(), "a", 3); err != nil {
		t.Fatal(err)
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		waited []time.Duration
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for range 3 {
		wg.Go(func() {
			d, err := l.Wait(context.Background(), "a", 3)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			waited = append(waited, d)
			mu.Unlock()
		})
	}
	waitFor(t, func() bool { return l.waiting("a") == 3 })
	if _, err := l.Wait(ctx, "a", 3); !errors.As(err, new(*LimitedError)) || !err.(*LimitedError).QueueFull {
		t.Fatalf("a 4th waiting request: %v; want refused at once, queue full", err)
	}
	wg.Wait()
	// The clock stood still: the three reserved the next three tokens.
	got := map[time.Duration]bool{}
	for _, d := range waited {
		got[d] = true
	}
	if len(got) != 3 || !got[10*time.Millisecond] || !got[20*time.Millisecond] || !got[30*time.Millisecond] {
		t.Fatalf("waited %v; want 10, 20 and 30 ms", waited)
	}
	// A reservation given up is returned: tokens stand at -3 (three
	// reserved and spent, none refilled); one gives up, the next reserves
	// the same place.
	gone, giveUp := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { _, err := l.Wait(gone, "a", 3); done <- err }()
	waitFor(t, func() bool { return l.waiting("a") == 1 })
	giveUp()
	if err := <-done; !errors.Is(err, ErrLimited) {
		t.Fatalf("a request that gave up: %v; want ErrLimited", err)
	}
	if d, err := l.Wait(context.Background(), "a", 3); err != nil || d != 40*time.Millisecond {
		t.Fatalf("after a reservation was given up: waited %v, %v; want 40 ms (its place)", d, err)
	}
}

// TestClaimLeavesTimeForTheWork: a token is reserved only when it comes
// within three quarters of the time left to the request's deadline (the
// rest is for the work it admits); else the request reserves nothing and
// is held to its deadline. Without a deadline it always reserves.
func TestClaimLeavesTimeForTheWork(t *testing.T) {
	now := time.Now()
	for _, c := range []struct {
		left     time.Duration
		bounded  bool
		reserved bool
	}{
		{400 * time.Millisecond, true, true},  // 250 ≤ 300
		{333 * time.Millisecond, true, false}, // 250 > 249.75
		{200 * time.Millisecond, true, false}, // beyond the deadline itself
		{0, false, true},                      // no deadline
		{1000 * time.Millisecond, true, true}, // well within
		{334 * time.Millisecond, true, true},  // 250 ≤ 250.5
	} {
		l := New[string](4, 1) // a token every 250 ms
		l.Take("a")
		_, wait, reserved, err := l.claim("a", now, c.left, c.bounded, 8)
		if err != nil || wait != 250*time.Millisecond || reserved != c.reserved {
			t.Errorf("%v left (bounded %v): wait %v reserved %v, %v; want 250ms reserved %v", c.left, c.bounded, wait, reserved, err, c.reserved)
		}
		if b := l.buckets["a"]; b.waiting != 1 || (b.tokens < 0) != c.reserved {
			t.Errorf("%v left: %d waiting, %g tokens; want 1 waiting, a token reserved: %v", c.left, b.waiting, b.tokens, c.reserved)
		}
	}
}

func (l *Buckets[K]) waiting(k K) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := l.buckets[k]; b != nil {
		return b.waiting
	}
	return 0
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); !ok(); time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("timed out")
		}
	}
}

// TestOutcome checks the metric label each of Wait's results gets.
func TestOutcome(t *testing.T) {
	for _, tc := range []struct {
		name   string
		waited time.Duration
		err    error
		want   string
	}{
		{"a token at once", 0, nil, ""},
		{"waited for one", 30 * time.Millisecond, nil, "delayed"},
		{"none before the deadline", 0, &LimitedError{Rate: 1, Burst: 1}, "refused"},
		{"wrapped refusal", 0, fmt.Errorf("report: %w", &LimitedError{Rate: 1, Burst: 1}), "refused"},
		{"queue full", 0, fmt.Errorf("report: %w", &LimitedError{QueueFull: true}), "queue_full"},
		{"another error", 0, context.Canceled, "refused"},
	} {
		if got := Outcome(tc.waited, tc.err); got != tc.want {
			t.Errorf("%s: Outcome(%v, %v) = %q; want %q", tc.name, tc.waited, tc.err, got, tc.want)
		}
	}
}
