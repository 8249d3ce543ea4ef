package modelstore

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/setlist/setlist"
)

// Dial connects to the Redis at rawURL and checks that it answers. poolSize
// 0 keeps go-redis's default. Context deadlines are honoured on the socket
// (ContextTimeoutEnabled): without it go-redis waits its 3 s read timeout on
// a Redis that stops answering instead of the caller's deadline, in serve's
// request path and in a publish alike.
func Dial(ctx context.Context, rawURL string, poolSize int) (*redis.Client, error) {
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("parse redis url: %w", err)
	}
	if poolSize > 0 {
		opts.PoolSize = poolSize
	}
	opts.ContextTimeoutEnabled = true
	rdb := redis.NewClient(opts)
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("connect to redis at %s: %w: %w", opts.Addr, setlist.ErrUnavailable, err)
	}
	return rdb, nil
}
