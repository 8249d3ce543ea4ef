package keyspace

import (
	"testing"

	"github.com/redis/go-redis/v9"
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
			rdb, _, err := newClient(c.url, c.pool, c.cluster)
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
