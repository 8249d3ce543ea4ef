package figures

import (
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/setlist/setlist/batch/shard"
	"github.com/setlist/setlist/internal/als"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/keyspace/redistest"
	"github.com/setlist/setlist/internal/pipeline"
	"github.com/setlist/setlist/internal/postgres"
	"github.com/setlist/setlist/internal/postgres/pgtest"
	"github.com/setlist/setlist/internal/realdata"
	"github.com/setlist/setlist/internal/store"
	"github.com/setlist/setlist/internal/synth"
)

// What one precompute shard costs (issue 25 item 5, docs/BENCHMARKS.md
// "Precompute shard", docs/scaling.md): synthetic data (internal/synth, as
// `batch synth` writes it: a fixed catalog, ~50 reactions a user) imported
// into PostgreSQL, a version trained and staged as `batch train
// --stage-only` does (one ALS iteration: the item side's values do not
// change the precompute's cost), then shard 0 of N run in a child process
// of its own with GOMAXPROCS=1 (the Job's pod has one CPU), so its CPU time
// and peak RSS are its own. The child then ranks as many random users with
// training's top-5 (als.TopNAll on the same item side) for comparison.
// Gated:
//
//	go test -c -o /tmp/figures.test ./bench/figures/
//	cd bench/figures && SETLIST_FIGURES=1 SETLIST_PRECOMPUTE_USERS=1000000 \
//	  SETLIST_PRECOMPUTE_SHARD_USERS=100000,1000000 \
//	  /tmp/figures.test -test.run TestPrecomputeFigures -test.v -test.timeout 240m
//
// SETLIST_PRECOMPUTE_SONGS (20000) and SETLIST_PRECOMPUTE_PER_USER (50)
// shape the data; SETLIST_PRECOMPUTE_DATABASE_URL keeps the imported data
// in that database across runs (imported when it has no users) instead of
// a throwaway one; SETLIST_PRECOMPUTE_CPUPROFILE writes a CPU profile of
// each shard run (the last size's remains; `go tool pprof -top` it against
// the test binary); SETLIST_PRECOMPUTE_BEFORE names a test binary of this
// harness built at an earlier commit (before issue 26 it was batch/shard's
// test binary, `go test -c ./batch/shard/`), which then also runs the first
// shard size (a before-and-after figure); result lines are appended to
// SETLIST_FIGURES_OUT.
func TestPrecomputeFigures(t *testing.T) {
	if v := os.Getenv("SETLIST_PRECOMPUTE_CHILD"); v != "" {
		precomputeChild(t, v)
		return
	}
	skipUnlessFigures(t, "a precompute shard's CPU and memory (minutes to hours, GBs)")
	users := realdata.EnvInt(t, "SETLIST_PRECOMPUTE_USERS", 100000)
	songs := realdata.EnvInt(t, "SETLIST_PRECOMPUTE_SONGS", 20000)
	perUser := realdata.EnvInt(t, "SETLIST_PRECOMPUTE_PER_USER", 50)
	ctx := context.Background()
	url := os.Getenv("SETLIST_PRECOMPUTE_DATABASE_URL")
	if url == "" {
		url = pgtest.URL(t)
	}
	db, _, err := postgres.OpenMigrated(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var have int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM users`).Scan(&have); err != nil {
		t.Fatal(err)
	}
	if have == 0 {
		start := time.Now()
		pr, pw := io.Pipe()
		go func() {
			_, err := synth.Write(pw, synth.Config{Users: users, Songs: songs, Reactions: int64(users) * int64(perUser), Clusters: 50, Seed: 1})
			pw.CloseWithError(err)
		}()
		if _, err := db.Import(ctx, pr, store.ImportOptions{Source: "synth"}); err != nil {
			t.Fatal(err)
		}
		t.Logf("imported %d users × %d songs in %s", users, songs, time.Since(start).Round(time.Second))
	} else {
		users = have
	}

	rdb, prefix := redistest.Client(t)
	one := 1
	start := time.Now()
	res, err := pipeline.Run(ctx, pipeline.Config{Force: true, K: 5, StageOnly: true, ColdStart: true, EvalUsers: 10000,
		Overrides: pipeline.Overrides{Iterations: &one}},
		pipeline.Deps{Source: db, Registry: db, Locker: db, Publisher: keyspace.NewPublisher(rdb, keyspace.NewKeys(prefix))})
	if err != nil {
		t.Fatalf("train and stage: %v", err)
	}
	t.Logf("version %d trained and staged in %s", res.Version, time.Since(start).Round(time.Second))

	logf := realdata.FigureLog(t)
	sizes := strings.Split(realdata.EnvOr("SETLIST_PRECOMPUTE_SHARD_USERS", "100000"), ",")
	first, _ := strconv.Atoi(strings.TrimSpace(sizes[0]))
	for _, s := range sizes {
		size, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || size < 1 {
			t.Fatalf("SETLIST_PRECOMPUTE_SHARD_USERS: %q", s)
		}
		shards := max(users/size, 1)
		arg, _ := json.Marshal(childArgs{URL: url, Prefix: prefix, Version: int64(res.Version), Shards: shards})
		load := realdata.LoadAvg()
		var r childResult
		env := []string{"SETLIST_PRECOMPUTE_CHILD=" + string(arg), "GOMAXPROCS=1"}
		if before := os.Getenv("SETLIST_PRECOMPUTE_BEFORE"); before != "" && size == first {
			// The same shard by an older build of this harness (a test
			// binary of an earlier commit), on the same data and version.
			var b childResult
			realdata.RunChildOf(t, before, "^TestPrecomputeFigures$", "PRECOMPUTE", env, &b)
			n := float64(max(b.Users, 1))
			logf("BEFORE (%s) load before %s | shard 0/%d: %d users, %d lists | CPU %.1f s = %.3f ms/user | peak RSS %d MiB, Go heap peak %d MiB | wall %.1f s",
				before, load, shards, b.Users, b.Written, b.CPU, 1000*b.CPU/n, b.PeakRSS>>20, b.HeapPeak>>20, b.Wall)
		}
		realdata.RunChild(t, "^TestPrecomputeFigures$", "PRECOMPUTE", env, &r)
		n := float64(max(r.Users, 1))
		logf("load before %s | %d songs | shard 0/%d: %d users, %d lists | CPU %.1f s = %.3f ms/user | peak RSS %d MiB, Go heap peak %d MiB | wall %.1f s (read %.1f, rank %.1f, write %.1f) | training's top-5, same side and users: CPU %.1f s = %.3f ms/user",
			load, songs, shards, r.Users, r.Written, r.CPU, 1000*r.CPU/n, r.PeakRSS>>20, r.HeapPeak>>20,
			r.Wall, r.Read, r.Rank, r.Write, r.TopKCPU, 1000*r.TopKCPU/n)
	}
}

type childArgs struct {
	URL, Prefix string
	Version     int64
	Shards      int
}

type childResult struct {
	Users, Written    int     // users in the shard's range, lists written
	CPU, Wall         float64 // the shard's user+system CPU seconds and wall seconds
	Read, Rank, Write float64 // wall seconds per phase (shard.Phases)
	PeakRSS, HeapPeak int64   // VmHWM and the Go heap's peak over the run
	TopKCPU           float64 // training's top-5 for as many users on the same side
}

// precomputeChild runs shard 0 and prints "PRECOMPUTE {json}".
func precomputeChild(t *testing.T, arg string) {
	var a childArgs
	if err := json.Unmarshal([]byte(arg), &a); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	db, err := postgres.Open(ctx, a.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	opts, err := redis.ParseURL(redistest.ServerURL())
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()

	if path := os.Getenv("SETLIST_PRECOMPUTE_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			t.Fatal(err)
		}
	}
	heap := realdata.SampleHeap()
	start, c0 := time.Now(), realdata.CPUSeconds()
	res, err := shard.Run(ctx, db, rdb, a.Prefix, shard.Config{Version: keyspace.Version(a.Version), Shards: a.Shards, Index: 0})
	pprof.StopCPUProfile() // a no-op without the profile
	if err != nil {
		t.Fatal(err)
	}
	r := childResult{Users: res.Hi - res.Lo, Written: res.Written, CPU: realdata.CPUSeconds() - c0, Wall: time.Since(start).Seconds(),
		Read: res.Phases.Read.Seconds(), Rank: res.Phases.Rank.Seconds(), Write: res.Phases.Write.Seconds()}
	r.HeapPeak = heap()
	r.PeakRSS = realdata.PeakRSS()

	// Training's top-5 (the batch kernel, with GOMAXPROCS=1) for as many
	// users against the same item side, after the peak was read.
	pub, err := keyspace.NewReader(rdb, a.Prefix).Load(ctx, keyspace.Version(a.Version))
	if err != nil {
		t.Fatal(err)
	}
	side := pub.Side
	rng := rand.New(rand.NewPCG(1, 2))
	uf := make([]float32, r.Users*side.Factors)
	for i := range uf {
		uf[i] = float32(rng.NormFloat64()) * 0.1
	}
	c0 = realdata.CPUSeconds()
	if _, err := als.TopNAll(ctx, uf, side, 5, nil, nil, 1); err != nil {
		t.Fatal(err)
	}
	r.TopKCPU = realdata.CPUSeconds() - c0
	runtime.KeepAlive(uf)
	realdata.PrintResult("PRECOMPUTE", r)
}
