package recs

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/setlist/setlist"
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

// flights is a singleflight group (fold-ins, similar-song lists): the
// first request with a key computes, requests arriving meanwhile wait for
// its result. A finished result lingers for flightLinger so a request that
// read its cache just before the leader stored the result there (and so saw
// none) still shares it instead of computing again; the key names what the
// result was computed from, so a lingering result is never stale. Errors do
// not linger.
type flights[K comparable, V any] struct {
	mu    sync.Mutex
	calls map[K]*flight[V]
}

type flight[V any] struct {
	done chan struct{}
	val  V
	err  error
}

// flightLinger is how long a finished result stays shareable: much longer
// than the few instructions between a request's cache read and its
// joining, short enough that the map holds at most a second's worth.
const flightLinger = time.Second

// errFlightWait is a waiter's deadline passing before the leader finished.
var errFlightWait = fmt.Errorf("waiting for the computation another request started: %w", ErrBusy)

// do returns the result for key, computing it with fn unless a flight for
// key is running or just finished; shared is true when this request did not
// run fn. A waiter gives up at its own deadline (the leader carries on).
func (g *flights[K, V]) do(ctx context.Context, key K, fn func() (V, error)) (val V, shared bool, err error) {
	g.mu.Lock()
	if g.calls == nil {
		g.calls = map[K]*flight[V]{}
	}
	if f, ok := g.calls[key]; ok {
		g.mu.Unlock()
		select {
		case <-f.done:
			return f.val, true, f.err
		case <-ctx.Done():
			return val, true, fmt.Errorf("%w: %w", errFlightWait, ctx.Err())
		}
	}
	f := &flight[V]{done: make(chan struct{})}
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
	f.val, f.err = fn()
	return f.val, false, f.err
}

// running reports whether a flight for key is running or just finished:
// a request that calls do now shares its result (unless it failed and is
// forgotten meanwhile).
func (g *flights[K, V]) running(key K) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, ok := g.calls[key]
	return ok
}

func (g *flights[K, V]) forget(key K, f *flight[V]) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.calls[key] == f {
		delete(g.calls, key)
	}
}

// fairSlots bounds fold-ins (and similar-song computations) running at
// once and shares the slots fairly, first between clients (a token, else a
// client address: the API decides), then between the users (or songs) one
// client asks for:
//
//   - one user holds at most perUser slots and queues at most maxQueued
//     more requests, whichever clients ask (beyond, ErrBusy at once);
//   - one client queues at most clientQueued requests (beyond, ErrBusy at
//     once), however many users it spreads them over;
//   - a freed slot goes to the next client in round-robin order, to its
//     oldest request whose user is below its limit.
//
// So a client hammering one user waits behind itself, and a client spread
// over many users (issue 24 item 3: 64 at once, each a different user) is
// one turn in the ring like any other client: everyone else's fold-in waits
// for at most one of its solves, not for all of them.
type fairSlots struct {
	mu           sync.Mutex
	free         int
	perUser      int
	maxQueued    int
	clientQueued int
	users        map[string]*slotUser
	clients      map[string]*slotClient
	ring         []*slotClient // clients with waiters, in round-robin order
}

type slotUser struct {
	id      string
	running int
	queued  int
}

type slotClient struct {
	id      string
	waiters []*slotWaiter
	inRing  bool
}

type slotWaiter struct {
	user    *slotUser
	ch      chan struct{}
	granted bool
}

func newFairSlots(n, perUser, maxQueued, clientQueued int) *fairSlots {
	return &fairSlots{free: n, perUser: perUser, maxQueued: maxQueued, clientQueued: clientQueued,
		users: map[string]*slotUser{}, clients: map[string]*slotClient{}}
}

// acquire takes a slot for subject u on behalf of client, waiting fairly
// until ctx ends; it returns ErrBusy (wrapped with what happened) when none
// came. Release it with release(u).
func (s *fairSlots) acquire(ctx context.Context, client, u string) error {
	s.mu.Lock()
	su := s.users[u]
	if su == nil {
		su = &slotUser{id: u}
		s.users[u] = su
	}
	sc := s.clients[client]
	if sc == nil {
		sc = &slotClient{id: client}
		s.clients[client] = sc
	}
	if s.free > 0 && su.running < s.perUser && su.queued == 0 {
		// Anyone else waiting is at their own limit (dispatch would have
		// served them otherwise), so taking the free slot is fair.
		s.free--
		su.running++
		s.dropIdleClient(sc)
		s.mu.Unlock()
		return nil
	}
	if su.queued >= s.maxQueued {
		running, queued := su.running, su.queued
		s.dropIdleClient(sc)
		s.mu.Unlock()
		return fmt.Errorf("%q already has %d running and %d queued: %w", u, running, queued, ErrBusy)
	}
	if len(sc.waiters) >= s.clientQueued {
		queued := len(sc.waiters)
		s.dropIdleUser(su)
		s.mu.Unlock()
		return fmt.Errorf("this client already has %d requests queued for a slot: %w", queued, ErrBusy)
	}
	w := &slotWaiter{user: su, ch: make(chan struct{})}
	sc.waiters = append(sc.waiters, w)
	su.queued++
	if !sc.inRing {
		sc.inRing = true
		s.ring = append(s.ring, sc)
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
		return fmt.Errorf("%q: %w: %w", u, ErrBusy, ctx.Err())
	}
	for i, x := range sc.waiters {
		if x == w {
			sc.waiters = append(sc.waiters[:i], sc.waiters[i+1:]...)
			break
		}
	}
	su.queued--
	queued := s.queuedLocked()
	s.dropIdleClient(sc)
	s.dropIdleUser(su)
	s.mu.Unlock()
	return fmt.Errorf("%q: waited %v for a slot (%d requests queued): %w: %w",
		u, time.Since(start).Round(time.Millisecond), queued, ErrBusy, ctx.Err())
}

// release returns u's slot and hands it to the next client in turn.
func (s *fairSlots) release(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releaseLocked(s.users[u])
}

func (s *fairSlots) releaseLocked(su *slotUser) {
	su.running--
	s.free++
	s.dispatchLocked()
	s.dropIdleUser(su)
}

// dispatchLocked grants free slots in ring order: each client's oldest
// waiter whose user is below its limit; a client served moves to the back
// of the ring.
func (s *fairSlots) dispatchLocked() {
	for s.free > 0 {
		ci, wi := -1, -1
		for i, sc := range s.ring {
			for j, w := range sc.waiters {
				if w.user.running < s.perUser {
					ci, wi = i, j
					break
				}
			}
			if ci >= 0 {
				break
			}
		}
		if ci < 0 {
			break
		}
		sc := s.ring[ci]
		w := sc.waiters[wi]
		sc.waiters = append(sc.waiters[:wi], sc.waiters[wi+1:]...)
		w.granted = true
		close(w.ch)
		s.free--
		w.user.running++
		w.user.queued--
		s.ring = append(s.ring[:ci], s.ring[ci+1:]...)
		if len(sc.waiters) > 0 {
			s.ring = append(s.ring, sc)
		} else {
			sc.inRing = false
			s.dropIdleClient(sc)
		}
	}
}

// dropIdleUser forgets a user with nothing running or queued, and
// dropIdleClient a client with nothing queued, so the maps hold only what
// is in progress.
func (s *fairSlots) dropIdleUser(su *slotUser) {
	if su.running > 0 || su.queued > 0 {
		return
	}
	if s.users[su.id] == su {
		delete(s.users, su.id)
	}
}

func (s *fairSlots) dropIdleClient(sc *slotClient) {
	if len(sc.waiters) > 0 {
		return
	}
	if sc.inRing {
		for i, x := range s.ring {
			if x == sc {
				s.ring = append(s.ring[:i], s.ring[i+1:]...)
				break
			}
		}
		sc.inRing = false
	}
	if s.clients[sc.id] == sc {
		delete(s.clients, sc.id)
	}
}

func (s *fairSlots) queuedLocked() int {
	n := 0
	for _, sc := range s.ring {
		n += len(sc.waiters)
	}
	return n
}
