package pipeline_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/keyspace/redistest"
	"github.com/setlist/setlist/internal/pipeline"
	"github.com/setlist/setlist/internal/postgres"
	"github.com/setlist/setlist/internal/postgres/pgtest"
	"github.com/setlist/setlist/internal/store"
)

// BenchmarkRefreshShared: batch refresh of 100 new songs on the shared data
// (13.6k users): train and publish once, then release 100 songs, each
// played by the (up to) 300 first listeners of a trained song, and time the refresh:
// its item-side fold-ins, every stored list read, the changed ones
// rewritten. It reports the seconds and the Redis writes. Each iteration
// releases 100 songs of its own (a second refresh of the same songs writes
// nothing).
func BenchmarkRefreshShared(b *testing.B) {
	db := pgtest.DB(b)
	importFile(b, db, sharedData(b))
	benchRefresh(b, db, pipeline.Config{Overrides: pipeline.Overrides{Factors: ptr(64), Iterations: ptr(15)}, Force: true})
}

// BenchmarkRefreshScale is BenchmarkRefreshShared on the synthetic scale
// set (SETLIST_BENCH_SCALE=1; sizes as BenchmarkPipelineScale).
func BenchmarkRefreshScale(b *testing.B) {
	db, evalUsers := scaleDB(b)
	benchRefresh(b, db, pipeline.Config{Overrides: pipeline.Overrides{Factors: ptr(64), Iterations: ptr(15)},
		EvalUsers: evalUsers, Force: true})
}

func benchRefresh(b *testing.B, db *postgres.DB, cfg pipeline.Config) {
	ctx := context.Background()
	rdb, prefix := redistest.Client(b)
	pub := keyspace.NewPublisher(rdb, keyspace.NewKeys(prefix))
	res, err := pipeline.Run(ctx, cfg, pipeline.Deps{Source: db, Registry: db, Locker: db, Publisher: pub, Artifacts: db})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("train: total %.2fs; users %d songs %d nnz %d", res.Timings["total"], res.Counts.Users, res.Counts.Songs, res.Counts.NNZ)
	var sec, read, updated, keys, bytes float64
	round := 0
	for b.Loop() {
		b.StopTimer()
		releaseSongs(b, db, round, 100, 300)
		round++
		b.StartTimer()
		r, err := pipeline.Refresh(ctx, pipeline.RefreshConfig{MinListeners: 3}, pipeline.RefreshDeps{
			Source: db, Locker: db, Artifacts: db, Publisher: pub})
		if err != nil {
			b.Fatal(err)
		}
		if r.Status != store.RefreshDone || len(r.Songs) != 100 {
			b.Fatalf("refresh: %s, %d songs (%s)", r.Status, len(r.Songs), r.Reason)
		}
		b.Logf("refresh: %.2fs, %d songs, %d lists read, %d rewritten, %d keys, %d bytes",
			r.Seconds, len(r.Songs), r.Report.Read, r.Report.Updated, r.Report.Keys, r.Report.Bytes)
		sec += r.Seconds
		read += float64(r.Report.Read)
		updated += float64(r.Report.Updated)
		keys += float64(r.Report.Keys)
		bytes += float64(r.Report.Bytes)
	}
	n := float64(b.N)
	b.ReportMetric(sec/n, "refresh-s")
	b.ReportMetric(read/n, "lists-read")
	b.ReportMetric(updated/n, "lists-rewritten")
	b.ReportMetric(keys/n, "keys-written")
	b.ReportMetric(bytes/n, "bytes-written")
}

// releaseSongs imports n new songs of round, song j played (count 3) by
// the first `listeners` users of trained song 1+j*47 (ids below 10,000).
func releaseSongs(b *testing.B, db *postgres.DB, round, n, listeners int) {
	ctx := context.Background()
	var csv strings.Builder
	csv.WriteString("user_id,artist,track,count\n")
	for j := range n {
		rs, err := db.SongReactions(ctx, []setlist.SongID{setlist.SongID(1 + (round*n+j)*47)})
		if err != nil {
			b.Fatal(err)
		}
		seen := map[setlist.UserID]bool{}
		for _, r := range rs {
			if len(seen) == listeners {
				break
			}
			if seen[r.User] || r.Kind == setlist.Dislike {
				continue
			}
			seen[r.User] = true
			fmt.Fprintf(&csv, "%s,Refresh Bench,Release %d-%d,3\n", r.User, round, j)
		}
	}
	if _, err := db.Import(ctx, strings.NewReader(csv.String()), store.ImportOptions{Source: "bench"}); err != nil {
		b.Fatal(err)
	}
}
