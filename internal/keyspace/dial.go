package keyspace

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Dial connects to the Redis at rawURL and checks that it answers. With
// cluster, rawURL is a Redis Cluster seed list in go-redis's
// redis.ParseClusterURL form (redis://HOST:PORT?addr=HOST2:PORT2&addr=...)
// and the client is a *redis.ClusterClient that routes every command to the
// master of its key's slot; otherwise it is a *redis.Client on one server
// (redis.ParseURL). Both are a redis.UniversalClient, which is all the key
// space needs. rediss:// turns TLS on in both modes.
//
// A cluster dials when any seed answers with a slot map and at least one
// master answers (CheckHealth): a seed list exists so that one node down,
// or a master lost before its replica is promoted, does not stop a batch
// command or a serve replica from starting. Callers that care ask
// CheckHealth whether it is Degraded.
//
// poolSize 0 keeps go-redis's default (per node on a cluster). Context
// deadlines are honoured on the socket (ContextTimeoutEnabled): without it
// go-redis waits its 3 s read timeout on a Redis that stops answering
// instead of the caller's deadline, in serve's request path and in a
// publish alike.
func Dial(ctx context.Context, rawURL string, poolSize int, cluster bool, options ...DialOption) (redis.UniversalClient, error) {
	var o dialOptions
	for _, opt := range options {
		opt(&o)
	}
	rdb, addr, err := newClient(rawURL, poolSize, cluster, o)
	if err != nil {
		return nil, err
	}
	if _, err := CheckHealth(ctx, rdb); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("connect to redis at %s: %w", addr, err)
	}
	return rdb, nil
}

// newClient builds Dial's client without connecting; addr names it in
// errors.
func newClient(rawURL string, poolSize int, cluster bool, o dialOptions) (rdb redis.UniversalClient, addr string, err error) {
	if cluster {
		opts, err := redis.ParseClusterURL(rawURL)
		if err != nil {
			return nil, "", fmt.Errorf("parse redis cluster url: %w", err)
		}
		if poolSize > 0 {
			opts.PoolSize = poolSize
		}
		opts.ContextTimeoutEnabled = true
		if !o.failFast {
			return redis.NewClusterClient(opts), "cluster " + strings.Join(opts.Addrs, ","), nil
		}
		opts.DialTimeout, opts.DialerRetries, opts.DialerRetryTimeout = failFastDial, 1, time.Millisecond
		opts.MaxRetries = -1 // per node; the cluster client retries another node itself
		c := redis.NewClusterClient(opts)
		c.OnNewNode(func(node *redis.Client) { node.AddHook(newBreaker(node.Options().Addr)) })
		return c, "cluster " + strings.Join(opts.Addrs, ","), nil
	}
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, "", fmt.Errorf("parse redis url (a cluster's needs --redis-cluster): %w", err)
	}
	if poolSize > 0 {
		opts.PoolSize = poolSize
	}
	opts.ContextTimeoutEnabled = true
	if !o.failFast {
		return redis.NewClient(opts), opts.Addr, nil
	}
	opts.DialTimeout, opts.DialerRetries, opts.DialerRetryTimeout = failFastDial, 1, time.Millisecond
	c := redis.NewClient(opts)
	c.AddHook(newBreaker(opts.Addr))
	return c, opts.Addr, nil
}
