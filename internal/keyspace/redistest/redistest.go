// Package redistest gives each test a Redis client on the real server and a
// key prefix of its own, deleted when the test ends, so tests can share one
// server and run in parallel. It also starts real Redis Clusters (Cluster,
// SharedCluster) and names the two deployments key-space tests run against
// (Targets).
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/setlist/setlist/internal/keyspace"
)

// scanCount is SCAN's COUNT: large, because a pass over a big shared test
// Redis costs a round trip per COUNT keys.
const scanCount = 10000

// ServerURL is the Redis used by tests; SETLIST_TEST_REDIS_URL overrides it.
func ServerURL() string {
	if v := os.Getenv("SETLIST_TEST_REDIS_URL"); v != "" {
		return v
	}
	return "redis://127.0.0.1:6379/0"
}

// Client returns a connected client and a unique key prefix. Keys under the
// prefix are deleted when the test ends. The test fails (never skips) when
// Redis is unreachable.
func Client(tb testing.TB) (*redis.Client, string) {
	tb.Helper()
	opts, err := redis.ParseURL(ServerURL())
	if err != nil {
		tb.Fatalf("parse %s: %v", ServerURL(), err)
	}
	opts.ContextTimeoutEnabled = true
	rdb := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		tb.Fatalf("Redis is required for this test and is not reachable at %s: %v\n"+
			"start it (bash .ci/run does) or set SETLIST_TEST_REDIS_URL", ServerURL(), err)
	}
	prefix := newPrefix()
	tb.Cleanup(func() {
		deletePrefix(rdb, prefix)
		_ = rdb.Close()
	})
	return rdb, prefix
}

func newPrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "setlist-test-" + hex.EncodeToString(b[:])
}

// deletePrefix unlinks every key of prefix (all start with "prefix:") on
// every master.
func deletePrefix(rdb redis.UniversalClient, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_ = keyspace.ForEachMaster(ctx, rdb, func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, prefix+":*", scanCount).Iterator()
		pipe := c.Pipeline()
		for iter.Next(ctx) {
			// One key per UNLINK: on a cluster a node's keys are in
			// many slots.
			pipe.Unlink(ctx, iter.Val())
			if pipe.Len() == 1000 {
				_, _ = pipe.Exec(ctx)
			}
		}
		_, _ = pipe.Exec(ctx)
		return iter.Err()
	})
}

// CountKeys counts the keys matching pattern on every master.
func CountKeys(tb testing.TB, rdb redis.UniversalClient, pattern string) int {
	tb.Helper()
	var n int64
	ch := make(chan int, 16)
	err := keyspace.ForEachMaster(context.Background(), rdb, func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, pattern, scanCount).Iterator()
		k := 0
		for iter.Next(ctx) {
			k++
		}
		ch <- k
		return iter.Err()
	})
	close(ch)
	for k := range ch {
		n += int64(k)
	}
	if err != nil {
		tb.Fatalf("count %s: %v", pattern, err)
	}
	return int(n)
}

// Target is one Redis deployment key-space tests run against: the single
// server at ServerURL, or the package's shared Cluster.
type Target struct {
	Name string // "single" or "cluster", a subtest name
	// Cluster says --redis-cluster is needed for URL.
	Cluster bool
	client  func(testing.TB) (redis.UniversalClient, string)
	url     func(testing.TB) string
}

// Client returns a client of the target and a key prefix of tb's own,
// cleaned when tb ends.
func (t Target) Client(tb testing.TB) (redis.UniversalClient, string) {
	tb.Helper()
	return t.client(tb)
}

// URL is the target's --redis-url (with --redis-cluster when Cluster).
func (t Target) URL(tb testing.TB) string {
	tb.Helper()
	return t.url(tb)
}

// Single is the single Redis server at ServerURL.
var Single = Target{
	Name:   "single",
	client: func(tb testing.TB) (redis.UniversalClient, string) { return Client(tb) },
	url:    func(testing.TB) string { return ServerURL() },
}

// OnCluster is the package's shared Redis Cluster (SharedCluster: the
// package's TestMain must call Main).
var OnCluster = Target{
	Name:    "cluster",
	Cluster: true,
	client: func(tb testing.TB) (redis.UniversalClient, string) {
		return SharedCluster(tb).Client(tb)
	},
	url: func(tb testing.TB) string { return SharedCluster(tb).URL() },
}

// Targets are both deployments, for tests that run once against each.
func Targets() []Target { return []Target{Single, OnCluster} }
