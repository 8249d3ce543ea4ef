package keyspace

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/setlist/setlist"
)

// TestClientOptions: deadlines, pool size and TLS are set the same way in
// both modes, and a cluster URL without --redis-cluster is refused (go-redis
// does not know its addr option) instead of silently using one node.
func TestClientOptions(t *testing.T) {
	const clusterURL = "redis://10.0.0.1:7000?addr=10.0.0.2:7000&addr=10.0.0.3:7000"
	for _, c := range []struct {
		name    string
		url     string
		cluster bool
		pool    int
		addrs   int
		tls     bool
		wantErr bool
	}{
		{"single", "redis://127.0.0.1:6379/0", false, 7, 1, false, false},
		{"single tls", "rediss://cache.example:6380/0", false, 0, 1, true, false},
		{"cluster", clusterURL, true, 9, 3, false, false},
		{"cluster tls", "rediss://10.0.0.1:7000?addr=10.0.0.2:7000", true, 0, 2, true, false},
		{"cluster url without the flag", clusterURL, false, 0, 0, false, true},
		{"bad scheme", "http://x:1", true, 0, 0, false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			rdb, _, err := newClient(c.url, c.pool, c.cluster, dialOptions{})
			if c.wantErr {
				if err == nil {
					t.Fatal("accepted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer rdb.Close()
			var (
				deadlines, tls bool
				pool, addrs    int
			)
			switch x := rdb.(type) {
			case *redis.Client:
				if c.cluster {
					t.Fatalf("%T, want a cluster client", rdb)
				}
				o := x.Options()
				deadlines, tls, pool, addrs = o.ContextTimeoutEnabled, o.TLSConfig != nil, o.PoolSize, 1
			case *redis.ClusterClient:
				if !c.cluster {
					t.Fatalf("%T, want a single-server client", rdb)
				}
				o := x.Options()
				deadlines, tls, pool, addrs = o.ContextTimeoutEnabled, o.TLSConfig != nil, o.PoolSize, len(o.Addrs)
			}
			if !deadlines || tls != c.tls || addrs != c.addrs || (c.pool > 0 && pool != c.pool) {
				t.Errorf("deadlines %v tls %v pool %d addrs %d; want true, %v, %d, %d", deadlines, tls, pool, addrs, c.tls, c.pool, c.addrs)
			}
		})
	}
}

// countDials counts the dials that reach the network (added after the
// breaker, it runs inside it).
type countDials struct{ n atomic.Int32 }

func (c *countDials) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c.n.Add(1)
		return next(ctx, network, addr)
	}
}
func (c *countDials) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (c *countDials) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestFailFastBreaker: serve's client on a dead node (a killed master
// before its replica's promotion) dials it once, and every command within
// the breaker's cooldown fails at once with ErrUnavailable instead of
// redialling, retrying and backing off (go-redis's defaults dial 5 times
// 100 ms apart per command, and retry the command: issue 25 item 2). After
// the cooldown one dial probes again.
func TestFailFastBreaker(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	_ = l.Close() // nothing listens: connection refused, as from a killed node
	rdb, _, err := newClient("redis://"+dead+"/0", 0, false, dialOptions{failFast: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	var dials countDials
	rdb.AddHook(&dials)
	ctx := context.Background()
	// Fewer than the pool size: past PoolSize failed dials go-redis's pool
	// answers its last dial error itself and probes once a second.
	const commands = 10
	for i := range commands {
		err := rdb.Get(ctx, "k").Err()
		if err == nil {
			t.Fatal("GET on a dead node succeeded")
		}
		if i > 0 && !errors.Is(err, setlist.ErrUnavailable) {
			t.Fatalf("command %d: %v, want the breaker's ErrUnavailable", i, err)
		}
	}
	if n := dials.n.Load(); n != 1 {
		t.Errorf("%d commands on a dead node dialled it %d times, want 1 (the breaker opens on the first failure)", commands, n)
	}
	time.Sleep(BreakerCooldown + 50*time.Millisecond)
	_ = rdb.Get(ctx, "k").Err()
	if n := dials.n.Load(); n != 2 {
		t.Errorf("after the cooldown: %d dials, want 2 (one probe)", n)
	}
}
