package server_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/postgres"
	"github.com/setlist/setlist/internal/postgres/pgtest"
	"github.com/setlist/setlist/serve/internal/fixture"
)

// privateRedis is a redis-server of this test's own, so it can be stopped
// and restarted without touching the machine's shared Redis. It keeps its
// data across a restart the way a production Redis with persistence does:
// stop saves an RDB file that start loads.
type privateRedis struct {
	port string
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

func startPrivateRedis(t *testing.T) *privateRedis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server is required for this fault test: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	r := &privateRedis{port: port, dir: t.TempDir()}
	r.start(t)
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *privateRedis) addr() string { return "127.0.0.1:" + r.port }

// world is newWorldIn on this Redis (a client with opts, never retrying,
// so a test sees each failure) and a fresh database, under prefix.
func (r *privateRedis) world(t *testing.T, opts *redis.Options, prefix string) *world {
	t.Helper()
	opts.Addr, opts.MaxRetries = r.addr(), -1
	rdb := redis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	e := &env{dbURL: pgtest.URL(t), rdb: rdb, prefix: prefix}
	e.db = openDB(t, e.dbURL)
	if _, err := e.db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return newWorldIn(t, e)
}

func (r *privateRedis) start(t *testing.T) {
	t.Helper()
	r.cmd = exec.Command("redis-server", "--port", r.port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", r.dir, "--dbfilename", "dump.rdb", "--daemonize", "no", "--loglevel", "warning")
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.done = make(chan struct{})
	go func() { _ = r.cmd.Wait(); close(r.done) }()
	c := redis.NewClient(&redis.Options{Addr: r.addr()})
	defer c.Close()
	waitFor(t, "the private redis-server to answer", func() bool {
		return c.Ping(context.Background()).Err() == nil
	})
}

// stop saves and shuts the server down (what a restarted pod with
// persistence does); the listener is gone until start.
func (r *privateRedis) stop(t *testing.T) {
	t.Helper()
	if r.cmd == nil {
		return
	}
	c := redis.NewClient(&redis.Options{Addr: r.addr()})
	_ = c.ShutdownSave(context.Background()).Err()
	c.Close()
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
	r.cmd = nil
}

// ledger is the list of writes a server acknowledged with 201.
type ledger struct {
	mu    sync.Mutex
	likes map[string][]setlist.SongID
}

func (l *ledger) add(user string, song setlist.SongID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.likes == nil {
		l.likes = map[string][]setlist.SongID{}
	}
	l.likes[user] = append(l.likes[user], song)
}

// verify fails unless every acknowledged like is in PostgreSQL.
func (l *ledger) verify(t *testing.T, db *postgres.DB) int {
	t.Helper()
	n := 0
	for user, songs := range l.likes {
		rs, err := db.UserReactions(context.Background(), setlist.UserID(user), 0)
		if err != nil {
			t.Fatal(err)
		}
		have := map[setlist.SongID]bool{}
		for _, r := range rs {
			if r.Kind == setlist.Like {
				have[r.Song] = true
			}
		}
		for _, s := range songs {
			n++
			if !have[s] {
				t.Errorf("like of song %d by %s was acknowledged (201) but is not in PostgreSQL", s, user)
			}
		}
	}
	return n
}

// outageLoad runs readers and writers against in until stop, classifying
// every answer by phase; writers like distinct songs so each 201 is
// checkable.
type outageLoad struct {
	in       *instance
	songs    []setlist.SongID
	phase    atomic.Int32 // 0 before, 1 during, 2 after
	acks     ledger
	mu       sync.Mutex
	failures []string
	// counts[phase][source or status]
	counts [3]map[string]int
}

func (o *outageLoad) fail(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.failures) < 20 {
		o.failures = append(o.failures, fmt.Sprintf(format, args...))
	}
}

func (o *outageLoad) count(phase int32, key string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.counts[phase] == nil {
		o.counts[phase] = map[string]int{}
	}
	o.counts[phase][key]++
}

func (o *outageLoad) run(ctx context.Context, readers, writers int) *sync.WaitGroup {
	var wg sync.WaitGroup
	users := []string{"batchy", weird, "folder", "newbie", "disliker"}
	for g := range readers {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				u := users[(g+i)%len(users)]
				phase := o.phase.Load()
				r, err := o.in.try(http.MethodGet, "/v1/users/"+pathEscape(u)+"/recommendations?n=5", nil)
				if err != nil {
					o.fail("read %s: %v", u, err)
					continue
				}
				if r.status != http.StatusOK {
					o.fail("read %s in phase %d: status %d %s", u, phase, r.status, r.body)
					continue
				}
				var a recsAnswer
				if err := jsonUnmarshal(r.body, &a); err != nil || a.ModelVersion != 1 {
					o.fail("read %s: %s (%v)", u, r.body, err)
					continue
				}
				o.count(phase, "source="+a.Source)
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	for g := range writers {
		wg.Go(func() {
			user := fmt.Sprintf("writer%d", g)
			for i := 0; ctx.Err() == nil; i++ {
				song := o.songs[i%len(o.songs)]
				phase := o.phase.Load()
				r, err := o.in.try(http.MethodPost, "/v1/users/"+user+"/reactions", map[string]any{"song_id": song, "kind": "like"})
				switch {
				case err != nil:
					o.fail("write: %v", err)
				case r.status == http.StatusCreated:
					o.acks.add(user, song)
				case r.status == http.StatusServiceUnavailable && r.header.Get("Retry-After") != "":
				default:
					o.fail("write in phase %d: status %d %s", phase, r.status, r.body)
				}
				o.count(phase, "write="+strconv.Itoa(r.status))
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	return &wg
}

func pathEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(strings.ReplaceAll(s, "%", "%25"), "/", "%2F"), " ", "%20")
}

// TestRedisRestartUnderLoad stops a private Redis under load and starts it
// again: while it is down every read is still answered from memory
// (fold-in or popular, saying so) and writes are 201 or 503 with
// Retry-After; within 5 s of its return batch hits and the near cache are
// back; and every 201 is in PostgreSQL.
func TestRedisRestartUnderLoad(t *testing.T) {
	pr := startPrivateRedis(t)
	w := pr.world(t, &redis.Options{DialTimeout: 200 * time.Millisecond}, "fault")
	if err := fixture.Users(context.Background(), w.db, []setlist.UserID{"writer0", "writer1"}); err != nil {
		t.Fatal(err)
	}
	in := w.start(t, fastConfig(), nil)
	in.waitModel(t, 1)

	o := &outageLoad{in: in, songs: w.songs[10:60]}
	ctx, stop := context.WithCancel(context.Background())
	wg := o.run(ctx, 4, 2)
	time.Sleep(500 * time.Millisecond)

	o.phase.Store(1)
	pr.stop(t)
	time.Sleep(2 * time.Second)
	// Past the first moments (requests already in flight), nothing is a
	// batch hit: the lists live in Redis.
	o.mu.Lock()
	o.counts[1] = nil
	o.mu.Unlock()
	time.Sleep(1 * time.Second)
	o.phase.Store(2)
	pr.start(t)
	back := time.Now()
	waitFor(t, "batch hits to return after Redis restarts", func() bool {
		a := in.recs(t, "batchy", 5)
		return a.Source == "batch"
	})
	if d := time.Since(back); d > 5*time.Second {
		t.Errorf("batch hits returned %v after Redis did, want ≤ 5 s", d)
	}
	in.waitNearCache(t, "batchy")
	if d := time.Since(back); d > 5*time.Second {
		t.Errorf("near cache back %v after Redis returned, want ≤ 5 s", d)
	}
	// Writes succeed again.
	waitFor(t, "writes to succeed again", func() bool {
		r := in.do(t, http.MethodPost, "/v1/users/writer0/reactions", map[string]any{"song_id": w.songs[5], "kind": "like"})
		if r.status == http.StatusCreated {
			o.acks.add("writer0", w.songs[5])
		}
		return r.status == http.StatusCreated
	})
	time.Sleep(300 * time.Millisecond)
	stop()
	wg.Wait()
	for _, f := range o.failures {
		t.Error(f)
	}
	t.Logf("answers before %v, during %v, after %v", o.counts[0], o.counts[1], o.counts[2])
	if o.counts[1]["source=batch"] > 0 {
		t.Errorf("%d batch answers with Redis down", o.counts[1]["source=batch"])
	}
	if o.counts[1]["source=fold-in"] == 0 || o.counts[1]["source=popular"] == 0 {
		t.Errorf("during the outage: %v, want fold-in and popular answers", o.counts[1])
	}
	if o.counts[1]["write=503"] == 0 {
		t.Errorf("during the outage: %v, want writes answered 503", o.counts[1])
	}
	n := o.acks.verify(t, w.db)
	t.Logf("%d acknowledged likes, all in PostgreSQL", n)
}

// TestStallingRedisAnswersAreNotKept pauses a private Redis for longer
// than a request's Redis deadline while its connections stay up, so the
// events channel never breaks and the near cache stays trusted: the fold-in
// answered meanwhile is a stand-in and must not outlive the stall. It did
// (kept in the near cache, nothing ever dropped it), and under load the
// same happened after every Redis restart, when the subscription came back
// before the connection pool would dial again.
func TestStallingRedisAnswersAreNotKept(t *testing.T) {
	pr := startPrivateRedis(t)
	w := pr.world(t, &redis.Options{ContextTimeoutEnabled: true}, "stall")
	in := w.start(t, fastConfig(), nil)
	in.waitModel(t, 1)

	pause := 1500 * time.Millisecond
	if err := w.rdb.Do(context.Background(), "CLIENT", "PAUSE", pause.Milliseconds(), "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	if a := in.recs(t, "batchy", 5); a.Source != "fold-in" {
		t.Fatalf("with Redis stalled: source %q, want fold-in", a.Source)
	}
	time.Sleep(time.Until(paused.Add(pause + 200*time.Millisecond)))
	if a := in.recs(t, "batchy", 5); a.Source != "batch" {
		t.Errorf("after the stall: source %q, want batch (the stall's stand-in was kept)", a.Source)
	}
	// The pause may also have broken the events subscription (its health
	// check waits on Redis too), which empties the near cache until it is
	// back: wait for the cache to take the answer again.
	in.waitNearCache(t, "batchy")
	if a := in.recs(t, "batchy", 5); a.Source != "batch" {
		t.Errorf("from the near cache: source %q, want batch", a.Source)
	}
}

// TestPostgresOutageUnderLoad cuts serve off from PostgreSQL under load and
// restores it: batch hits are served throughout, writes are 503 with
// Retry-After meanwhile, writes succeed again once it is back, and no
// acknowledged write is lost. PostgreSQL sits behind a proxy this test
// controls rather than being stopped: the machine's server is shared with
// tests running in parallel, and from serve's side a cut proxy is exactly a
// crashed server (open connections reset, new ones refused).
func TestPostgresOutageUnderLoad(t *testing.T) {
	w := newWorld(t)
	if err := fixture.Users(context.Background(), w.db, []setlist.UserID{"writer0", "writer1"}); err != nil {
		t.Fatal(err)
	}
	pg := newFaultProxy(t, "127.0.0.1:5432")
	db := openDB(t, strings.Replace(w.dbURL, "127.0.0.1:5432", pg.Addr(), 1))
	in := w.start(t, fastConfig(), db)
	in.waitModel(t, 1)

	o := &outageLoad{in: in, songs: w.songs[10:60]}
	ctx, stop := context.WithCancel(context.Background())
	// Readers only ask for batch hits here: fold-ins need PostgreSQL.
	var wg sync.WaitGroup
	var batchReads, badReads atomic.Int64
	for range 3 {
		wg.Go(func() {
			for ctx.Err() == nil {
				r, err := in.try(http.MethodGet, "/v1/users/batchy/recommendations?n=5", nil)
				var a recsAnswer
				if err != nil || r.status != http.StatusOK || jsonUnmarshal(r.body, &a) != nil || a.Source != "batch" {
					badReads.Add(1)
					o.fail("batch read during the outage: %v %d %s", err, r.status, r.body)
				} else {
					batchReads.Add(1)
				}
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	writers := o.run(ctx, 0, 2)
	time.Sleep(500 * time.Millisecond)
	o.phase.Store(1)
	pg.Down()
	time.Sleep(2 * time.Second)
	o.phase.Store(2)
	pg.Up()
	back := time.Now()
	waitFor(t, "writes to succeed after PostgreSQL returns", func() bool {
		r := in.do(t, http.MethodPost, "/v1/users/writer1/reactions", map[string]any{"song_id": w.songs[5], "kind": "like"})
		if r.status == http.StatusCreated {
			o.acks.add("writer1", w.songs[5])
		}
		return r.status == http.StatusCreated
	})
	t.Logf("writes succeed %v after PostgreSQL returned", time.Since(back).Round(time.Millisecond))
	time.Sleep(300 * time.Millisecond)
	stop()
	wg.Wait()
	writers.Wait()
	for _, f := range o.failures {
		t.Error(f)
	}
	t.Logf("batch reads %d (failed %d); writes before %v, during %v, after %v", batchReads.Load(), badReads.Load(), o.counts[0], o.counts[1], o.counts[2])
	if o.counts[1]["write=503"] == 0 || o.counts[1]["write=201"] > 2 {
		// A write that was committing at the cut may still be a 201.
		t.Errorf("writes during the outage %v: want 503s", o.counts[1])
	}
	if o.counts[2]["write=201"] == 0 {
		t.Errorf("writes after the outage %v: want 201s", o.counts[2])
	}
	n := o.acks.verify(t, w.db)
	t.Logf("%d acknowledged likes, all in PostgreSQL", n)
}
