package keyspace_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/keyspace/redistest"
	"github.com/setlist/setlist/internal/model"
)

// benchUsers is a realistic publish: a top-5 list for each of 100k users.
const benchUsers = 100_000

func benchRelease() keyspace.Release {
	recs := make([]model.Rec, 5)
	return keyspace.Release{
		Items: make([]byte, 1<<20), Popular: make([]model.Rec, 100), Users: benchUsers,
		List: func(i int) (setlist.UserID, []model.Rec) {
			for j := range recs {
				recs[j] = model.Rec{Song: setlist.SongID(i*7 + j), Score: float32(j)}
			}
			return setlist.UserID(fmt.Sprintf("%032x", i)), recs
		},
	}
}

// BenchmarkPublish compares Publisher.Publish (which also checks for crashed
// versions, counts replies and switches the pointer in Lua) with a bare go-redis pipelined SET loop of the same keys and
// value sizes, in the same process and run, and reports Redis memory per
// user list (MEMORY USAGE over a sample of keys).
func BenchmarkPublish(b *testing.B) {
	rdb, prefix := redistest.Client(b)
	ctx := context.Background()
	keys := keyspace.NewKeys(prefix)
	for _, batch := range []int{500, 2000, 5000} {
		b.Run(fmt.Sprintf("publisher/batch=%d", batch), func(b *testing.B) {
			p := keyspace.NewPublisher(rdb, keys)
			p.BatchSize = batch
			v := keyspace.Version(batch * 1000)
			var cleanup time.Duration
			for b.Loop() {
				v++
				if _, err := p.Publish(ctx, v, benchRelease()); err != nil {
					b.Fatal(err)
				}
				// Retiring the version that left previous is off the path
				// that makes v live; timed apart.
				b.StopTimer()
				t := time.Now()
				if _, err := p.Cleanup(ctx); err != nil {
					b.Fatal(err)
				}
				cleanup += time.Since(t)
				b.StartTimer()
			}
			b.ReportMetric(float64(benchUsers*b.N)/b.Elapsed().Seconds(), "users/s")
			b.ReportMetric(cleanup.Seconds()*1000/float64(b.N), "cleanup-ms/op")
			var sum int64
			const sample = 200
			for i := range sample {
				sum += rdb.MemoryUsage(ctx, keys.Recs(v, setlist.UserID(fmt.Sprintf("%032x", i*97)))).Val()
			}
			b.ReportMetric(float64(sum)/sample, "redis-bytes/user")
		})
		b.Run(fmt.Sprintf("bare-set/batch=%d", batch), func(b *testing.B) {
			r := benchRelease()
			v := keyspace.Version(batch*1000 + 500)
			for b.Loop() {
				v++
				pipe := rdb.Pipeline()
				for i := range r.Users {
					u, recs := r.List(i)
					pipe.Set(ctx, keys.Recs(v, u), model.EncodeRecs(recs), 0)
					if pipe.Len() == batch {
						if _, err := pipe.Exec(ctx); err != nil {
							b.Fatal(err)
						}
					}
				}
				if _, err := pipe.Exec(ctx); err != nil {
					b.Fatal(err)
				}
				// Free the memory as the publisher's retire would, outside the timing.
				b.StopTimer()
				iter := rdb.Scan(ctx, 0, keys.VersionPrefix(v)+"*", 5000).Iterator()
				var ks []string
				for iter.Next(ctx) {
					ks = append(ks, iter.Val())
				}
				for i := 0; i < len(ks); i += 5000 {
					rdb.Unlink(ctx, ks[i:min(i+5000, len(ks))]...)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(benchUsers*b.N)/b.Elapsed().Seconds(), "users/s")
		})
	}
}
