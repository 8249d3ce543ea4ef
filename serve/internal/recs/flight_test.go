package recs

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/keyspace"
)

// TestFairSlotsRoundRobin: a user at its limit queues behind itself, others
// take free slots, and freed slots go round-robin between waiting users.
func TestFairSlotsRoundRobin(t *testing.T) {
	ctx := context.Background()
	s := newFairSlots(2, 1, 3, 64)
	if err := s.acquire(ctx, "client", "a"); err != nil {
		t.Fatal(err)
	}
	granted := make(chan setlist.UserID, 10)
	wait := func(u setlist.UserID) {
		go func() {
			if err := s.acquire(ctx, "client", string(u)); err != nil {
				t.Error(err)
				return
			}
			granted <- u
		}()
	}
	// a's second request waits although a slot is free: a holds its one.
	wait("a")
	waitQueued(t, s, 1)
	if err := s.acquire(ctx, "client", "b"); err != nil { // b takes the free slot at once
		t.Fatal(err)
	}
	wait("b")
	waitQueued(t, s, 2)
	wait("c")
	waitQueued(t, s, 3)
	// Queued in order a, b, c. The first freed slot goes to a (first in
	// line and no longer at its limit), the next to c (b is still at its
	// limit), b's own release to b.
	s.release("a")
	if u := <-granted; u != "a" {
		t.Fatalf("first freed slot went to %s, want a (first in line)", u)
	}
	s.release("a")
	if u := <-granted; u != "c" {
		t.Fatalf("a's freed slot went to %s, want c (b is at its limit)", u)
	}
	s.release("b")
	if u := <-granted; u != "b" {
		t.Fatalf("b's freed slot went to %s, want b", u)
	}
	s.release("b")
	s.release("c")
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.free != 2 || len(s.users) != 0 || len(s.ring) != 0 {
		t.Fatalf("after all releases: free %d, users %d, ring %d; want 2, 0, 0", s.free, len(s.users), len(s.ring))
	}
}

// TestFairSlotsPerClient (issue 24 item 3): one client spread over many
// users is one turn in the ring: a freed slot goes to another client's
// request before the spreading client's next one, and the spreading
// client's queue is bounded.
func TestFairSlotsPerClient(t *testing.T) {
	ctx := context.Background()
	s := newFairSlots(1, 1, 4, 3)
	if err := s.acquire(ctx, "spread", "u0"); err != nil {
		t.Fatal(err)
	}
	granted := make(chan string, 10)
	wait := func(client, u string) {
		go func() {
			if err := s.acquire(ctx, client, u); err != nil {
				t.Error(err)
				return
			}
			granted <- u
		}()
	}
	for i := 1; i <= 3; i++ {
		wait("spread", "u"+string(rune('0'+i)))
		waitQueued(t, s, i)
	}
	if err := s.acquire(ctx, "spread", "u9"); !errors.Is(err, ErrBusy) {
		t.Fatalf("a 4th queued request of one client over a 4th user: %v; want ErrBusy at once", err)
	}
	wait("other", "x")
	waitQueued(t, s, 4)
	s.release("u0")
	if u := <-granted; u != "u1" {
		t.Fatalf("first freed slot went to %s, want u1 (spread is first in the ring)", u)
	}
	s.release("u1")
	if u := <-granted; u != "x" {
		t.Fatalf("the next freed slot went to %s, want x: the other client's turn comes before spread's next users", u)
	}
	s.release("x")
	for _, want := range []string{"u2", "u3"} {
		if u := <-granted; u != want {
			t.Fatalf("slot went to %s, want %s", u, want)
		}
		s.release(want)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.free != 1 || len(s.users) != 0 || len(s.clients) != 0 || len(s.ring) != 0 {
		t.Fatalf("after all releases: free %d, users %d, clients %d, ring %d; want 1, 0, 0, 0", s.free, len(s.users), len(s.clients), len(s.ring))
	}
}

func waitQueued(t *testing.T, s *fairSlots, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		q := s.queuedLocked()
		s.mu.Unlock()
		if q == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d queued, want %d", q, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestFairSlotsLimits: a user's queue is bounded (ErrBusy at once beyond),
// a waiter whose deadline passes gets ErrBusy and leaves no trace.
func TestFairSlotsLimits(t *testing.T) {
	s := newFairSlots(1, 1, 1, 64)
	if err := s.acquire(context.Background(), "client", "a"); err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.acquire(context.Background(), "client", "a") }()
	waitQueued(t, s, 1)
	if err := s.acquire(context.Background(), "client", "a"); !errors.Is(err, ErrBusy) || !errors.Is(err, setlist.ErrUnavailable) {
		t.Fatalf("a third request for a: %v; want ErrBusy at once", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := s.acquire(ctx, "client", "b"); !errors.Is(err, ErrBusy) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("b with no slot before its deadline: %v; want ErrBusy", err)
	}
	s.release("a") // hands the slot to a's waiter
	waitQueued(t, s, 0)
	s.release("a")
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.free != 1 || len(s.users) != 0 {
		t.Fatalf("free %d, users %d; want 1, 0", s.free, len(s.users))
	}
}

// TestFlightsShare: concurrent calls with one key run fn once; a call just
// after the flight ended still shares it (it lingers); an error does not
// linger; another key runs its own.
func TestFlightsShare(t *testing.T) {
	var g flights[flightKey, keyspace.FoldInRecord]
	var runs atomic.Int32
	release := make(chan struct{})
	fn := func() (keyspace.FoldInRecord, error) {
		runs.Add(1)
		<-release
		return keyspace.FoldInRecord{Source: setlist.SourceFoldIn}, nil
	}
	key := flightKey{user: "u", touched: 1, depth: 20}
	var wg sync.WaitGroup
	var shared atomic.Int32
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec, sh, err := g.do(context.Background(), key, fn)
			if err != nil || rec.Source != setlist.SourceFoldIn {
				t.Error(rec, err)
			}
			if sh {
				shared.Add(1)
			}
		}()
	}
	for runs.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	close(release)
	wg.Wait()
	if runs.Load() != 1 || shared.Load() != 49 {
		t.Fatalf("50 concurrent calls ran fn %d times, %d shared; want 1 and 49", runs.Load(), shared.Load())
	}
	if _, sh, _ := g.do(context.Background(), key, fn); !sh || runs.Load() != 1 {
		t.Fatalf("a call right after the flight ran fn again (shared %v)", sh)
	}
	other := flightKey{user: "u", touched: 2, depth: 20}
	boom := errors.New("boom")
	if _, _, err := g.do(context.Background(), other, func() (keyspace.FoldInRecord, error) { return keyspace.FoldInRecord{}, boom }); err != boom {
		t.Fatal(err)
	}
	if _, sh, err := g.do(context.Background(), other, fn); sh || err != nil || runs.Load() != 2 {
		t.Fatalf("after a failed flight: shared %v, err %v, runs %d; want a fresh run", sh, err, runs.Load())
	}
}
