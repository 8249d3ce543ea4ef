package keyspace_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/keyspace/redistest"
)

// TestKeyNames pins the key names: they are the contract with every
// running serve and with the versions already in Redis.
func TestKeyNames(t *testing.T) {
	cur := keyspace.NewKeys("p")
	odd := keyspace.NewKeys("a{b}%")
	for _, c := range []struct{ got, want string }{
		{cur.Current(), "p:{p}:current"},
		{cur.Previous(), "p:{p}:previous"},
		{cur.Versions(), "p:{p}:versions"},
		{cur.Experiment(), "p:{p}:experiment"},
		{cur.Events(), "p:events"},
		{cur.VersionPrefix(7), "p:v7:"},
		{cur.Meta(7), "p:v7:{p}:meta"},
		{cur.Items(7), "p:v7:{p}:items"},
		{cur.Popular(7), "p:v7:{p}:popular"},
		{cur.ShardsKey(7), "p:v7:{p}:shards"},
		{cur.Recs(7, "ana"), "p:v7:recs:{ana}"},
		{cur.FoldIn(7, "ana"), "p:v7:foldin:{ana}"},
		{cur.Touched("ana"), "p:touched:{ana}"},
		{cur.Recs(7, "a}b{c%"), "p:v7:recs:{a%7Db%7Bc%25}"},
		{cur.Touched("%7D"), "p:touched:{%257D}"},
		{odd.Current(), "a%7Bb%7D%25:{a%7Bb%7D%25}:current"},
		{odd.Recs(7, "x"), "a%7Bb%7D%25:v7:recs:{x}"},
	} {
		if c.got != c.want {
			t.Errorf("key %q, want %q", c.got, c.want)
		}
	}
	if cur.Recs(1, "a}") == cur.Recs(1, "a%7D") {
		t.Error("escaping maps two user ids to one key")
	}
}

// TestKeySlots asks a real cluster (CLUSTER KEYSLOT) where the keys land:
// one user's keys share a slot whatever braces the id holds, users spread
// over the slots, and the keys the switch script touches share one slot.
func TestKeySlots(t *testing.T) {
	rdb, prefix := redistest.OnCluster.Client(t)
	ctx := context.Background()
	keys := keyspace.NewKeys(prefix)
	slot := func(key string) int64 {
		t.Helper()
		s, err := rdb.ClusterKeySlot(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, u := range []setlist.UserID{"ana", "a{b}c", "}{", "{x}", "%7D", "x%", "{}", "😀 {"} {
		want := slot(keys.Recs(3, u))
		for _, k := range []string{keys.FoldIn(3, u), keys.Touched(u), keys.Recs(4, u)} {
			if got := slot(k); got != want {
				t.Errorf("user %q: %s in slot %d, recs in %d", u, k, got, want)
			}
		}
	}
	want := slot(keys.Current())
	for _, k := range []string{keys.Previous(), keys.Versions(), keys.Meta(3), keys.Items(3), keys.Popular(3), keys.ShardsKey(3), keys.Meta(99)} {
		if got := slot(k); got != want {
			t.Errorf("%s in slot %d, the pointer in %d", k, got, want)
		}
	}
	const users = 1000
	cmds := make([]*redis.IntCmd, users)
	if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range cmds {
			cmds[i] = p.ClusterKeySlot(ctx, keys.Recs(3, setlist.UserID(fmt.Sprintf("user-%d", i))))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slots := map[int64]bool{}
	for _, c := range cmds {
		slots[c.Val()] = true
	}
	// 1000 random slots of 16384 give ~970 distinct ones; one slot per
	// version (a tag of the version) would give 1.
	if len(slots) < 900 {
		t.Errorf("%d users' lists in %d slots, want them spread", users, len(slots))
	}
}

// TestDial connects as both binaries do, to a single Redis and to a
// cluster (whose URL lists every node, as --redis-url does).
func TestDial(t *testing.T) {
	for _, target := range redistest.Targets() {
		t.Run(target.Name, func(t *testing.T) {
			_, prefix := target.Client(t) // cleans the key below
			rdb, err := keyspace.Dial(context.Background(), target.URL(t), 4, target.Cluster)
			if err != nil {
				t.Fatal(err)
			}
			defer rdb.Close()
			_, isCluster := rdb.(*redis.ClusterClient)
			if isCluster != target.Cluster {
				t.Fatalf("%T for cluster=%v", rdb, target.Cluster)
			}
			if err := rdb.Set(context.Background(), prefix+":dial", "x", 0).Err(); err != nil {
				t.Fatal(err)
			}
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := keyspace.Dial(ctx, "redis://127.0.0.1:1", 0, true); err == nil {
		t.Error("a cluster with no reachable node dialled")
	}
}

// TestDialWithAMasterDown: a cluster whose master died and whose replica
// is not (yet) promoted, configured as production is (reads and writes of
// the other masters' slots go on: cluster-require-full-coverage no). Both
// binaries must still start from the seed list, the dead node first in it,
// and see the cluster as degraded, not down (issue 25 item 3); a seed list
// where no node answers still fails.
func TestDialWithAMasterDown(t *testing.T) {
	c := redistest.NewCluster(t)
	c.ConfigSet(t, "cluster-require-full-coverage", "no")
	// No promotion: the master stays lost for the whole test, the longest
	// a failover can take.
	c.ConfigSet(t, "cluster-replica-no-failover", "yes")
	rdb, prefix := c.Client(t)
	ctx := context.Background()
	killed := c.KillMaster(t, prefix+":victim")
	// The dead master first in the seed list, as a pod being rescheduled
	// may be.
	seeds := []string{killed}
	for _, a := range c.Addrs() {
		if a != killed {
			seeds = append(seeds, a)
		}
	}
	url := "redis://" + seeds[0] + "?addr=" + strings.Join(seeds[1:], "&addr=")
	for i := range 5 { // the seed order go-redis tries is random
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		d, err := keyspace.Dial(dctx, url, 0, true)
		if err != nil {
			cancel()
			t.Fatalf("dial %d with master %s down: %v", i, killed, err)
		}
		h, err := keyspace.CheckHealth(dctx, d)
		cancel()
		if err != nil || !h.Degraded() || h.Masters != 3 || len(h.Down) != 1 || h.Down[0] != killed {
			t.Errorf("health %+v, %v; want 3 masters, %s down, degraded", h, err, killed)
		}
		// A key on a live master is written and read through the client.
		for j := range 50 {
			k := fmt.Sprintf("%s:k%d", prefix, j)
			if m, err := rdb.MasterForKey(ctx, k); err != nil || m.Options().Addr == killed {
				continue
			}
			if err := d.Set(ctx, k, "x", 0).Err(); err != nil {
				t.Errorf("SET %s on a live master: %v", k, err)
			}
			break
		}
		_ = d.Close()
	}
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := keyspace.Dial(dctx, "redis://"+killed, 0, true); err == nil {
		t.Error("dialled a seed list whose only node is dead")
	}
}
