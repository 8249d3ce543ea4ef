package keyspace_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/keyspace/redistest"
)

// BenchmarkPublishTargets publishes 100k users' top-5 lists (as
// BenchmarkPublish, default batch size) to a single Redis and to the
// package's 3-master cluster in the same run: the cluster's pipelines are
// split by master and sent to all three at once.
func BenchmarkPublishTargets(b *testing.B) {
	ctx := context.Background()
	for _, target := range redistest.Targets() {
		b.Run(target.Name, func(b *testing.B) {
			rdb, prefix := target.Client(b)
			p := keyspace.NewPublisher(rdb, keyspace.NewKeys(prefix))
			v := keyspace.Version(0)
			for b.Loop() {
				v++
				if _, err := p.Publish(ctx, v, benchRelease()); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if _, err := p.Cleanup(ctx); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(benchUsers*b.N)/b.Elapsed().Seconds(), "users/s")
		})
	}
}

// pubsubRoute is one way of carrying an invalidation from the node a
// reaction's script runs on to a serve replica's subscription.
type pubsubRoute struct {
	name    string
	publish func(ctx context.Context, msg string) error
	sub     func(ctx context.Context) *redis.PubSub
}

// pubsubRoutes are the candidates: classic PUBLISH on a single server; on a
// cluster, classic PUBLISH on one master heard by a subscriber on another
// (the cluster bus forwards it to every node), and sharded SPUBLISH heard by
// an SSUBSCRIBE, both on the channel's shard.
func pubsubRoutes(b *testing.B) []pubsubRoute {
	single, prefix := redistest.Client(b)
	ch := prefix + ":events"
	c := redistest.SharedCluster(b)
	cl, cprefix := c.Client(b)
	cch := cprefix + ":events"
	var masters []*redis.Client
	if err := cl.ForEachMaster(context.Background(), func(_ context.Context, m *redis.Client) error {
		masters = append(masters, redis.NewClient(&redis.Options{Addr: m.Options().Addr}))
		return nil
	}); err != nil || len(masters) < 2 {
		b.Fatalf("masters: %d, %v", len(masters), err)
	}
	b.Cleanup(func() {
		for _, m := range masters {
			_ = m.Close()
		}
	})
	return []pubsubRoute{
		{"single/publish",
			func(ctx context.Context, msg string) error { return single.Publish(ctx, ch, msg).Err() },
			func(ctx context.Context) *redis.PubSub { return single.Subscribe(ctx, ch) }},
		{"cluster/publish-other-node",
			func(ctx context.Context, msg string) error { return masters[0].Publish(ctx, cch, msg).Err() },
			func(ctx context.Context) *redis.PubSub { return masters[1].Subscribe(ctx, cch) }},
		{"cluster/spublish-shard",
			func(ctx context.Context, msg string) error { return cl.SPublish(ctx, cch, msg).Err() },
			func(ctx context.Context) *redis.PubSub { return cl.SSubscribe(ctx, cch) }},
	}
}

func subscribed(b *testing.B, ps *redis.PubSub) <-chan *redis.Message {
	b.Helper()
	if _, err := ps.Receive(context.Background()); err != nil {
		b.Fatal(err)
	}
	return ps.Channel(redis.WithChannelSize(1 << 16))
}

// BenchmarkInvalidationLatency is one invalidation at a time: publish, then
// wait until the subscriber has it (ns/op is publish-to-delivery), with
// the p50 and p99.
func BenchmarkInvalidationLatency(b *testing.B) {
	ctx := context.Background()
	for _, r := range pubsubRoutes(b) {
		b.Run(r.name, func(b *testing.B) {
			ps := r.sub(ctx)
			defer ps.Close()
			ch := subscribed(b, ps)
			lat := make([]time.Duration, 0, 1<<16)
			for b.Loop() {
				t := time.Now()
				if err := r.publish(ctx, "user u"); err != nil {
					b.Fatal(err)
				}
				select {
				case <-ch:
				case <-time.After(5 * time.Second):
					b.Fatal("message not delivered")
				}
				lat = append(lat, time.Since(t))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// BenchmarkInvalidationThroughput publishes from parallel goroutines (as
// many serve replicas' reactions do) and stops the clock when the
// subscriber has every message: ns/op is per delivered invalidation.
func BenchmarkInvalidationThroughput(b *testing.B) {
	ctx := context.Background()
	for _, r := range pubsubRoutes(b) {
		b.Run(r.name, func(b *testing.B) {
			ps := r.sub(ctx)
			defer ps.Close()
			ch := subscribed(b, ps)
			var got atomic.Int64
			done := make(chan struct{})
			go func() {
				for range ch {
					got.Add(1)
				}
				close(done)
			}()
			b.SetParallelism(4)
			b.ResetTimer()
			var sent atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := r.publish(ctx, fmt.Sprintf("user u%d", sent.Add(1))); err != nil {
						b.Error(err)
						return
					}
				}
			})
			for deadline := time.Now().Add(30 * time.Second); got.Load() < sent.Load(); time.Sleep(100 * time.Microsecond) {
				if time.Now().After(deadline) {
					b.Fatalf("%d of %d delivered", got.Load(), sent.Load())
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(sent.Load())/b.Elapsed().Seconds(), "msgs/s")
			_ = ps.Close()
			<-done
		})
	}
}
