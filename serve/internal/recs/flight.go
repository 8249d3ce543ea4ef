package recs

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/model"
)

// ErrBusy means a fold-in could not get a slot before its request's
// deadline: the server is not broken, it is at its fold-in capacity. It is a
// 503 with Retry-After, logged at WARN.
var ErrBusy = fmt.Errorf("fold-in capacity is busy: %w", setlist.ErrUnavailable)

// flightKey names one fold-in result: the same version, user, history
// (touched is the user's last-reaction time as Redis has it; epoch the local
// invalidation count, used instead when Redis did not answer) and depth.
// Requests with equal keys need exactly the same answer, so they share one
// solve.
type flightKey struct {
	version model.Version
	user    setlist.UserID
	touched int64
	epoch   uint64
	depth   int
	catalog int64 // the catalog sequence whose hidden songs the solve leaves out
}

// flights is a singleflight group for fold-ins: the first request with a key
// solves, requests arriving meanwhile wait for its result. A finished
// result lingers for flightLinger so a request that read Redis just before
// the leader stored the fold-in there (and so saw none) still shares it
// instead of solving again; the key names the history it was solved from,
// so a lingering result is never stale. Errors do not linger.
type flights struct {
	mu    sync.Mutex
	calls map[flightKey]*flight
}

type flight struct {
	done chan struct{}
	rec  keyspace.FoldInRecord
	err  error
}

// flightLinger is how long a finished fold-in stays shareable: much longer
// than the few instructions between a request's Redis read and its joining,
// short enough that the map holds at most a second's worth of fold-ins.
const flightLinger = time.Second

// do returns the result for key, computing it with fn unless a flight for
// key is running or just finished; shared is true when this request did not
// run fn. A waiter gives up at its own deadline (the leader carries on).
func (g *flights) do(ctx context.Context, key flightKey, fn func() (keyspace.FoldInRecord, error)) (rec keyspace.FoldInRecord, shared bool, err error) {
	g.mu.Lock()
	if g.calls == nil {
		g.calls = map[flightKey]*flight{}
	}
	if f, ok := g.calls[key]; ok {
		g.mu.Unlock()
		select {
		case <-f.done:
			return f.rec, true, f.err
		case <-ctx.Done():
			return keyspace.FoldInRecord{}, true, fmt.Errorf("recommend for %q: waiting for the fold-in another request started: %w: %w", key.user, ErrBusy, ctx.Err())
		}
	}
	f := &flight{done: make(chan struct{})}
	g.calls[key] = f
	g.mu.Unlock()
	defer func() {
		close(f.done)
		if f.err != nil {
			g.forget(key, f)
			return
		}
		time.AfterFunc(flightLinger, func() { g.forget(key, f) })
	}()
	f.rec, f.err = fn()
	return f.rec, false, f.err
}

func (g *flights) forget(key flightKey, f *flight) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.calls[key] == f {
		delete(g.calls, key)
	}
}

// fairSlots bounds fold-ins running at once and shares the slots fairly
// between users: one user holds at most perUser slots and queues at most
// maxQueued more requests (beyond, ErrBusy at once), and when a slot frees
// up it goes to the next user in round-robin order, not to whoever asked
// first. So a client hammering one user (or a few) waits behind itself
// while everyone else's fold-ins go through.
type fairSlots struct {
	mu        sync.Mutex
	free      int
	perUser   int
	maxQueued int
	users     map[setlist.UserID]*slotUser
	ring      []*slotUser // users with waiters, in round-robin order
}

type slotUser struct {
	id      setlist.UserID
	running int
	waiters []*slotWaiter
	inRing  bool
}

type slotWaiter struct {
	ch      chan struct{}
	granted bool
}

func newFairSlots(n, perUser, maxQueued int) *fairSlots {
	return &fairSlots{free: n, perUser: perUser, maxQueued: maxQueued, users: map[setlist.UserID]*slotUser{}}
}

// acquire takes a slot for u, waiting fairly until ctx ends; it returns
// ErrBusy (wrapped with what happened) when none came.
func (s *fairSlots) acquire(ctx context.Context, u setlist.UserID) error {
	s.mu.Lock()
	su := s.users[u]
	if su == nil {
		su = &slotUser{id: u}
		s.users[u] = su
	}
	if s.free > 0 && su.running < s.perUser && len(su.waiters) == 0 {
		// Anyone else waiting is at their own limit (dispatch would have
		// served them otherwise), so taking the free slot is fair.
		s.free--
		su.running++
		s.mu.Unlock()
		return nil
	}
	if len(su.waiters) >= s.maxQueued {
		running, queued := su.running, len(su.waiters)
		s.mu.Unlock()
		return fmt.Errorf("recommend for %q: this user already has %d fold-ins running and %d queued: %w", u, running, queued, ErrBusy)
	}
	w := &slotWaiter{ch: make(chan struct{})}
	su.waiters = append(su.waiters, w)
	if !su.inRing {
		su.inRing = true
		s.ring = append(s.ring, su)
	}
	s.mu.Unlock()
	start := time.Now()
	select {
	case <-w.ch:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	if w.granted { // granted while ctx ended: hand the slot on
		s.releaseLocked(su)
		s.mu.Unlock()
		return fmt.Errorf("recommend for %q: %w: %w", u, ErrBusy, ctx.Err())
	}
	for i, x := range su.waiters {
		if x == w {
			su.waiters = append(su.waiters[:i], su.waiters[i+1:]...)
			break
		}
	}
	queued := s.queuedLocked()
	s.dropIfIdle(su)
	s.mu.Unlock()
	return fmt.Errorf("recommend for %q: waited %v for a fold-in slot (%d requests queued): %w: %w",
		u, time.Since(start).Round(time.Millisecond), queued, ErrBusy, ctx.Err())
}

// release returns u's slot and hands it to the next user in turn.
func (s *fairSlots) release(u setlist.UserID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releaseLocked(s.users[u])
}

func (s *fairSlots) releaseLocked(su *slotUser) {
	su.running--
	s.free++
	s.dispatchLocked()
	s.dropIfIdle(su)
}

// dispatchLocked grants free slots to waiting users in ring order, skipping
// users at their limit; a user served moves to the back of the ring.
func (s *fairSlots) dispatchLocked() {
	for s.free > 0 {
		i := -1
		for j, su := range s.ring {
			if su.running < s.perUser && len(su.waiters) > 0 {
				i = j
				break
			}
		}
		if i < 0 {
			break
		}
		su := s.ring[i]
		w := su.waiters[0]
		su.waiters = su.waiters[1:]
		w.granted = true
		close(w.ch)
		s.free--
		su.running++
		s.ring = append(s.ring[:i], s.ring[i+1:]...)
		if len(su.waiters) > 0 {
			s.ring = append(s.ring, su)
		} else {
			su.inRing = false
		}
	}
}

// dropIfIdle forgets a user with nothing running or queued, so the map
// holds only users with fold-ins in progress.
func (s *fairSlots) dropIfIdle(su *slotUser) {
	if su.running > 0 || len(su.waiters) > 0 {
		return
	}
	if su.inRing {
		for i, x := range s.ring {
			if x == su {
				s.ring = append(s.ring[:i], s.ring[i+1:]...)
				break
			}
		}
		su.inRing = false
	}
	if s.users[su.id] == su {
		delete(s.users, su.id)
	}
}

func (s *fairSlots) queuedLocked() int {
	n := 0
	for _, su := range s.ring {
		n += len(su.waiters)
	}
	return n
}
