// Package failover is serve's Redis Cluster failover scenario: a master
// of the cluster dies under load (SIGKILL) and its replica is promoted.
// The test that checks it (serve/internal/server's TestClusterFailover)
// and the figure that measures it at length (serve/bench/figures'
// TestFigureClusterFailover, docs/BENCHMARKS.md "Redis Cluster at scale")
// share it. What serve must do:
//
//   - users whose keys live on the other masters keep getting their batch
//     lists (200, source batch) throughout: the cluster is configured as
//     k8s/components/redis-cluster configures it (cluster-require-full-coverage
//     no, reads allowed while the cluster is down), so one master's loss is
//     not every user's;
//   - users of the dead master's slots get 200s all along (fold-in or
//     popular while their keys are unreachable), and their batch lists again
//     once the replica is promoted (with the near cache on, a fold-in
//     answered in the window stays cached, which is right but not batch:
//     counted, not failed);
//   - every reaction serve acknowledged (201) is in PostgreSQL, and its
//     touched mark survived (else that user would be served a batch list
//     that misses the reaction);
//   - no 5xx outside the failover window; inside it only reaction writes of
//     the dead master's users may answer 503 (saved, but the touched mark
//     could not be written), never a read.
package failover

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/keyspace/redistest"
	"github.com/setlist/setlist/internal/model"
	"github.com/setlist/setlist/internal/postgres/pgtest"
	"github.com/setlist/setlist/serve/internal/fixture"
	"github.com/setlist/setlist/serve/internal/server"
	"github.com/setlist/setlist/serve/internal/servertest"
)

// Options shape one failover.
type Options struct {
	Readers, Writers int           // users only read, users who also react
	Workers          int           // concurrent request loops
	Before, After    time.Duration // load before the kill and after recovery
	NodeTimeout      time.Duration // cluster-node-timeout set on every node
	NearCache        int64         // serve's near cache bytes (0: off, every read goes to Redis)
	// GoRedisDefaults gives serve a client with go-redis's own dial
	// retries and no breaker (what serve had before keyspace.FailFast),
	// for the before/after figure.
	GoRedisDefaults bool
	// Client sends the load (nil: a plain client with a 10 s timeout);
	// serve's tests pass theirs, which checks every exchange against the
	// OpenAPI document.
	Client *http.Client
}

// Result is what one failover measured; Check says whether serve held.
type Result struct {
	killed                          string
	kill, healthy, recovered        time.Time // kill, promotion seen healthy, first batch answer of every affected reader
	requests, fiveXX, fiveXXOutside int
	readFiveXX                      int
	othersNotBatch                  []string // an answer to an unaffected reader that was not a 200 batch
	degraded                        map[string]int
	acked, lostReactions, lostMarks int
	affectedReaders                 int
	keptFoldIns                     int // affected readers still answered from a near-cached fold-in after recovery
	firstDegraded, lastDegraded     time.Time
	// Readiness probes through the failover: 503s (any is a flap that
	// would pull the pod) and 200s that said the cluster is degraded.
	probes, unready, readyDegraded int
	unreadyDetail                  string
	// Reads per second and the affected readers' p99 in the second
	// before the kill and from the kill until the promotion is seen.
	rateBefore, rateWindow   float64
	p99Before, p99Affected   time.Duration
	over1s, affectedInWindow int
}

// sample is one answered request.
type sample struct {
	at       time.Time
	took     time.Duration
	user     setlist.UserID
	write    bool
	status   int
	source   string
	affected bool
}

// Run starts a fresh 3+3 Redis Cluster, serve in process against it,
// loads it, kills the master of the first reader's keys and measures until
// every affected reader is served batch again.
func Run(t *testing.T, o Options) Result {
	t.Helper()
	ctx := context.Background()
	cl := redistest.NewCluster(t)
	for _, a := range cl.Addrs() {
		n := redis.NewClient(&redis.Options{Addr: a})
		for _, kv := range [][2]string{{"cluster-require-full-coverage", "no"}, {"cluster-allow-reads-when-down", "yes"},
			{"cluster-node-timeout", fmt.Sprint(o.NodeTimeout.Milliseconds())}} {
			if err := n.ConfigSet(ctx, kv[0], kv[1]).Err(); err != nil {
				t.Fatalf("%s: CONFIG SET %s %s: %v", a, kv[0], kv[1], err)
			}
		}
		_ = n.Close()
	}
	rdb, prefix := cl.Client(t)
	db := pgtest.DB(t)
	client := o.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}

	songs, err := fixture.Songs(ctx, db, 0, 60)
	if err != nil {
		t.Fatal(err)
	}
	var users []setlist.UserID
	for i := range o.Readers + o.Writers {
		users = append(users, setlist.UserID(fmt.Sprintf("listener-%03d", i)))
	}
	if err := fixture.Users(ctx, db, users); err != nil {
		t.Fatal(err)
	}
	var rs []setlist.Reaction
	for i, u := range users {
		for j := range 5 {
			rs = append(rs, setlist.Reaction{User: u, Song: songs[(i+j*7)%40], Kind: setlist.Play, Weight: 2})
		}
	}
	if err := fixture.Reactions(ctx, db, rs); err != nil {
		t.Fatal(err)
	}
	v := fixture.Version{Version: 1, Songs: songs[:40], Factors: 8, Seed: 1, K: 10, Lists: map[setlist.UserID][]model.Rec{}}
	side := v.ItemSide()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, u := range users {
		v.Lists[u] = v.TopK(side, rng, 10, nil)
	}
	if err := fixture.Publish(ctx, rdb, prefix, v); err != nil {
		t.Fatal(err)
	}
	cl.Sync(t, rdb) // the replicas hold the version before anything dies

	cfg := servertest.FastConfig()
	cfg.Recs.NearCacheBytes = o.NearCache
	// serve's own client, dialled as serve/command dials it.
	var opts []keyspace.DialOption
	if !o.GoRedisDefaults {
		opts = append(opts, keyspace.FailFast())
	}
	served, err := keyspace.Dial(ctx, cl.URL(), 0, true, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = served.Close() })
	in := servertest.Start(t, cfg, server.Deps{DB: db, Redis: served, RedisPrefix: prefix})
	in.WaitModel(t, 1)
	try := func(method, path string, body any) (servertest.Response, error) {
		return servertest.Do(client, method, in.Base+path, body)
	}

	// The victim: the master of the first reader's keys.
	keys := keyspace.NewKeys(prefix)
	victim, err := rdb.MasterForKey(ctx, keys.Recs(1, users[0]))
	if err != nil {
		t.Fatal(err)
	}
	affected := map[setlist.UserID]bool{}
	for _, u := range users {
		m, err := rdb.MasterForKey(ctx, keys.Recs(1, u))
		if err != nil {
			t.Fatal(err)
		}
		affected[u] = m.Options().Addr == victim.Options().Addr
	}
	readers, writers := users[:o.Readers], users[o.Readers:]
	var nAff, nOther int
	for _, u := range readers {
		if affected[u] {
			nAff++
		} else {
			nOther++
		}
	}
	if nAff == 0 || nOther == 0 {
		t.Fatalf("%d readers on the victim master, %d elsewhere: want both", nAff, nOther)
	}

	// Load: each worker alternates reads of random readers and, one in
	// four, a like by a random writer (distinct songs, so each acknowledged
	// like is one row).
	var (
		mu      sync.Mutex
		samples []sample
		acked   = map[setlist.UserID][]setlist.SongID{}
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	nextSong := map[setlist.UserID]int{}
	for w := range o.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if i%4 == 3 {
					u := writers[r.IntN(len(writers))]
					mu.Lock()
					j := nextSong[u]
					nextSong[u]++
					mu.Unlock()
					song := songs[40+j%20]
					if j >= 20 {
						continue // each writer likes each of the 20 extra songs once
					}
					res, err := try(http.MethodPost, "/v1/users/"+url.PathEscape(string(u))+"/reactions",
						map[string]any{"song_id": song, "kind": "like"})
					s := sample{at: time.Now(), user: u, write: true, status: res.Status, affected: affected[u]}
					if err != nil {
						s.status = -1
					}
					mu.Lock()
					samples = append(samples, s)
					if s.status == http.StatusCreated {
						acked[u] = append(acked[u], song)
					}
					mu.Unlock()
					continue
				}
				u := readers[r.IntN(len(readers))]
				start := time.Now()
				res, err := try(http.MethodGet, "/v1/users/"+url.PathEscape(string(u))+"/recommendations?n=5", nil)
				s := sample{at: time.Now(), took: time.Since(start), user: u, status: res.Status, affected: affected[u]}
				if err != nil {
					s.status = -1
				} else if res.Status == http.StatusOK {
					var a struct {
						Source string `json:"source"`
					}
					if json.Unmarshal(res.Body, &a) == nil {
						s.source = a.Source
					}
				}
				mu.Lock()
				samples = append(samples, s)
				mu.Unlock()
			}
		}()
	}

	// The Deployment's readiness probe, ten times a second.
	var out Result
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			res, err := try(http.MethodGet, "/readyz", nil)
			mu.Lock()
			out.probes++
			var ready struct {
				Degraded []string `json:"degraded"`
			}
			switch {
			case err != nil || res.Status != http.StatusOK:
				out.unready++
				out.unreadyDetail = fmt.Sprintf("%d %s %v", res.Status, res.Body, err)
			case json.Unmarshal(res.Body, &ready) == nil && slices.Contains(ready.Degraded, "redis"):
				out.readyDegraded++
			}
			mu.Unlock()
		}
	}()
	time.Sleep(o.Before)
	out.kill = time.Now()
	out.killed = cl.KillMaster(t, keys.Recs(1, users[0]))
	cl.WaitHealthy(t, 30*time.Second+10*o.NodeTimeout)
	out.healthy = time.Now()
	// Recovered: every affected reader has had a batch answer after the
	// promotion.
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		seen := map[setlist.UserID]bool{}
		for _, s := range samples {
			if s.affected && !s.write && s.at.After(out.healthy) && s.status == http.StatusOK && s.source == "batch" {
				seen[s.user] = true
			}
		}
		mu.Unlock()
		if len(seen) == nAff {
			out.recovered = time.Now()
			break
		}
		// With the near cache on, a fold-in answered while the master was
		// down stays cached until the user reacts or the version switches
		// (it is right: it holds every reaction), so not every reader sees
		// batch again; give it 10 s and count the rest.
		if o.NearCache > 0 && time.Since(out.healthy) > 10*time.Second {
			out.recovered = time.Now()
			out.keptFoldIns = nAff - len(seen)
			break
		}
		if time.Now().After(deadline) {
			close(stop)
			wg.Wait()
			t.Fatalf("30 s after the promotion only %d of %d readers of the dead master's slots got their batch list again", len(seen), nAff)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(o.After)
	close(stop)
	wg.Wait()

	// Tally. The window is from the kill until recovery.
	out.degraded = map[string]int{}
	out.affectedReaders = nAff
	sort.Slice(samples, func(i, j int) bool { return samples[i].at.Before(samples[j].at) })
	for _, s := range samples {
		out.requests++
		inWindow := !s.at.Before(out.kill) && !s.at.After(out.recovered)
		if s.status >= 500 || s.status < 0 {
			out.fiveXX++
			if !inWindow {
				out.fiveXXOutside++
			}
			if !s.write {
				out.readFiveXX++
			}
		}
		if s.write {
			continue
		}
		if !s.affected && (s.status != http.StatusOK || s.source != "batch") {
			out.othersNotBatch = append(out.othersNotBatch, fmt.Sprintf("%s at kill%+v: %d %s", s.user, s.at.Sub(out.kill).Round(time.Millisecond), s.status, s.source))
		}
		if s.affected && s.status == http.StatusOK && s.source != "batch" {
			out.degraded[s.source]++
			if out.firstDegraded.IsZero() {
				out.firstDegraded = s.at
			}
			out.lastDegraded = s.at
		}
	}
	var before, affectedIn []time.Duration
	nWindow := 0
	for _, s := range samples {
		if s.write {
			continue
		}
		if s.at.Before(out.kill) && s.at.After(out.kill.Add(-time.Second)) {
			before = append(before, s.took)
		}
		if !s.at.Before(out.kill) && !s.at.After(out.healthy) {
			nWindow++
			if s.affected {
				affectedIn = append(affectedIn, s.took)
				if s.took > time.Second {
					out.over1s++
				}
			}
		}
	}
	out.rateBefore = float64(len(before))
	out.rateWindow = float64(nWindow) / out.healthy.Sub(out.kill).Seconds()
	out.p99Before, out.p99Affected, out.affectedInWindow = p99(before), p99(affectedIn), len(affectedIn)
	// Every acknowledged like is in PostgreSQL, and its touched mark is in
	// Redis: the writer is not served the batch list the like outdated.
	for u, liked := range acked {
		out.acked += len(liked)
		rs, err := db.UserReactions(ctx, u, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range liked {
			if !slices.ContainsFunc(rs, func(r setlist.Reaction) bool { return r.Song == s && r.Kind == setlist.Like }) {
				out.lostReactions++
			}
		}
		res, err := try(http.MethodGet, "/v1/users/"+url.PathEscape(string(u))+"/recommendations?n=5", nil)
		var a struct {
			Source string `json:"source"`
		}
		if err != nil || res.Status != http.StatusOK || json.Unmarshal(res.Body, &a) != nil {
			t.Fatalf("%s's recommendations after the failover: %d %s %v", u, res.Status, res.Body, err)
		}
		if a.Source == "batch" {
			out.lostMarks++
			t.Logf("%s reacted (acknowledged) but is served its batch list: its touched mark is lost", u)
		}
	}
	return out
}

func p99(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[min(len(d)-1, len(d)*99/100)]
}

func (r Result) String() string {
	degradedFor := time.Duration(0)
	if !r.firstDegraded.IsZero() {
		degradedFor = r.lastDegraded.Sub(r.firstDegraded)
	}
	return fmt.Sprintf("killed master %s; promotion seen healthy %.2f s after the kill, every affected reader served batch again at %.2f s; "+
		"affected readers' degraded answers over %.2f s: %v; %d requests, %d 5xx (%d outside the window, %d on reads); "+
		"unaffected readers' non-batch answers %d; affected readers still on a near-cached fold-in %d of %d; acknowledged likes %d, lost in PostgreSQL %d, writers served a stale batch list (lost touched mark) %d",
		r.killed, r.healthy.Sub(r.kill).Seconds(), r.recovered.Sub(r.kill).Seconds(), degradedFor.Seconds(), r.degraded,
		r.requests, r.fiveXX, r.fiveXXOutside, r.readFiveXX, len(r.othersNotBatch), r.keptFoldIns, r.affectedReaders, r.acked, r.lostReactions, r.lostMarks) +
		fmt.Sprintf("; readiness probes %d, unready %d, ready but degraded %d", r.probes, r.unready, r.readyDegraded) +
		fmt.Sprintf("; reads/s: %.0f in the second before the kill, %.0f from the kill to the promotion (%.0f %%); p99 %v before, %v for the dead master's readers in the window (%d reads, %d over 1 s)",
			r.rateBefore, r.rateWindow, 100*r.rateWindow/max(r.rateBefore, 1), r.p99Before.Round(time.Millisecond), r.p99Affected.Round(time.Millisecond), r.affectedInWindow, r.over1s)
}

// Check fails t where serve did not hold (see the package comment).
func (r Result) Check(t *testing.T) {
	t.Helper()
	if len(r.othersNotBatch) > 0 {
		t.Errorf("readers whose keys live on the other masters were not served their batch list %d times, e.g. %s",
			len(r.othersNotBatch), strings.Join(r.othersNotBatch[:min(5, len(r.othersNotBatch))], "; "))
	}
	if r.fiveXXOutside > 0 || r.readFiveXX > 0 {
		t.Errorf("%d 5xx outside the failover window, %d on reads (reads must fall back, never fail)", r.fiveXXOutside, r.readFiveXX)
	}
	// Serve answered throughout: its readiness must not flap (issue 25
	// item 1), and it must say it is degraded while the master is lost.
	if r.unready > 0 {
		t.Errorf("/readyz failed %d of %d probes through the failover, e.g. %s", r.unready, r.probes, r.unreadyDetail)
	}
	if r.readyDegraded == 0 {
		t.Errorf("no /readyz of %d said redis was degraded while a master was lost", r.probes)
	}
	if r.acked == 0 {
		t.Error("no like was acknowledged: the load wrote nothing")
	}
	if r.lostReactions > 0 || r.lostMarks > 0 {
		t.Errorf("acknowledged writes lost: %d likes missing from PostgreSQL, %d touched marks", r.lostReactions, r.lostMarks)
	}
}
