package keyspace

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/setlist/setlist"
)

// DialOption changes how Dial builds its client.
type DialOption func(*dialOptions)

type dialOptions struct {
	failFast bool
}

// FailFast is for serve's request path (issue 25 item 2): a dead master
// must cost its users one refused dial, not go-redis's 5 dial attempts
// 100 ms apart times 4 command retries (0.2–2 s a request until the
// replica's promotion), so they get their fold-in or popular answer within
// the request deadline and everyone else is untouched. It dials once per
// attempt with a 500 ms timeout, does not retry a command on the same node
// (the cluster client still follows MOVED and retries another node), and
// gives every node a circuit breaker (breakerHook).
func FailFast() DialOption { return func(o *dialOptions) { o.failFast = true } }

// Breaker settings: a failed dial opens the node's breaker for
// BreakerCooldown, during which dials to it fail at once; the first dial
// after the cooldown is the probe that closes it or opens it again.
const (
	BreakerCooldown = 250 * time.Millisecond
	failFastDial    = 500 * time.Millisecond
)

// ErrBreakerOpen is returned (wrapping setlist.ErrUnavailable) for a dial
// refused by an open breaker.
var ErrBreakerOpen = fmt.Errorf("redis node circuit breaker open after a failed dial: %w", setlist.ErrUnavailable)

// breakerHook is one node's circuit breaker on dials: go-redis dials only
// when it has no idle connection, so a node whose dials fail (dead, or a
// pod being rescheduled) is skipped at once until the cooldown passes,
// while its healthy pooled connections, if any, are used as before.
type breakerHook struct {
	addr      string
	openUntil atomic.Int64 // unix nanoseconds; 0: closed
	now       func() time.Time
}

func newBreaker(addr string) *breakerHook { return &breakerHook{addr: addr, now: time.Now} }

func (b *breakerHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		now := b.now()
		if until := b.openUntil.Load(); until != 0 && now.UnixNano() < until {
			return nil, fmt.Errorf("dial %s: %w", b.addr, ErrBreakerOpen)
		}
		conn, err := next(ctx, network, addr)
		if err != nil && ctx.Err() == nil {
			b.openUntil.Store(now.Add(BreakerCooldown).UnixNano())
		} else if err == nil {
			b.openUntil.Store(0)
		}
		return conn, err
	}
}

func (b *breakerHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (b *breakerHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
