package server_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/postgres"
	"github.com/setlist/setlist/serve/internal/recs"
	"github.com/setlist/setlist/serve/internal/server"
)

// gatedDB is the real database with one user's history reads slowed down
// (delay) or held until release: the shape of a user whose fold-in is
// expensive, without building a history big enough to be slow on a fast day.
// It counts the reads of that user and the most that ran at once.
type gatedDB struct {
	*postgres.DB
	user    setlist.UserID
	delay   time.Duration
	gate    chan struct{} // nil: no gate; else reads wait until it is closed
	reads   atomic.Int32
	limit   atomic.Int32 // the last read's limit
	inside  atomic.Int32
	maxSeen atomic.Int32
}

func (g *gatedDB) UserReactions(ctx context.Context, u setlist.UserID, limit int) ([]setlist.Reaction, error) {
	if u == g.user {
		g.reads.Add(1)
		g.limit.Store(int32(limit))
		n := g.inside.Add(1)
		defer g.inside.Add(-1)
		for m := g.maxSeen.Load(); n > m && !g.maxSeen.CompareAndSwap(m, n); m = g.maxSeen.Load() {
		}
		time.Sleep(g.delay)
		if g.gate != nil {
			<-g.gate
		}
	}
	return g.DB.UserReactions(ctx, u, limit)
}

// parallelGets sends n GETs at once (path(i) for the i-th) and returns a
// function that waits for them and returns their status codes.
func parallelGets(t *testing.T, in *instance, n int, path func(i int) string) func() []int {
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := in.try(http.MethodGet, path(i), nil)
			if err != nil {
				t.Error(err)
				return
			}
			codes[i] = r.status
		}()
	}
	return func() []int {
		wg.Wait()
		return codes
	}
}

// TestFoldInFloodSharesOneSolve is the flood of issue 18: one reaction on a
// user whose fold-in is slow, then 100 parallel GETs for that user, three
// times. Each reaction must cost one solve, not one per request.
func TestFoldInFloodSharesOneSolve(t *testing.T) {
	w := newWorld(t)
	g := &gatedDB{DB: w.db, user: "folder", delay: 200 * time.Millisecond}
	in := w.startDeps(t, fastConfig(), func(d *server.Deps) { d.DB = g })
	in.waitModel(t, 1)
	for round := range 3 {
		play := fmt.Sprintf(`{"song_id": %d, "kind": "play"}`, w.songs[11+round])
		wantStatus(t, in.do(t, http.MethodPost, "/v1/users/folder/reactions", play), http.StatusCreated)
		for _, c := range parallelGets(t, in, 100, func(i int) string { return fmt.Sprintf("/v1/users/folder/recommendations?n=%d", 1+i%20) })() {
			if c != http.StatusOK {
				t.Fatalf("round %d: a flood request answered %d", round, c)
			}
		}
		if n := g.reads.Load(); n != int32(round+1) {
			t.Fatalf("after %d reactions and 100 GETs each: %d fold-ins read folder's history; want one per reaction", round+1, n)
		}
	}
	if l := g.limit.Load(); l != recs.DefaultFoldInMaxReactions {
		t.Errorf("fold-in read at most %d reactions; want the default cap %d", l, recs.DefaultFoldInMaxReactions)
	}
	if shared := in.metric(t, `setlist_serve_foldin_requests_total{outcome="shared"}`); shared < 1 {
		t.Errorf("no request was counted as sharing a solve (%v)", shared)
	}
}

// TestFoldInFairQueuing: while one user's fold-ins are stuck, that user
// holds one slot however many requests it sends (at two depths, so two
// solves are wanted), and other users' fold-ins take the other slot instead
// of queueing behind it.
func TestFoldInFairQueuing(t *testing.T) {
	w := newWorld(t)
	g := &gatedDB{DB: w.db, user: "folder", gate: make(chan struct{})}
	cfg := fastConfig()
	cfg.Recs.FoldInConcurrency = 2
	cfg.API.RequestTimeout = 3 * time.Second
	in := w.startDeps(t, cfg, func(d *server.Deps) { d.DB = g })
	in.waitModel(t, 1)
	// n=5: depth 20, and n=50: depth 100, a second solve.
	wait := parallelGets(t, in, 20, func(i int) string { return fmt.Sprintf("/v1/users/folder/recommendations?n=%d", 5+45*(i%2)) })
	released := false
	release := func() {
		if !released {
			released = true
			close(g.gate)
		}
	}
	defer release()
	waitFor(t, "folder's first fold-in to hold a slot", func() bool { return g.inside.Load() >= 1 })
	for _, u := range []string{"newbie", "disliker", "batchy"} {
		// batchy's list is batch, the others need a fold-in (popular).
		r := in.get(t, "/v1/users/"+u+"/recommendations?n=5")
		if r.status != http.StatusOK {
			t.Fatalf("%s answered %d while folder's fold-ins were stuck: %s", u, r.status, r.body)
		}
	}
	if m := g.maxSeen.Load(); m != 1 {
		t.Fatalf("folder held %d fold-in slots at once; want 1", m)
	}
	release()
	for _, c := range wait() {
		if c != http.StatusOK {
			t.Fatalf("a folder request answered %d", c)
		}
	}
	if n := g.reads.Load(); n != 2 {
		t.Errorf("folder's 20 requests at two depths read its history %d times; want 2", n)
	}
}

// syncBuffer is a log destination safe for concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestFoldInBusyAnswer: with every slot held, a fold-in that gets none by
// its deadline is a 503 that says the fold-in capacity is busy, with
// Retry-After, logged at WARN (load shed as designed, not a store failure).
func TestFoldInBusyAnswer(t *testing.T) {
	w := newWorld(t)
	g := &gatedDB{DB: w.db, user: "folder", gate: make(chan struct{})}
	cfg := fastConfig()
	cfg.Recs.FoldInConcurrency = 1
	cfg.API.RequestTimeout = 400 * time.Millisecond
	var logs syncBuffer
	in := w.startDeps(t, cfg, func(d *server.Deps) {
		d.DB = g
		d.Log = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	in.waitModel(t, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = in.try(http.MethodGet, "/v1/users/folder/recommendations?n=5", nil)
	}()
	defer func() { close(g.gate); <-done }()
	waitFor(t, "folder's fold-in to hold the only slot", func() bool { return g.inside.Load() == 1 })
	r := in.get(t, "/v1/users/newbie/recommendations?n=5")
	wantStatus(t, r, http.StatusServiceUnavailable)
	if r.header.Get("Retry-After") == "" {
		t.Error("busy 503 without Retry-After")
	}
	if !strings.Contains(string(r.body), "fold-in capacity is busy") {
		t.Errorf("busy 503 detail %s does not say the fold-in capacity is busy", r.body)
	}
	if n := in.metric(t, `setlist_serve_foldin_requests_total{outcome="busy"}`); n != 1 {
		t.Errorf("busy fold-ins counted %v; want 1", n)
	}
	out := logs.String()
	if !strings.Contains(out, `"level":"WARN","msg":"fold-in capacity busy"`) {
		t.Errorf("no WARN line for the busy 503; logs:\n%s", out)
	}
	if strings.Contains(out, `"level":"ERROR"`) {
		t.Errorf("a busy fold-in was logged at ERROR; logs:\n%s", out)
	}
}

// TestFoldInCapExcludesWholeHistory: a fold-in that solves with only the
// strongest reactions still never recommends a song from the rest of the
// history.
func TestFoldInCapExcludesWholeHistory(t *testing.T) {
	w := newWorld(t)
	cfg := fastConfig()
	cfg.Recs.FoldInMaxReactions = 2 // folder has 10: 5 likes, 5 plays
	in := w.start(t, cfg, nil)
	in.waitModel(t, 1)
	a := in.recs(t, "folder", 30)
	if a.Source != "fold-in" || len(a.Items) == 0 {
		t.Fatalf("folder's answer: %+v; want a fold-in", a)
	}
	reacted := map[setlist.SongID]bool{}
	for _, s := range w.songs[:10] {
		reacted[s] = true
	}
	for _, s := range a.songs() {
		if reacted[s] {
			t.Fatalf("song %d, from the part of folder's history the cap cut, was recommended: %v", s, a.songs())
		}
	}
}
