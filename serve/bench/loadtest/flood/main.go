// Command flood repeats the fold-in flood of issue 18 against a real serve
// (in-process, on a random loopback port, over PostgreSQL and Redis) and
// reports what other users see meanwhile.
//
// The data, built with the test fixtures on first use: 10,000 songs and a
// random 64-factor model; 5,000 "quiet" users with 50 reactions each; one
// "flooded" user with 17,700 (a play of every song, and a like of 7,700),
// the size that cost 0.3 s per fold-in in the issue. No user has a batch
// list, so every first request for a user is a fold-in. Each run publishes
// a new version, so no Redis fold-in cache survives from a previous run.
//
// Two phases of -duration each: quiet (probes only), then flood (probes,
// and every -interval one play on the flooded user followed by -parallel
// GETs of its recommendations, at once). Probes are open-loop at
// -probe-rate per second, each a GET for a quiet user not asked before: a
// real fold-in every time. It reports the probes' p50/p99 in both phases
// and their ratio (goal: within 2×), and how many times the flooded user's
// history was read per play (goal: 1).
//
// With -near-cache-users N it measures the near cache's memory instead: it
// asks N quiet users for n = 97, 98, 99 and 100 (four large answers each,
// the worst case) and reports the process's RSS and live heap growth
// per user and the bytes the cache charged, against --near-cache-bytes
// (-near-cache-bytes; default auto).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/model"
	"github.com/setlist/setlist/internal/postgres"
	"github.com/setlist/setlist/serve/internal/fixture"
	"github.com/setlist/setlist/serve/internal/recs"
	"github.com/setlist/setlist/serve/internal/server"
)

const (
	songs          = 10000
	quietUsers     = 5000
	quietReactions = 50
	floodedLikes   = 7700 // + a play of every song: 17,700 reactions
	flooded        = setlist.UserID("flooded")
)

type options struct {
	dbURL, redisURL, prefix string
	duration, interval      time.Duration
	parallel, probeRate     int
	maxReactions, slots     int
	nearUsers               int
	nearBytes               string
}

func main() {
	var o options
	flag.StringVar(&o.dbURL, "database-url", "postgres://postgres@127.0.0.1:5432/setlist_flood?sslmode=disable", "database of the flood data (created and filled if empty)")
	flag.StringVar(&o.redisURL, "redis-url", "redis://127.0.0.1:6379/0", "Redis")
	flag.StringVar(&o.prefix, "redis-prefix", "setlist-flood", "key prefix of the flood's model")
	flag.DurationVar(&o.duration, "duration", 20*time.Second, "length of each phase (quiet, then flood)")
	flag.DurationVar(&o.interval, "interval", 5*time.Second, "time between two floods")
	flag.IntVar(&o.parallel, "parallel", 100, "GETs for the flooded user sent at once after each play")
	flag.IntVar(&o.probeRate, "probe-rate", 40, "other users' fold-in requests per second (open loop)")
	flag.IntVar(&o.maxReactions, "foldin-max-reactions", recs.DefaultFoldInMaxReactions, "serve's --foldin-max-reactions (-1: no cap)")
	flag.IntVar(&o.slots, "foldin-concurrency", 0, "serve's --foldin-concurrency (0: two per CPU)")
	flag.IntVar(&o.nearUsers, "near-cache-users", 0, "measure the near cache's memory with this many users instead of flooding")
	flag.StringVar(&o.nearBytes, "near-cache-bytes", "auto", "serve's --near-cache-bytes for -near-cache-users (auto, or bytes)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "flood:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.duration > 5*time.Minute || o.parallel > 1000 || o.probeRate > 1000 || o.interval < 100*time.Millisecond {
		return errors.New("refusing an unbounded load: -duration ≤ 5m, -parallel ≤ 1000, -probe-rate ≤ 1000, -interval ≥ 100ms")
	}
	ctx := context.Background()
	if _, err := postgres.CreateDatabase(ctx, o.dbURL); err != nil {
		return err
	}
	db, _, err := postgres.OpenMigrated(ctx, o.dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	opts, err := redis.ParseURL(o.redisURL)
	if err != nil {
		return err
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	catalog, err := prepare(ctx, db)
	if err != nil {
		return err
	}
	v := model.Version(1)
	if cur, err := keyspace.NewReader(rdb, o.prefix).Current(ctx); err == nil {
		v = cur + 1
	}
	if err := fixture.Publish(ctx, rdb, o.prefix, fixture.Version{Version: v, Songs: catalog, Factors: 64, Seed: 1, K: 20}); err != nil {
		return err
	}

	counted := &countingDB{DB: db, user: flooded}
	var cfg server.Config
	cfg.Recs.FoldInMaxReactions = o.maxReactions
	cfg.Recs.FoldInConcurrency = o.slots
	cfg.Recs.NearCacheBytes, _ = recs.AutoNearCacheBytes()
	if o.nearBytes != "auto" {
		if cfg.Recs.NearCacheBytes, err = strconv.ParseInt(o.nearBytes, 10, 64); err != nil {
			return fmt.Errorf("-near-cache-bytes: %w", err)
		}
	}
	cfg.Recs.Explain = 1
	reg := prometheus.NewRegistry()
	srv, err := server.New(cfg, server.Deps{DB: counted, Redis: rdb, RedisPrefix: o.prefix, Registry: reg,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go func() { _ = srv.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	for deadline := time.Now().Add(time.Minute); srv.Recs().Current() == nil || srv.Recs().Current().Version != v; {
		if time.Now().After(deadline) {
			return errors.New("serve loaded no model within a minute")
		}
		time.Sleep(50 * time.Millisecond)
	}
	base := "http://" + ln.Addr().String()
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: o.parallel + 64}}

	if o.nearUsers > 0 {
		return nearCache(hc, base, o, cfg.Recs.NearCacheBytes, reg)
	}
	fmt.Printf("load average at start: %s\n", loadAvg())
	fmt.Printf("model version %d: %d songs × 64 factors; flooded user: %d reactions; --foldin-max-reactions %d, --foldin-concurrency %d (GOMAXPROCS %d)\n",
		v, songs, songs+floodedLikes, o.maxReactions, o.slots, runtimeProcs())
	next := atomic.Int64{}
	quiet := probe(hc, base, o, &next, nil)
	fmt.Printf("quiet: %s\n", quiet)

	stop := make(chan struct{})
	floodDone := make(chan floodResult, 1)
	go func() { floodDone <- flood(hc, base, o, catalog, stop) }()
	loud := probe(hc, base, o, &next, stop)
	fr := <-floodDone
	fmt.Printf("flood: %s\n", loud)
	reads := counted.reads.Load()
	fmt.Printf("flooded user: %d plays, %d GETs (%d × 200, %d × 503, %d other), GET p50 %s p99 %s; its history was read %d times: %.2f per play\n",
		fr.plays, len(fr.lat), fr.ok, fr.busy, fr.other, pct(fr.lat, 50), pct(fr.lat, 99), reads, float64(reads)/float64(max(fr.plays, 1)))
	fmt.Printf("other users' fold-in p99: quiet %s, during the flood %s: %.2f× (goal ≤ 2×)\n",
		pct(quiet.lat, 99), pct(loud.lat, 99), float64(pct(loud.lat, 99))/float64(max(pct(quiet.lat, 99), 1)))
	fmt.Printf("load average at end: %s\n", loadAvg())
	return nil
}

// countingDB is the real database, counting reads of one user's history.
type countingDB struct {
	*postgres.DB
	user  setlist.UserID
	reads atomic.Int64
}

func (c *countingDB) UserReactions(ctx context.Context, u setlist.UserID, limit int) ([]setlist.Reaction, error) {
	if u == c.user {
		c.reads.Add(1)
	}
	return c.DB.UserReactions(ctx, u, limit)
}

// prepare fills an empty database (songs, quiet users, the flooded user)
// and returns the catalog in id order.
func prepare(ctx context.Context, db *postgres.DB) ([]setlist.SongID, error) {
	var have int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM users WHERE external_id = $1`, string(flooded)).Scan(&have); err != nil {
		return nil, err
	}
	if have == 0 {
		fmt.Println("building the flood data (10,000 songs, 5,000 users × 50 reactions, one user × 17,700)")
		ids, err := fixture.Songs(ctx, db, 0, songs)
		if err != nil {
			return nil, err
		}
		users := []setlist.UserID{flooded}
		for i := range quietUsers {
			users = append(users, quietUser(i))
		}
		if err := fixture.Users(ctx, db, users); err != nil {
			return nil, err
		}
		rng := rand.New(rand.NewPCG(1, 2))
		var rs []setlist.Reaction
		for i := range quietUsers {
			for _, j := range rng.Perm(songs)[:quietReactions] {
				kind := setlist.Play
				if j%10 == 0 {
					kind = setlist.Like
				}
				rs = append(rs, setlist.Reaction{User: quietUser(i), Song: ids[j], Kind: kind, Weight: float64(1 + j%4)})
			}
		}
		for j, id := range ids {
			rs = append(rs, setlist.Reaction{User: flooded, Song: id, Kind: setlist.Play, Weight: float64(1 + j%5)})
			if j < floodedLikes {
				rs = append(rs, setlist.Reaction{User: flooded, Song: id, Kind: setlist.Like, Weight: 1})
			}
		}
		if err := fixture.Reactions(ctx, db, rs); err != nil {
			return nil, err
		}
	}
	rows, err := db.Pool.Query(ctx, `SELECT id FROM songs WHERE artist LIKE 'Artist %' ORDER BY id LIMIT $1`, songs)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []setlist.SongID
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, setlist.SongID(id))
	}
	if len(ids) != songs {
		return nil, fmt.Errorf("the flood database has %d fixture songs, want %d: drop it and run again", len(ids), songs)
	}
	return ids, rows.Err()
}

func quietUser(i int) setlist.UserID { return setlist.UserID(fmt.Sprintf("quiet-%05d", i)) }

type probeResult struct {
	lat       []time.Duration
	ok, other int
}

func (p probeResult) String() string {
	return fmt.Sprintf("%d fold-ins of other users, %d × 200, %d other; p50 %s, p90 %s, p99 %s, max %s",
		len(p.lat), p.ok, p.other, pct(p.lat, 50), pct(p.lat, 90), pct(p.lat, 99), pct(p.lat, 100))
}

// probe sends -probe-rate GETs a second, each for a quiet user not asked
// before, for -duration; then it closes stop (if any) and returns.
func probe(hc *http.Client, base string, o options, next *atomic.Int64, stop chan struct{}) probeResult {
	var (
		mu  sync.Mutex
		res probeResult
		wg  sync.WaitGroup
	)
	tick := time.NewTicker(time.Second / time.Duration(o.probeRate))
	defer tick.Stop()
	end := time.After(o.duration)
loop:
	for {
		select {
		case <-end:
			break loop
		case <-tick.C:
		}
		i := int(next.Add(1)-1) % quietUsers
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			code := get(hc, fmt.Sprintf("%s/v1/users/%s/recommendations?n=5", base, quietUser(i)))
			d := time.Since(start)
			mu.Lock()
			defer mu.Unlock()
			res.lat = append(res.lat, d)
			if code == http.StatusOK {
				res.ok++
			} else {
				res.other++
			}
		}()
	}
	if stop != nil {
		close(stop)
	}
	wg.Wait()
	return res
}

type floodResult struct {
	plays, ok, busy, other int
	lat                    []time.Duration
}

// flood plays a song for the flooded user, then sends -parallel GETs for
// it at once, every -interval until stop.
func flood(hc *http.Client, base string, o options, catalog []setlist.SongID, stop chan struct{}) floodResult {
	var (
		res floodResult
		mu  sync.Mutex
	)
	tick := time.NewTicker(o.interval)
	defer tick.Stop()
	for {
		body := fmt.Sprintf(`{"song_id": %d, "kind": "play"}`, catalog[rand.IntN(len(catalog))])
		req, _ := http.NewRequest(http.MethodPost, base+"/v1/users/flooded/reactions", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if r, err := hc.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, r.Body)
			r.Body.Close()
			if r.StatusCode == http.StatusCreated {
				res.plays++
			}
		}
		var wg sync.WaitGroup
		for range o.parallel {
			wg.Add(1)
			go func() {
				defer wg.Done()
				start := time.Now()
				code := get(hc, base+"/v1/users/flooded/recommendations?n=5")
				d := time.Since(start)
				mu.Lock()
				defer mu.Unlock()
				res.lat = append(res.lat, d)
				switch code {
				case http.StatusOK:
					res.ok++
				case http.StatusServiceUnavailable:
					res.busy++
				default:
					res.other++
				}
			}()
		}
		wg.Wait()
		select {
		case <-stop:
			return res
		case <-tick.C:
		}
	}
}

func get(hc *http.Client, u string) int {
	r, err := hc.Get(u)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, r.Body)
	r.Body.Close()
	return r.StatusCode
}

// pct is the p-th percentile (nearest rank) of ds, rounded for display.
func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := min(len(s)-1, max(0, (len(s)*p+99)/100-1))
	return s[i].Round(10 * time.Microsecond)
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }

// nearCache asks users for four large answers each and reports the memory
// the near cache made the process hold.
func nearCache(hc *http.Client, base string, o options, bound int64, reg *prometheus.Registry) error {
	fmt.Printf("load average at start: %s; near cache bound %d bytes; GOMEMLIMIT %s\n", loadAvg(), bound, os.Getenv("GOMEMLIMIT"))
	rss0, heap0 := memory()
	var wg sync.WaitGroup
	work := make(chan int)
	var failed atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				for n := 97; n <= 100; n++ {
					if get(hc, fmt.Sprintf("%s/v1/users/%s/recommendations?n=%d", base, quietUser(i), n)) != http.StatusOK {
						failed.Add(1)
					}
				}
			}
		}()
	}
	for i := range min(o.nearUsers, quietUsers) {
		work <- i
	}
	close(work)
	wg.Wait()
	rss1, heap1 := memory()
	entries, bytes := gauge(reg, "setlist_serve_near_cache_entries"), gauge(reg, "setlist_serve_near_cache_bytes")
	users := min(o.nearUsers, quietUsers)
	fmt.Printf("%d users × n=97..100 (%d failed): near cache holds %.0f users, %.0f bytes charged (%.0f per user)\n",
		users, failed.Load(), entries, bytes, bytes/max(entries, 1))
	fmt.Printf("RSS grew %d MiB (%d bytes per user asked), live heap %d MiB (%d per user asked)\n",
		(rss1-rss0)>>20, (rss1-rss0)/int64(users), (heap1-heap0)>>20, (heap1-heap0)/int64(users))
	fmt.Printf("load average at end: %s\n", loadAvg())
	return nil
}

// memory is the process's resident set and its live heap after a GC.
func memory() (rss, heap int64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			rss = kb << 10
		}
	}
	return rss, int64(ms.HeapAlloc)
}

func gauge(reg *prometheus.Registry, name string) float64 {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return 0
}
