package pipeline_test

import (
	"context"
	"testing"
	"time"

	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/keyspace/redistest"
	"github.com/setlist/setlist/internal/pipeline"
	"github.com/setlist/setlist/internal/postgres"
	"github.com/setlist/setlist/internal/postgres/pgtest"
)

// BenchmarkRepublishShared: time from an empty Redis to the full model
// served again (read and verify the artifact from PostgreSQL, decode,
// every user's top-5 from the stored factors, publish, switch), against
// the retrain that would otherwise be needed, on the shared data.
func BenchmarkRepublishShared(b *testing.B) {
	db := pgtest.DB(b)
	importFile(b, db, sharedData(b))
	benchRepublish(b, db, pipeline.Config{Overrides: pipeline.Overrides{Factors: ptr(64), Iterations: ptr(15)}, Force: true})
}

// BenchmarkRepublishScale is BenchmarkRepublishShared on the synthetic
// scale set (SETLIST_BENCH_SCALE=1; sizes as BenchmarkPipelineScale).
func BenchmarkRepublishScale(b *testing.B) {
	db, evalUsers := scaleDB(b)
	benchRepublish(b, db, pipeline.Config{Overrides: pipeline.Overrides{Factors: ptr(64), Iterations: ptr(15)},
		EvalUsers: evalUsers, Force: true})
}

func benchRepublish(b *testing.B, db *postgres.DB, cfg pipeline.Config) {
	ctx := context.Background()
	rdb, prefix := redistest.Client(b)
	keys := keyspace.NewKeys(prefix)
	pub := keyspace.NewPublisher(rdb, keys)
	res, err := pipeline.Run(ctx, cfg, pipeline.Deps{Source: db, Registry: db, Locker: db, Publisher: pub, Artifacts: db})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("retrain: total %.2fs (artifact %.2fs, %d bytes); users %d songs %d nnz %d",
		res.Timings["total"], res.Timings["artifact"], res.Counts.ArtifactBytes, res.Counts.Users, res.Counts.Songs, res.Counts.NNZ)
	sums := map[string]float64{}
	for b.Loop() {
		b.StopTimer()
		all := rdb.Keys(ctx, prefix+":*").Val()
		for lo := 0; lo < len(all); lo += 1000 {
			rdb.Unlink(ctx, all[lo:min(lo+1000, len(all))]...)
		}
		b.StartTimer()
		t := time.Now()
		r, err := pipeline.Restore(ctx, pipeline.RestoreDeps{Artifacts: db, Registry: db, Publisher: pub}, res.Version, cfg.Threads, "bench")
		if err != nil {
			b.Fatal(err)
		}
		if r.How != pipeline.RestoredRepublished {
			b.Fatalf("restore did %s", r.How)
		}
		total := time.Since(t).Seconds()
		b.Logf("republish: total %.2fs load %.2f lists %.2f publish %.2f (%d users)", total,
			r.Timings["load"], r.Timings["lists"], r.Timings["publish"], r.Report.Users)
		for k, v := range r.Timings {
			sums[k] += v
		}
	}
	for _, k := range []string{"load", "lists", "publish", "total"} {
		b.ReportMetric(sums[k]/float64(b.N), "republish-"+k+"-s")
	}
	b.ReportMetric(res.Timings["total"], "retrain-s")
	b.ReportMetric(float64(res.Counts.ArtifactBytes), "artifact-bytes")
}
