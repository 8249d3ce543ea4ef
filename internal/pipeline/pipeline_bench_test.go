package pipeline_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/keyspace/redistest"
	"github.com/setlist/setlist/internal/pipeline"
	"github.com/setlist/setlist/internal/postgres"
	"github.com/setlist/setlist/internal/postgres/pgtest"
	"github.com/setlist/setlist/internal/store"
	"github.com/setlist/setlist/internal/synth"
)

// sharedData is the Spotify playlist benchmark (1.65M reactions), from
// SETLIST_DATA or the shared checkout next to the repository.
func sharedData(b *testing.B) string {
	path := os.Getenv("SETLIST_DATA")
	if path == "" {
		path = filepath.Join("..", "..", "..", "shared", "data", "spotify-playlists", "interactions.csv.gz")
	}
	if _, err := os.Stat(path); err != nil {
		b.Skipf("benchmark data not found at %s (set SETLIST_DATA to the interactions CSV): %v", path, err)
	}
	return path
}

// benchPipeline runs the whole pipeline b.N times on an imported database
// and reports each phase's mean seconds, logging every run's phases.
func benchPipeline(b *testing.B, db *postgres.DB, cfg pipeline.Config) {
	rdb, prefix := redistest.Client(b)
	pub := keyspace.NewPublisher(rdb, keyspace.NewKeys(prefix))
	deps := pipeline.Deps{Source: db, Registry: db, Locker: db, Publisher: pub}
	sums := map[string]float64{}
	var last *pipeline.Result
	for b.Loop() {
		res, err := pipeline.Run(context.Background(), cfg, deps)
		if err != nil {
			b.Fatal(err)
		}
		for k, v := range res.Timings {
			sums[k] += v
		}
		// Per-run lines give best and median (the metrics below are means).
		b.Logf("run: total %.2fs load %.2f split %.2f eval %.2f train %.2f topk %.2f publish %.2f cleanup %.2f",
			res.Timings["total"], res.Timings["load"], res.Timings["split"], res.Timings["eval"], res.Timings["train"],
			res.Timings["topk"], res.Timings["publish"], res.Timings["cleanup"])
		last = res
	}
	phases := make([]string, 0, len(sums))
	for k := range sums {
		phases = append(phases, k)
	}
	sort.Strings(phases)
	for _, k := range phases {
		b.ReportMetric(sums[k]/float64(b.N), k+"-s")
	}
	b.ReportMetric(last.Metrics["ndcg_at_5"], "ndcg@5")
	b.ReportMetric(last.Metrics["baseline_ndcg_at_5"], "pop-ndcg@5")
	b.ReportMetric(float64(last.Counts.Users), "users")
	b.ReportMetric(float64(last.Counts.NNZ), "nnz")
}

func importFile(b *testing.B, db *postgres.DB, path string) {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	t := time.Now()
	sum, err := db.Import(context.Background(), f, store.ImportOptions{Source: path})
	if err != nil {
		b.Fatalf("import %s: %v", path, err)
	}
	b.Logf("imported %d rows in %.1fs", sum.Rows, time.Since(t).Seconds())
}

// BenchmarkPipelineShared: load + evaluate + train (64 factors, 15
// iterations) + top-5 + publish on the shared data. Target ≤ 15 s a run.
func BenchmarkPipelineShared(b *testing.B) {
	path := sharedData(b)
	db := pgtest.DB(b)
	importFile(b, db, path)
	benchPipeline(b, db, pipeline.Config{
		Overrides: pipeline.Overrides{Factors: ptr(64), Iterations: ptr(15)},
		Force:     true, // measure every phase even if a run regresses
	})
}

// BenchmarkPipelineScale is the documented manual scale run: synthetic data
// of SETLIST_SCALE_USERS users (default 1M), 100 songs per 1k users... see
// docs/BENCHMARKS.md. It only runs with SETLIST_BENCH_SCALE=1: generating
// and importing 50M rows takes many minutes.
func BenchmarkPipelineScale(b *testing.B) {
	db, evalUsers := scaleDB(b)
	benchPipeline(b, db, pipeline.Config{
		Overrides: pipeline.Overrides{Factors: ptr(64), Iterations: ptr(15)},
		EvalUsers: evalUsers,
		Force:     true,
	})
}

// scaleDB generates and imports the synthetic scale data set (see
// BenchmarkPipelineScale) and returns it with the evaluation sample size.
func scaleDB(b *testing.B) (*postgres.DB, int) {
	if os.Getenv("SETLIST_BENCH_SCALE") != "1" {
		b.Skip("set SETLIST_BENCH_SCALE=1 to run the synthetic scale benchmark (many minutes, GBs of disk)")
	}
	env := func(name string, def int64) int64 {
		if v, err := strconv.ParseInt(os.Getenv(name), 10, 64); err == nil {
			return v
		}
		return def
	}
	cfg := synth.Config{
		Users:     int(env("SETLIST_SCALE_USERS", 1_000_000)),
		Songs:     int(env("SETLIST_SCALE_SONGS", 100_000)),
		Reactions: env("SETLIST_SCALE_REACTIONS", 50_000_000),
		Clusters:  50,
		Seed:      1,
	}
	db := pgtest.DB(b)
	pr, pw := io.Pipe()
	go func() {
		_, err := synth.Write(pw, cfg)
		pw.CloseWithError(err)
	}()
	t := time.Now()
	sum, err := db.Import(context.Background(), pr, store.ImportOptions{Source: "synth"})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("generated and imported %d rows in %.0fs", sum.Rows, time.Since(t).Seconds())
	return db, int(env("SETLIST_SCALE_EVAL_USERS", 50_000))
}
