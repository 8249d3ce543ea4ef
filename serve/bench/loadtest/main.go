// Command loadtest measures serve against the bare Fiber + go-redis baseline
// on the same machine in the same run, on realistic data: the shared Spotify
// playlists export when present (13.6k users × 10k songs), else synthetic data
// of the same size, imported and trained with the real batch CLI (ALS with 64
// factors, or EASE with -family ease; top-20 stored) into a database and
// Redis prefix of its own.
//
// Scenarios, each run -runs times interleaved, reporting best and median:
//
//	bare          GET of the user's stored list (the baseline)
//	bare-mget     the same handler doing serve's MGET of three keys
//	batch         serve, batch hit, near cache off (one MGET + render per request)
//	batch+near    serve, batch hit, near cache on (the production setting)
//	batch@depth5, batch+filter-hit, batch+filter-score: see depth.go
//	fold-in       serve, n above the stored K with the Redis fold-in cache
//	              expiring at once: Postgres read + fold-in (ALS: a solve;
//	              EASE: a sum of B's rows) + top-K every request
//
// Load comes from wrk when it is installed (apt-get install wrk), else from a
// built-in generator; both hold -connections keep-alive connections to
// 127.0.0.1 for -duration. Nothing else is ever targeted.
package main

import (
	"compress/gzip"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/setlist/setlist"
	batchcmd "github.com/setlist/setlist/batch/command"
	"github.com/setlist/setlist/internal/ease"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/keyspace/redistest"
	"github.com/setlist/setlist/internal/model"
	"github.com/setlist/setlist/internal/postgres"
	"github.com/setlist/setlist/serve/bench/loadtest/bare"
	"github.com/setlist/setlist/serve/internal/server"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

type options struct {
	dbURL, redisURL, prefix, data string
	duration                      time.Duration
	connections, runs             int
	generator, cpuProfile         string
	profileScenario, only         string
	foldConnections               int
	wrkCPUs                       string
	wrkThreads                    int
	experimentShare               float64
	family                        string
	cluster                       bool // also measure against a loopback cluster
	redisCluster                  bool // redisURL is a cluster (prepare and batch)
}

func run() error {
	var o options
	flag.StringVar(&o.dbURL, "database-url", "postgres://postgres@127.0.0.1:5432/setlist_bench?sslmode=disable", "database for the benchmark data (created if missing)")
	flag.StringVar(&o.redisURL, "redis-url", "redis://127.0.0.1:6379/0", "Redis")
	flag.StringVar(&o.prefix, "redis-prefix", "setlist-bench", "key prefix of the benchmark model")
	flag.StringVar(&o.data, "data", defaultData(), "interactions CSV (gzip); synthetic data of the same size when absent")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of one measurement")
	flag.IntVar(&o.connections, "connections", 64, "concurrent keep-alive connections")
	flag.IntVar(&o.runs, "runs", 3, "measurements per scenario (best and median reported)")
	flag.StringVar(&o.generator, "generator", "auto", "wrk, go, or auto (wrk when installed)")
	flag.IntVar(&o.foldConnections, "foldin-connections", 2, "connections for the fold-in scenario (one per core measures latency without queueing)")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the first run of -profile-scenario here")
	flag.StringVar(&o.profileScenario, "profile-scenario", "batch", "scenario -cpuprofile profiles")
	flag.StringVar(&o.only, "only", "", "comma-separated scenarios to run (default: all)")
	flag.StringVar(&o.wrkCPUs, "wrk-cpus", "", "run wrk under taskset on these CPUs (e.g. 1), so generator and servers do not share cores: run this program itself under taskset -c 0")
	flag.IntVar(&o.wrkThreads, "wrk-threads", 2, "wrk threads")
	flag.Float64Var(&o.experimentShare, "experiment", 0, "if > 0, add the scenario batch+exp: the batch scenario's server while an A/B experiment "+
		"routes this share of users to a copy of the model under a new version (toggled on around each of its runs, so batch and batch+exp share the run)")
	flag.StringVar(&o.family, "family", "als", "model family to train when none is published under -redis-prefix: als (64 factors) or ease (λ and pruning defaults)")
	flag.BoolVar(&o.cluster, "cluster", false, "also start a Redis Cluster of 3 masters and 3 replicas on loopback ports (Debian's redis-server, as the tests' redistest.StartCluster), republish the model into it from its artifact in PostgreSQL, and run bare, batch and batch+near against it too (scenarios NAME@cluster), interleaved with the single Redis's in the same run")
	flag.Parse()
	if o.duration > 2*time.Minute || o.connections > 1024 || o.runs > 20 {
		return errors.New("refusing an unbounded load: -duration ≤ 2m, -connections ≤ 1024, -runs ≤ 20")
	}
	ctx := context.Background()
	db, rdb, err := prepare(ctx, o)
	if err != nil {
		return err
	}
	defer db.Close()
	defer rdb.Close()
	if err := tagSongs(ctx, db); err != nil {
		return err
	}
	reader := keyspace.NewReader(rdb, o.prefix)
	v, pub, err := loadModel(ctx, reader)
	if err != nil {
		return err
	}
	batchUsers, foldUsers, err := pickUsers(ctx, db, rdb, reader.Keys(), v)
	if err != nil {
		return err
	}
	fmt.Printf("model version %d: %s, K=%d; %d users with a stored list, %d with ≤ 200 reactions for fold-in\n",
		v, describeModel(pub), pub.Meta.K, len(batchUsers), len(foldUsers))

	gen := o.generator
	if gen == "auto" {
		gen = "go"
		if _, err := exec.LookPath("wrk"); err == nil {
			gen = "wrk"
		}
	}
	fmt.Printf("generator %s, %d connections, %v per run, %d runs, GOMAXPROCS shared by server and generator\n\n", gen, o.connections, o.duration, o.runs)

	bareApp := bare.New(rdb, reader.Keys(), v)
	bareURL, stopBare, err := listen(bareApp)
	if err != nil {
		return err
	}
	defer stopBare()
	mgetURL, stopMGet, err := listen(bare.NewMGet(rdb, reader.Keys(), v))
	if err != nil {
		return err
	}
	defer stopMGet()
	cold, err := startServe(db, rdb, o.prefix, 0, time.Hour)
	if err != nil {
		return err
	}
	defer cold.stop()
	warm, err := startServe(db, rdb, o.prefix, 256<<20, time.Hour)
	if err != nil {
		return err
	}
	defer warm.stop()
	fold, err := startServe(db, rdb, o.prefix, 0, time.Millisecond)
	if err != nil {
		return err
	}
	defer fold.stop()
	shallowPrefix := o.prefix + "-depth5"
	if err := shallowCopy(ctx, db, rdb, shallowPrefix, v); err != nil {
		return err
	}
	shallow, err := startServe(db, rdb, shallowPrefix, 0, time.Hour)
	if err != nil {
		return err
	}
	defer shallow.stop()

	n := min(5, pub.Meta.K)
	paths := func(users []string, n int) []string {
		out := make([]string, len(users))
		for i, u := range users {
			out[i] = fmt.Sprintf("/v1/users/%s/recommendations?n=%d", url.PathEscape(u), n)
		}
		return out
	}
	filtered := func(users []string, n int, filter string) []string {
		out := paths(users, n)
		for i := range out {
			out[i] += "&" + filter
		}
		return out
	}
	scenarios := []scenario{
		{name: "bare", base: bareURL, paths: paths(batchUsers, n)},
		{name: "bare-mget", base: mgetURL, paths: paths(batchUsers, n)},
		{name: "batch", base: cold.url, paths: paths(batchUsers, n)},
		{name: "batch@depth5", base: shallow.url, paths: paths(batchUsers, n)},
		{name: "batch+filter-hit", base: cold.url, paths: filtered(batchUsers, n, filterHit)},
		{name: "batch+filter-score", base: cold.url, paths: filtered(batchUsers, n, filterScoring), connections: o.foldConnections},
	}
	if o.experimentShare > 0 {
		exp, err := newBenchExperiment(ctx, db, rdb, reader.Keys(), v, o.experimentShare, cold)
		if err != nil {
			return err
		}
		defer exp.cleanup()
		scenarios = append(scenarios, scenario{name: "batch+exp", base: cold.url, paths: paths(batchUsers, n), around: exp.around})
	}
	scenarios = append(scenarios, []scenario{
		{name: "batch+near", base: warm.url, paths: paths(batchUsers, n)},
		{name: "fold-in", base: fold.url, paths: paths(foldUsers, pub.Meta.K+5), connections: o.foldConnections},
	}...)
	if o.cluster {
		cs, stop, err := clusterScenarios(ctx, o, db, paths(batchUsers, n))
		if err != nil {
			return err
		}
		defer stop()
		scenarios = append(scenarios, cs...)
	}
	results := map[string][]result{}
	for r := range o.runs {
		for _, s := range scenarios {
			if o.only != "" && !slices.Contains(strings.Split(o.only, ","), s.name) {
				continue
			}
			if r == 0 && s.name == o.profileScenario && o.cpuProfile != "" {
				f, err := os.Create(o.cpuProfile)
				if err != nil {
					return err
				}
				_ = pprof.StartCPUProfile(f)
			}
			var res result
			var err error
			if s.around != nil {
				err = s.around(func() error { res, err = measure(gen, s, o); return err })
			} else {
				res, err = measure(gen, s, o)
			}
			if r == 0 && s.name == o.profileScenario && o.cpuProfile != "" {
				pprof.StopCPUProfile()
			}
			if err != nil {
				return fmt.Errorf("%s run %d: %w", s.name, r+1, err)
			}
			fmt.Printf("run %d %-16s %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  non-2xx %d\n", r+1, s.name, res.rps, ms(res.p50), ms(res.p99), res.errors)
			results[s.name] = append(results[s.name], res)
		}
	}
	fmt.Println()
	fmt.Println("| scenario | best req/s | median req/s | median p50 | median p99 | vs bare (median) |")
	fmt.Println("|---|---:|---:|---:|---:|---:|")
	bareMed := math.NaN()
	if len(results["bare"]) > 0 {
		bareMed = median(results["bare"]).rps
	}
	for _, s := range scenarios {
		rs := results[s.name]
		if len(rs) == 0 {
			continue
		}
		best := slices.MaxFunc(rs, func(a, b result) int { return cmpF(a.rps, b.rps) })
		med := median(rs)
		vsBare := "—" // bare not among the scenarios run
		if !math.IsNaN(bareMed) {
			vsBare = fmt.Sprintf("%.2f×", med.rps/bareMed)
		}
		fmt.Printf("| %s | %.0f | %.0f | %.2f ms | %.2f ms | %s |\n", s.name, best.rps, med.rps, ms(med.p50), ms(med.p99), vsBare)
	}
	// The experiment's goal is a ratio to batch in the same run: each
	// run's pair was measured back to back, so its ratio is the fair one.
	if exp, base := results["batch+exp"], results["batch"]; len(exp) > 0 && len(exp) == len(base) {
		ratios := make([]float64, len(exp))
		for i := range exp {
			ratios[i] = exp[i].rps / base[i].rps
		}
		fmt.Printf("\nbatch+exp / batch per run: %s; median %.3f×\n", formatRatios(ratios), medianOf(ratios))
	}
	// The depth's goal is a ratio to the shallow list in the same run.
	for _, name := range []string{"batch", "batch+filter-hit"} {
		deep, shallow := results[name], results["batch@depth5"]
		if len(deep) == 0 || len(deep) != len(shallow) {
			continue
		}
		ratios := make([]float64, len(deep))
		for i := range deep {
			ratios[i] = deep[i].rps / shallow[i].rps
		}
		fmt.Printf("\n%s / batch@depth5 per run: %s; median %.3f×\n", name, formatRatios(ratios), medianOf(ratios))
	}
	if len(results["fold-in"]) == 0 {
		return nil
	}
	fmt.Println("\nserver-side fold-in phases (from setlist_serve_foldin_duration_seconds, all fold-in runs):")
	fmt.Println("| phase | mean | p50 | p99 |")
	fmt.Println("|---|---:|---:|---:|")
	for _, ph := range []string{"postgres_read", "solve", "recommend", "explain", "total"} {
		mean, p50, p99 := histogram(fold.reg, "setlist_serve_foldin_duration_seconds", ph)
		fmt.Printf("| %s | %.3f ms | ≤ %.3f ms | ≤ %.3f ms |\n", ph, mean*1e3, p50*1e3, p99*1e3)
	}
	return nil
}

// clusterScenarios starts a loopback Redis Cluster, republishes the model
// into it (the same version, from its artifact) and serves bare, batch and
// batch+near from it, on the same users' paths as the single Redis's.
func clusterScenarios(ctx context.Context, o options, db *postgres.DB, paths []string) ([]scenario, func(), error) {
	var stops []func()
	stop := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	dir, err := os.MkdirTemp("", "setlist-loadtest-cluster-")
	if err != nil {
		return nil, nil, err
	}
	stops = append(stops, func() { _ = os.RemoveAll(dir) })
	c, err := redistest.StartCluster(dir)
	if err != nil {
		stop()
		return nil, nil, err
	}
	stops = append(stops, c.Close)
	co := o
	co.redisURL, co.redisCluster = c.URL(), true
	fmt.Println("Redis Cluster (3 masters, 3 replicas) at", co.redisURL)
	_, rdb, err := prepare(ctx, co)
	if err != nil {
		stop()
		return nil, nil, err
	}
	stops = append(stops, func() { _ = rdb.Close() })
	reader := keyspace.NewReader(rdb, o.prefix)
	v, err := reader.Current(ctx)
	if err != nil {
		stop()
		return nil, nil, err
	}
	bareURL, stopBare, err := listen(bare.New(rdb, reader.Keys(), v))
	if err != nil {
		stop()
		return nil, nil, err
	}
	stops = append(stops, stopBare)
	cold, err := startServe(db, rdb, o.prefix, 0, time.Hour)
	if err != nil {
		stop()
		return nil, nil, err
	}
	stops = append(stops, cold.stop)
	warm, err := startServe(db, rdb, o.prefix, 256<<20, time.Hour)
	if err != nil {
		stop()
		return nil, nil, err
	}
	stops = append(stops, warm.stop)
	return []scenario{
		{name: "bare@cluster", base: bareURL, paths: paths},
		{name: "batch@cluster", base: cold.url, paths: paths},
		{name: "batch+near@cluster", base: warm.url, paths: paths},
	}, stop, nil
}

func defaultData() string {
	for _, p := range []string{"../shared/data/spotify-playlists/interactions.csv.gz", "/work/shared/data/spotify-playlists/interactions.csv.gz"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// prepare opens the stores and, unless a model is already published under
// the prefix, imports the data and trains one with the batch CLI.
func prepare(ctx context.Context, o options) (*postgres.DB, redis.UniversalClient, error) {
	if _, err := postgres.CreateDatabase(ctx, o.dbURL); err != nil {
		return nil, nil, err
	}
	db, err := postgres.Open(ctx, o.dbURL)
	if err != nil {
		return nil, nil, err
	}
	if _, err := db.Migrate(ctx); err != nil {
		return nil, nil, err
	}
	rdb, err := keyspace.Dial(ctx, o.redisURL, 0, o.redisCluster)
	if err != nil {
		return nil, nil, err
	}
	if _, err := keyspace.NewReader(rdb, o.prefix).Current(ctx); err == nil {
		return db, rdb, nil
	}
	// A model trained by an earlier run (on another Redis) is rebuilt from
	// its artifact in seconds; only a fresh database imports and trains.
	if err := batch(ctx, o, "republish"); err == nil {
		fmt.Println("republished the published model from its artifact")
		return db, rdb, nil
	}
	csv := o.data
	if _, err := os.Stat(csv); csv == "" || err != nil {
		fmt.Println("shared data absent: generating synthetic data of the same size (13.6k users, 10k songs, 1.6M rows)")
		csv = filepath.Join(os.TempDir(), "setlist-bench-synth.csv.gz")
		if err := batch(ctx, o, "synth", "--users", "13600", "--songs", "10000", "--reactions", "1600000", "--out", csv); err != nil {
			return nil, nil, err
		}
	} else if err := checkGzip(csv); err != nil {
		return nil, nil, err
	}
	fmt.Println("importing", csv)
	if err := batch(ctx, o, "import", "--csv", csv); err != nil {
		return nil, nil, err
	}
	if err := batch(ctx, o, trainArgs(o.family)...); err != nil {
		return nil, nil, err
	}
	return db, rdb, nil
}

// trainArgs is the batch train the load test publishes with.
func trainArgs(family string) []string {
	args := []string{"train", "--family", family, "--depth", "20", "--force", "--eval-users", "2000"}
	if family == "als" {
		args = append(args, "--factors", "64")
	}
	fmt.Printf("training and publishing (%s, top 20 per user)\n", family)
	return args
}

// loadModel reads the current version the load runs against.
func loadModel(ctx context.Context, reader *keyspace.Reader) (keyspace.Version, *model.Published, error) {
	v, err := reader.Current(ctx)
	if err != nil {
		return 0, nil, err
	}
	pub, err := reader.Load(ctx, v)
	if err != nil {
		return 0, nil, err
	}
	return v, pub, nil
}

// describeModel names a published model's family and shape through the
// family-agnostic item model (pub.Side is nil for an EASE version).
func describeModel(pub *model.Published) string {
	im := pub.Items
	s := fmt.Sprintf("%s, %d items", im.Family(), im.NumItems())
	if side := model.ALSSide(im); side != nil {
		s += fmt.Sprintf(" × %d factors", side.Factors)
	}
	if e, ok := im.(interface{ Pruned() *ease.Pruned }); ok {
		s += fmt.Sprintf(", B pruned to %d a row", e.Pruned().M)
	}
	return s
}

func checkGzip(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := gzip.NewReader(f); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	return nil
}

func batch(ctx context.Context, o options, args ...string) error {
	full := []string{"batch", "--database-url", o.dbURL, "--redis-url", o.redisURL, "--redis-prefix", o.prefix, "--log-level", "warn"}
	if o.redisCluster {
		full = append(full, "--redis-cluster")
	}
	full = append(full, args...)
	if code := batchcmd.Run(ctx, batchcmd.NewApp("loadtest"), full); code != 0 {
		return fmt.Errorf("batch %s exited %d", args[0], code)
	}
	return nil
}

// pickUsers returns users with a stored list, and users with 1 to 200
// reactions (the fold-in goal's bound).
func pickUsers(ctx context.Context, db *postgres.DB, rdb redis.UniversalClient, keys keyspace.Keys, v keyspace.Version) (batchUsers, foldUsers []string, err error) {
	rows, err := db.Pool.Query(ctx, `SELECT u.external_id, count(*) FROM users u JOIN reactions r ON r.user_id = u.id GROUP BY u.external_id ORDER BY u.external_id`)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var all []string
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, nil, err
		}
		all = append(all, id)
		if n <= 200 {
			foldUsers = append(foldUsers, id)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	// One EXISTS per key, pipelined: users' keys are in different slots
	// of a cluster, where a multi-key EXISTS would be refused.
	for _, chunk := range slices.Collect(slices.Chunk(all, 1000)) {
		pipe := rdb.Pipeline()
		cmds := make([]*redis.IntCmd, len(chunk))
		for i, u := range chunk {
			cmds[i] = pipe.Exists(ctx, keys.Recs(v, setlist.UserID(u)))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, nil, err
		}
		for i, c := range cmds {
			if c.Val() == 1 {
				batchUsers = append(batchUsers, chunk[i])
			}
		}
	}
	if len(batchUsers) == 0 || len(foldUsers) == 0 {
		return nil, nil, fmt.Errorf("no users to load-test with (%d with lists, %d for fold-in)", len(batchUsers), len(foldUsers))
	}
	return batchUsers, foldUsers, nil
}

type servePeer struct {
	url  string
	reg  *prometheus.Registry
	srv  *server.Server
	stop func()
}

func startServe(db *postgres.DB, rdb redis.UniversalClient, prefix string, nearCache int64, foldInTTL time.Duration) (*servePeer, error) {
	var cfg server.Config
	cfg.Recs.NearCacheBytes = nearCache
	cfg.Recs.FoldInTTL = foldInTTL
	cfg.Recs.Explain = 1
	reg := prometheus.NewRegistry()
	srv, err := server.New(cfg, server.Deps{DB: db, Redis: rdb, RedisPrefix: prefix, Registry: reg,
		Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go func() { _ = srv.Serve(ln) }()
	deadline := time.Now().Add(60 * time.Second)
	for srv.Recs().Current() == nil {
		if time.Now().After(deadline) {
			return nil, errors.New("serve loaded no model within 60s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &servePeer{url: "http://" + ln.Addr().String(), reg: reg, srv: srv, stop: func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}}, nil
}

func listen(app *fiber.App) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	go func() { _ = app.Listener(ln) }()
	return "http://" + ln.Addr().String(), func() { _ = app.Shutdown() }, nil
}

type scenario struct {
	name        string
	base        string
	paths       []string
	connections int // 0: -connections
	// around, if set, wraps the measurement (batch+exp: the experiment
	// runs only while it is measured).
	around func(measure func() error) error
}

type result struct {
	rps      float64
	p50, p99 time.Duration
	errors   int
}

func measure(gen string, s scenario, o options) (result, error) {
	if !strings.HasPrefix(s.base, "http://127.0.0.1:") {
		return result{}, fmt.Errorf("refusing to load %s: loopback only", s.base)
	}
	// A short warm-up so connection set-up and first-touch costs are not
	// measured (and the near cache holds what it would in steady state).
	if s.connections > 0 {
		o.connections = s.connections
	}
	if _, err := goLoad(s, o.connections, time.Second); err != nil {
		return result{}, err
	}
	if gen == "wrk" {
		return wrkLoad(s, o)
	}
	return goLoad(s, o.connections, o.duration)
}

// wrkLoad runs wrk with a script that walks the scenario's paths.
func wrkLoad(s scenario, o options) (result, error) {
	dir, err := os.MkdirTemp("", "setlist-wrk")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	list := filepath.Join(dir, "paths.txt")
	if err := os.WriteFile(list, []byte(strings.Join(s.paths, "\n")+"\n"), 0o644); err != nil {
		return result{}, err
	}
	script := filepath.Join(dir, "paths.lua")
	lua := `local paths = {}
for line in io.lines("` + list + `") do paths[#paths + 1] = line end
local i = 0
function setup(thread) i = i + 1; thread:set("offset", i * 7919) end
function init(args) counter = offset or 0 end
function request()
  counter = counter + 1
  return wrk.format("GET", paths[(counter % #paths) + 1])
end
`
	if err := os.WriteFile(script, []byte(lua), 0o644); err != nil {
		return result{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.duration+30*time.Second)
	defer cancel()
	args := []string{"wrk", "-t", strconv.Itoa(o.wrkThreads), "-c", strconv.Itoa(o.connections), "-d", fmt.Sprintf("%ds", int(o.duration.Seconds())),
		"--latency", "-s", script, s.base}
	if o.wrkCPUs != "" {
		args = append([]string{"taskset", "-c", o.wrkCPUs}, args...)
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return result{}, fmt.Errorf("wrk: %w: %s", err, out)
	}
	return parseWrk(string(out))
}

var (
	wrkRPS     = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	wrkPct     = regexp.MustCompile(`(?m)^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)`)
	wrkNon2xx  = regexp.MustCompile(`Non-2xx or 3xx responses:\s+(\d+)`)
	wrkSockErr = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

func parseWrk(out string) (result, error) {
	var r result
	m := wrkRPS.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("cannot read wrk output:\n%s", out)
	}
	r.rps, _ = strconv.ParseFloat(m[1], 64)
	for _, p := range wrkPct.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(p[2], 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[p[3]]
		d := time.Duration(v * float64(unit))
		if p[1] == "50" {
			r.p50 = d
		} else {
			r.p99 = d
		}
	}
	if m := wrkNon2xx.FindStringSubmatch(out); m != nil {
		r.errors, _ = strconv.Atoi(m[1])
	}
	if m := wrkSockErr.FindStringSubmatch(out); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.Atoi(s)
			r.errors += n
		}
	}
	return r, nil
}

// goLoad is the built-in generator: connections goroutines, each with one
// keep-alive connection, sending requests back to back until d has passed.
func goLoad(s scenario, connections int, d time.Duration) (result, error) {
	var (
		mu        sync.Mutex
		latencies []time.Duration
		errs      int
		wg        sync.WaitGroup
	)
	deadline := time.Now().Add(d)
	start := time.Now()
	for c := range connections {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1}}
			defer client.CloseIdleConnections()
			var local []time.Duration
			bad := 0
			for i := c * 7919; time.Now().Before(deadline); i++ {
				t0 := time.Now()
				res, err := client.Get(s.base + s.paths[i%len(s.paths)])
				if err != nil {
					bad++
					continue
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					bad++
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			latencies = append(latencies, local...)
			errs += bad
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if len(latencies) == 0 {
		return result{}, errors.New("no request completed")
	}
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	q := func(p float64) time.Duration { return latencies[min(len(latencies)-1, int(p*float64(len(latencies))))] }
	return result{rps: float64(len(latencies)) / elapsed.Seconds(), p50: q(0.50), p99: q(0.99), errors: errs}, nil
}

// histogram returns the mean and the bucket upper bounds holding the median
// and the 99th percentile of one label value of a histogram.
func histogram(g prometheus.Gatherer, name, phase string) (mean, p50, p99 float64) {
	mfs, err := g.Gather()
	if err != nil {
		return math.NaN(), math.NaN(), math.NaN()
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if !hasLabel(m, "phase", phase) {
				continue
			}
			h := m.GetHistogram()
			n := float64(h.GetSampleCount())
			if n == 0 {
				return 0, 0, 0
			}
			bound := func(q float64) float64 {
				for _, b := range h.GetBucket() {
					if float64(b.GetCumulativeCount()) >= q*n {
						return b.GetUpperBound()
					}
				}
				return math.Inf(1)
			}
			return h.GetSampleSum() / n, bound(0.5), bound(0.99)
		}
	}
	return 0, 0, 0
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

func median(rs []result) result {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b result) int { return cmpF(a.rps, b.rps) })
	return s[len(s)/2]
}

func cmpF(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func formatRatios(rs []float64) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%.3f", r)
	}
	return strings.Join(parts, ", ")
}

func medianOf(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
