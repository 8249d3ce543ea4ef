// Package redistest gives each test a Redis client on the real server and a
// key prefix of its own, deleted when the test ends, so tests can share one
// server and run in parallel.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

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
	rdb := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		tb.Fatalf("Redis is required for this test and is not reachable at %s: %v\n"+
			"start it (bash .ci/run does) or set SETLIST_TEST_REDIS_URL", ServerURL(), err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "setlist-test-" + hex.EncodeToString(b[:])
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		iter := rdb.Scan(ctx, 0, prefix+":*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
			if len(keys) == 1000 {
				rdb.Unlink(ctx, keys...)
				keys = keys[:0]
			}
		}
		if len(keys) > 0 {
			rdb.Unlink(ctx, keys...)
		}
		_ = rdb.Close()
	})
	return rdb, prefix
}
