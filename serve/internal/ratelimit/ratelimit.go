// Package ratelimit is a token bucket per client: rate tokens a second,
// at most burst saved up. The API spends it on writes and failed
// authentications (refused at once when empty, keyed by address), and the
// recommendation service on scored answers (waited for up to the
// request's deadline, keyed by client: a token, else an address).
package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// MaxBuckets bounds a limiter's memory: one bucket per client seen within a
// refill period. A flood of distinct (spoofed or IPv6) sources evicts idle
// buckets first and then arbitrary ones, so the map never grows past this
// (about 100 bytes a bucket: a few MB at most); buckets with requests
// waiting on them are kept, and there are at most as many as requests in
// flight.
const MaxBuckets = 1 << 16

// Buckets is a token bucket per client key K. A nil *Buckets limits
// nothing.
type Buckets[K comparable] struct {
	rate  float64 // tokens per second
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[K]*bucket
}

type bucket struct {
	// tokens may be negative: tokens reserved by requests that wait for
	// them (Wait), each one a token the refill still owes them.
	tokens  float64
	at      time.Time // when tokens was last brought up to date
	waiting int       // requests sleeping in Wait on this bucket
}

// New returns nil (no limit) when rate ≤ 0; burst is at least 1.
func New[K comparable](rate float64, burst int) *Buckets[K] {
	if rate <= 0 {
		return nil
	}
	return &Buckets[K]{rate: rate, burst: float64(max(burst, 1)), now: time.Now, buckets: make(map[K]*bucket)}
}

// Rate is the tokens a second each client gets.
func (l *Buckets[K]) Rate() float64 { return l.rate }

// Burst is the tokens a client may save up and spend at once.
func (l *Buckets[K]) Burst() float64 { return l.burst }

// Take spends one token of k's bucket; when none is left it returns how
// long until one is.
func (l *Buckets[K]) Take(k K) (ok bool, wait time.Duration) {
	return l.spend(k, true)
}

// Allows reports whether k's bucket holds a token, without spending it
// (failed authentication is charged only once it has failed).
func (l *Buckets[K]) Allows(k K) (ok bool, wait time.Duration) {
	return l.spend(k, false)
}

func (l *Buckets[K]) spend(k K, spend bool) (ok bool, wait time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[k]
	if b == nil && !spend {
		return true, 0 // a full bucket, not worth storing yet
	}
	b = l.current(k, now)
	if b.tokens >= 1 {
		if spend {
			b.tokens--
		}
		return true, 0
	}
	return false, l.until(b)
}

// current is k's bucket brought up to now (a full one if k has none).
// l.mu is held.
func (l *Buckets[K]) current(k K, now time.Time) *bucket {
	b := l.buckets[k]
	if b == nil {
		if len(l.buckets) >= MaxBuckets {
			l.evict(now)
		}
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[k] = b
	}
	if dt := now.Sub(b.at).Seconds(); dt > 0 {
		b.tokens = math.Min(l.burst, b.tokens+dt*l.rate)
		b.at = now
	}
	return b
}

// until is how long until b holds a whole token again.
func (l *Buckets[K]) until(b *bucket) time.Duration {
	return time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

// ErrLimited is wrapped by every *LimitedError.
var ErrLimited = errors.New("over the client's rate limit")

// LimitedError is Wait's refusal: what the limit is, and when a token will
// be there again (the answer's Retry-After).
type LimitedError struct {
	Rate, Burst float64
	RetryAfter  time.Duration
	// QueueFull: refused at once, the client already had the most
	// requests waiting; else the request waited until its deadline.
	QueueFull bool
}

func (e *LimitedError) Error() string {
	how := "no token came before the request's deadline"
	if e.QueueFull {
		how = "too many of this client's requests are already waiting for one"
	}
	return fmt.Sprintf("%g a second, burst %g: %s; retry after %d s", e.Rate, e.Burst, how, RetryAfterSeconds(e.RetryAfter))
}

func (e *LimitedError) Unwrap() error { return ErrLimited }

// RetryAfterSeconds is d as a Retry-After: whole seconds, at least 1.
func RetryAfterSeconds(d time.Duration) int {
	return max(int(math.Ceil(d.Seconds())), 1)
}

// Wait spends one token of k's bucket, sleeping (no CPU, nothing held but
// the goroutine) until the refill brings it when the bucket is empty:
// waiting requests reserve tokens in arrival order, so a client over its
// rate is served at exactly its rate. It returns how long it waited, or a
// *LimitedError:
//
//   - at once, when maxWaiting of k's requests are already waiting;
//   - at ctx's end, when no token would come before three quarters of the
//     time left to ctx's deadline (the last quarter is for the work the
//     token admits: a request let in at its deadline's edge would fail
//     anyway, as a 503, having spent the token). Such a request reserves
//     nothing (it does not push later ones back), but it is held until
//     its deadline rather than refused at once: a client
//     that re-sends a refused request at once (a closed-loop flooder)
//     would otherwise turn the refusal into a busy loop of requests, each
//     parsed, authenticated and looked up before reaching the limit; held,
//     each of its connections costs one request per deadline.
//
// A request whose ctx ends while it waits for a reserved token gives the
// token back.
func (l *Buckets[K]) Wait(ctx context.Context, k K, maxWaiting int) (waited time.Duration, err error) {
	if l == nil {
		return 0, nil
	}
	now := l.now()
	deadline, bounded := ctx.Deadline()
	b, wait, reserved, err := l.claim(k, now, deadline.Sub(now), bounded, maxWaiting)
	if err != nil || (reserved && wait == 0) {
		return 0, err
	}

	var ready <-chan time.Time
	if reserved {
		t := time.NewTimer(wait)
		defer t.Stop()
		ready = t.C
	}
	select {
	case <-ready:
		l.mu.Lock()
		b.waiting--
		l.mu.Unlock()
		return wait, nil
	case <-ctx.Done():
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b = l.current(k, l.now()) // still b: a bucket with waiters is never evicted
	b.waiting--
	if reserved {
		b.tokens = math.Min(l.burst, b.tokens+1) // unused: the next request may have it
	}
	return 0, l.refusal(b, false)
}

// Outcome names what Wait did, for a metric's label: "delayed" (waited
// for a token, then admitted), "refused" (no token before the deadline),
// "queue_full" (refused at once), or "" (a token at once).
func Outcome(waited time.Duration, err error) string {
	var le *LimitedError
	switch {
	case errors.As(err, &le) && le.QueueFull:
		return "queue_full"
	case err != nil:
		return "refused"
	case waited > 0:
		return "delayed"
	}
	return ""
}

// claim is Wait's decision at now, left before the request's deadline
// (bounded false: it has none): a token at once (reserved, wait 0), a
// token reserved wait from now, none (not reserved: hold the request until
// its deadline), or a refusal at once (queue full). Unless at once or
// refused, b counts the request as waiting.
func (l *Buckets[K]) claim(k K, now time.Time, left time.Duration, bounded bool, maxWaiting int) (b *bucket, wait time.Duration, reserved bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b = l.current(k, now)
	if b.tokens >= 1 { // beyond every waiting request's reserved token
		b.tokens--
		return b, 0, true, nil
	}
	if b.waiting >= maxWaiting {
		return b, 0, false, l.refusal(b, true)
	}
	wait = l.until(b)
	reserved = !bounded || wait <= left*3/4
	if reserved {
		b.tokens--
	}
	b.waiting++
	return b, wait, reserved, nil
}

func (l *Buckets[K]) refusal(b *bucket, queueFull bool) *LimitedError {
	return &LimitedError{Rate: l.rate, Burst: l.burst, RetryAfter: l.until(b), QueueFull: queueFull}
}

// evict drops buckets that have refilled (forgetting them changes nothing),
// and if that frees nothing, an arbitrary tenth of them: under a flood of
// sources the limit gets looser for some, memory stays bounded. Buckets
// with requests waiting are kept.
func (l *Buckets[K]) evict(now time.Time) {
	for k, b := range l.buckets {
		if b.waiting == 0 && b.tokens+now.Sub(b.at).Seconds()*l.rate >= l.burst {
			delete(l.buckets, k)
		}
	}
	for k, b := range l.buckets {
		if len(l.buckets) < MaxBuckets*9/10 {
			break
		}
		if b.waiting == 0 {
			delete(l.buckets, k)
		}
	}
}

// Len is the number of buckets held.
func (l *Buckets[K]) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
