package keyspace_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/keyspace/redistest"
	"github.com/setlist/setlist/internal/model"
)

// BenchmarkPublishScale publishes the same release (top-5 lists of
// 32-character user ids, a 1 MB item side) to the single Redis and to the
// package's 3-master loopback cluster, in the same run, and reports users
// (keys) per second in total and per master, and Redis memory per user: the
// MEMORY USAGE of a sample of recs keys, and the growth of used_memory
// summed over the masters divided by the users (what capacity planning
// needs: it counts the key space's overhead too; on the single server it
// includes whatever other clients did meanwhile). The figure for
// docs/BENCHMARKS.md ("Redis Cluster at scale") is 1 M users:
//
//	SETLIST_PUBLISH_USERS=1000000 go test ./internal/keyspace/ -run '^$' -bench PublishScale -benchtime 1x -count 3 -timeout 60m
//
// SETLIST_PUBLISH_USERS defaults to 100,000 (what make bench runs).
func BenchmarkPublishScale(b *testing.B) {
	users := 100_000
	if v := os.Getenv("SETLIST_PUBLISH_USERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("SETLIST_PUBLISH_USERS=%q", v)
		}
		users = n
	}
	ctx := context.Background()
	for _, target := range redistest.Targets() {
		b.Run(target.Name, func(b *testing.B) {
			rdb, prefix := target.Client(b)
			keys := keyspace.NewKeys(prefix)
			var last keyspace.Version
			// The users' keys are deleted here, by name: the prefix's
			// SCAN-based clean-up has 30 s, too little for millions of keys
			// on a loaded machine, and would leave them in the shared Redis.
			b.Cleanup(func() {
				pipe := rdb.Pipeline()
				for v := keyspace.Version(1); v <= last; v++ {
					for i := range users {
						pipe.Unlink(ctx, keys.Recs(v, setlist.UserID(fmt.Sprintf("%032x", i))))
						if pipe.Len() == 5000 {
							_, _ = pipe.Exec(ctx)
						}
					}
				}
				_, _ = pipe.Exec(ctx)
			})
			masters := 0
			_ = keyspace.ForEachMaster(ctx, rdb, func(context.Context, *redis.Client) error { masters++; return nil })
			p := keyspace.NewPublisher(rdb, keys)
			recs := make([]model.Rec, 5)
			rel := keyspace.Release{
				Items: make([]byte, 1<<20), Popular: make([]model.Rec, 100), Users: users,
				List: func(i int) (setlist.UserID, []model.Rec) {
					for j := range recs {
						recs[j] = model.Rec{Song: setlist.SongID(i*7 + j), Score: float32(j)}
					}
					return setlist.UserID(fmt.Sprintf("%032x", i)), recs
				},
			}
			var v keyspace.Version
			var grown int64
			for b.Loop() {
				v++
				last = v
				b.StopTimer()
				before := usedMemory(b, rdb)
				b.StartTimer()
				if _, err := p.Publish(ctx, v, rel); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				grown += usedMemory(b, rdb) - before
				// Drop the version that left previous at once (no grace):
				// the next round measures against the same key space.
				p.Grace = time.Second
				if _, err := p.Cleanup(ctx); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			perSec := float64(users*b.N) / b.Elapsed().Seconds()
			b.ReportMetric(perSec, "users/s")
			b.ReportMetric(perSec/float64(masters), "users/s/master")
			b.ReportMetric(float64(grown)/float64(users*b.N), "used-memory-bytes/user")
			var sum int64
			const sample = 200
			for i := range sample {
				sum += rdb.MemoryUsage(ctx, keys.Recs(v, setlist.UserID(fmt.Sprintf("%032x", i*(users/sample))))).Val()
			}
			b.ReportMetric(float64(sum)/sample, "memory-usage-bytes/user")
		})
	}
}

// usedMemory sums INFO memory's used_memory over every master.
func usedMemory(tb testing.TB, rdb redis.UniversalClient) int64 {
	tb.Helper()
	var total int64
	err := keyspace.ForEachMaster(context.Background(), rdb, func(ctx context.Context, n *redis.Client) error {
		info, err := n.Info(ctx, "memory").Result()
		if err != nil {
			return err
		}
		for _, l := range strings.Split(info, "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "used_memory:"); ok {
				x, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return err
				}
				total += x
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return total
}
