package keyspace_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/keyspace/redistest"
	"github.com/setlist/setlist/internal/model"
)

// release builds a version whose every value depends on salt, so reads can
// tell versions apart.
func release(users, salt int) keyspace.Release {
	return keyspace.Release{
		Meta:    model.Meta{K: 3, Items: 10, TrainedAt: time.Unix(int64(salt), 0).UTC()},
		Items:   []byte(fmt.Sprintf("items-%d", salt)),
		Popular: []model.Rec{{Song: setlist.SongID(salt), Score: 1}},
		Users:   users,
		List: func(i int) (setlist.UserID, []model.Rec) {
			return userID(i), []model.Rec{{Song: setlist.SongID(salt*1000 + i), Score: float32(salt)}, {Song: 7, Score: 0.5}}
		},
	}
}

func userID(i int) setlist.UserID { return setlist.UserID(fmt.Sprintf("user-%d", i)) }

// snapshot reads, as a reader does, every user's list under the version the
// pointer names at the start.
func snapshot(t *testing.T, rdb redis.UniversalClient, keys keyspace.Keys, users int) (keyspace.Version, map[string][]byte) {
	t.Helper()
	ctx := context.Background()
	cur, err := rdb.Get(ctx, keys.Current()).Result()
	if err != nil {
		t.Fatalf("read pointer: %v", err)
	}
	v, _ := keyspace.ParseVersion(cur)
	out := map[string][]byte{}
	for _, k := range []string{keys.Meta(v), keys.Items(v), keys.Popular(v)} {
		b, err := rdb.Get(ctx, k).Bytes()
		if err != nil {
			t.Fatalf("read %s: %v", k, err)
		}
		out[k[len(keys.VersionPrefix(v)):]] = b
	}
	for i := range users {
		k := keys.Recs(v, userID(i))
		b, err := rdb.Get(ctx, k).Bytes()
		if err != nil {
			t.Fatalf("read %s: %v", k, err)
		}
		out[k[len(keys.VersionPrefix(v)):]] = b
	}
	return v, out
}

func countKeys(t *testing.T, rdb redis.UniversalClient, pattern string) int {
	t.Helper()
	return redistest.CountKeys(t, rdb, pattern)
}

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// eachTarget runs test against a single Redis server and against a Redis
// Cluster (the package's shared one), each with a key prefix of its own.
func eachTarget(t *testing.T, test func(t *testing.T, rdb redis.UniversalClient, prefix string)) {
	for _, target := range redistest.Targets() {
		t.Run(target.Name, func(t *testing.T) {
			rdb, prefix := target.Client(t)
			test(t, rdb, prefix)
		})
	}
}

func TestPublishSwitchesAndRetires(t *testing.T) {
	eachTarget(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		ctx := context.Background()
		keys := keyspace.NewKeys(prefix)
		p := keyspace.NewPublisher(rdb, keys)
		p.BatchSize = 7
		sub := rdb.Subscribe(ctx, keys.Events())
		defer sub.Close()
		if _, err := sub.Receive(ctx); err != nil { // subscription confirmed
			t.Fatal(err)
		}
		const users = 50
		var batches []int
		p.OnBatch = func(n int) { batches = append(batches, n) }
		rep, err := p.Publish(ctx, 1, release(users, 1))
		if err != nil {
			t.Fatalf("Publish 1: %v", err)
		}
		if rep.Users != users || rep.Keys != users+3 || rep.Previous != 0 || rep.Bytes == 0 {
			t.Errorf("report = %+v, want %d users and %d keys", rep, users, users+3)
		}
		if len(batches) != 8 || batches[len(batches)-1] != users {
			t.Errorf("OnBatch calls = %v, want 8 ending at %d", batches, users)
		}
		msg, err := sub.ReceiveMessage(ctx)
		if err != nil || msg.Payload != "version 1" {
			t.Errorf("event = %v, %v; want \"version 1\"", msg, err)
		}
		v, data := snapshot(t, rdb, keys, users)
		if v != 1 {
			t.Fatalf("current = %d, want 1", v)
		}
		recs, err := model.DecodeRecs(data[keys.Recs(v, userID(3))[len(keys.VersionPrefix(v)):]])
		if err != nil || len(recs) != 2 || recs[0].Song != 1003 {
			t.Errorf("user-3 recs = %v, %v", recs, err)
		}
		meta, err := p.Meta(ctx, 1)
		if err != nil || meta.Version != 1 || meta.Users != users || meta.Keys != users+3 || meta.K != 3 {
			t.Errorf("meta = %+v, %v", meta, err)
		}

		if _, err := p.Publish(ctx, 2, release(users, 2)); err != nil {
			t.Fatalf("Publish 2: %v", err)
		}
		if ptr, _ := p.Pointers(ctx); ptr != (keyspace.Pointers{Current: 2, Previous: 1}) {
			t.Errorf("pointers = %+v, want 2/1", ptr)
		}
		if ttl := rdb.TTL(ctx, keys.Recs(1, userID(0))).Val(); ttl != -1 {
			t.Errorf("previous version's key has TTL %v, want none", ttl)
		}
		if _, err = p.Publish(ctx, 3, release(users, 3)); err != nil {
			t.Fatalf("Publish 3: %v", err)
		}
		if ttl := rdb.TTL(ctx, keys.Meta(1)).Val(); ttl != -1 {
			t.Errorf("Publish retired version 1 itself (TTL %v); Cleanup should", ttl)
		}
		c, err := p.Cleanup(ctx)
		if err != nil || len(c.Retired) != 1 || c.Retired[0] != 1 || len(c.Deleted) != 0 {
			t.Errorf("Cleanup = %+v, %v; want version 1 retired", c, err)
		}
		for _, k := range []string{keys.Meta(1), keys.Recs(1, userID(49)), keys.Items(1)} {
			if ttl := rdb.TTL(ctx, k).Val(); ttl <= 0 || ttl > keyspace.DefaultGrace {
				t.Errorf("retired key %s has TTL %v, want (0, %v]", k, ttl, keyspace.DefaultGrace)
			}
		}
		if ttl := rdb.TTL(ctx, keys.Recs(2, userID(0))).Val(); ttl != -1 {
			t.Errorf("version 2 (now previous) has TTL %v, want none", ttl)
		}
		if _, err := p.Publish(ctx, 3, release(users, 3)); !errors.Is(err, setlist.ErrConflict) {
			t.Errorf("republishing the current version = %v, want ErrConflict", err)
		}
	})
}

// TestPublishKilledMidway cancels a publish after its first batch: the
// pointer must still name the old version with its data intact, and the
// next publish must delete the partial keys.
func TestPublishKilledMidway(t *testing.T) {
	eachTarget(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		keys := keyspace.NewKeys(prefix)
		p := keyspace.NewPublisher(rdb, keys)
		p.BatchSize = 10
		const users = 100
		if _, err := p.Publish(context.Background(), 1, release(users, 1)); err != nil {
			t.Fatal(err)
		}
		_, before := snapshot(t, rdb, keys, users)

		ctx, cancel := context.WithCancel(context.Background())
		p.OnBatch = func(n int) {
			if n >= 30 {
				cancel()
			}
		}
		_, err := p.Publish(ctx, 2, release(users, 2))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("killed publish = %v, want context.Canceled", err)
		}
		p.OnBatch = nil
		v, after := snapshot(t, rdb, keys, users)
		if v != 1 {
			t.Fatalf("pointer = %d after a killed publish, want 1", v)
		}
		for k, b := range before {
			if !bytes.Equal(after[k], b) {
				t.Errorf("%s changed after a killed publish", k)
			}
		}
		if n := countKeys(t, rdb, keys.VersionPrefix(2)+"*"); n < 30 {
			t.Fatalf("version 2 has %d keys, want the partial ≥ 30 (test is not exercising a partial write)", n)
		}
		rep, err := p.Publish(context.Background(), 3, release(users, 3))
		if err != nil {
			t.Fatalf("publish after a killed one: %v", err)
		}
		if len(rep.Cleaned) != 1 || rep.Cleaned[0] != 2 {
			t.Errorf("cleaned = %v, want [2]", rep.Cleaned)
		}
		if n := countKeys(t, rdb, keys.VersionPrefix(2)+"*"); n != 0 {
			t.Errorf("version 2 still has %d keys after the next publish", n)
		}
		if ptr, _ := p.Pointers(context.Background()); ptr != (keyspace.Pointers{Current: 3, Previous: 1}) {
			t.Errorf("pointers = %+v, want 3/1", ptr)
		}
	})
}

func TestRollbackRestoresExactReads(t *testing.T) {
	eachTarget(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		ctx := context.Background()
		keys := keyspace.NewKeys(prefix)
		p := keyspace.NewPublisher(rdb, keys)
		const users = 40
		if _, err := p.Rollback(ctx); !errors.Is(err, setlist.ErrNotFound) {
			t.Errorf("rollback with nothing published = %v, want ErrNotFound", err)
		}
		if _, err := p.Publish(ctx, 4, release(users, 4)); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Rollback(ctx); !errors.Is(err, setlist.ErrNotFound) {
			t.Errorf("rollback with no previous = %v, want ErrNotFound", err)
		}
		_, good := snapshot(t, rdb, keys, users)
		if _, err := p.Publish(ctx, 9, release(users, 9)); err != nil {
			t.Fatal(err)
		}
		_, bad := snapshot(t, rdb, keys, users)
		ptr, err := p.Rollback(ctx)
		if err != nil || ptr != (keyspace.Pointers{Current: 4, Previous: 9}) {
			t.Fatalf("Rollback = %+v, %v; want 4/9", ptr, err)
		}
		v, got := snapshot(t, rdb, keys, users)
		if v != 4 || len(got) != len(good) {
			t.Fatalf("after rollback current = %d with %d keys", v, len(got))
		}
		for k, b := range good {
			if !bytes.Equal(got[k], b) {
				t.Errorf("%s differs after rollback", k)
			}
		}
		// Rolling back again rolls forward.
		if ptr, err := p.Rollback(ctx); err != nil || ptr.Current != 9 {
			t.Fatalf("second Rollback = %+v, %v", ptr, err)
		}
		_, again := snapshot(t, rdb, keys, users)
		for k, b := range bad {
			if !bytes.Equal(again[k], b) {
				t.Errorf("%s differs after rolling forward", k)
			}
		}
	})
}

// TestPublishDetectsConcurrentSwitch moves the pointer while a publish is
// writing: the publish must fail and leave the other writer's pointer.
func TestPublishDetectsConcurrentSwitch(t *testing.T) {
	eachTarget(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		ctx := context.Background()
		keys := keyspace.NewKeys(prefix)
		p := keyspace.NewPublisher(rdb, keys)
		p.BatchSize = 5
		if _, err := p.Publish(ctx, 1, release(10, 1)); err != nil {
			t.Fatal(err)
		}
		p.OnBatch = func(int) { rdb.Set(ctx, keys.Current(), "77", 0) }
		_, err := p.Publish(ctx, 2, release(10, 2))
		if !errors.Is(err, setlist.ErrConflict) {
			t.Fatalf("publish racing a switch = %v, want ErrConflict", err)
		}
		if cur := rdb.Get(ctx, keys.Current()).Val(); cur != "77" {
			t.Errorf("pointer = %q, want the concurrent writer's 77", cur)
		}
	})
}

func TestPublishRejectsBadVersion(t *testing.T) {
	eachTarget(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		p := keyspace.NewPublisher(rdb, keyspace.NewKeys(prefix))
		if _, err := p.Publish(context.Background(), 0, release(1, 1)); !errors.Is(err, setlist.ErrInvalid) {
			t.Errorf("Publish(0) = %v, want ErrInvalid", err)
		}
	})
}

// TestPublishLosesAMaster kills the master of one user's slot while a
// publish is writing to a cluster: the publish must fail without switching
// the pointer, readers must still get the old version whole, and the next
// run (a new process, after the replica took over) must delete the partial
// version from every master.
func TestPublishLosesAMaster(t *testing.T) {
	c := redistest.NewCluster(t)
	rdb, prefix := c.Client(t)
	ctx := context.Background()
	keys := keyspace.NewKeys(prefix)
	p := keyspace.NewPublisher(rdb, keys)
	p.BatchSize = 50
	const users = 1000
	if _, err := p.Publish(ctx, 1, release(users, 1)); err != nil {
		t.Fatal(err)
	}
	c.Sync(t, rdb) // version 1 is on the replicas before a master dies
	// A user whose lists are not on the pointer's master, so the switch
	// script's node survives and only user writes fail.
	victim := ""
	for i := range users {
		k := keys.Recs(2, userID(i))
		if rdb.ClusterKeySlot(ctx, k).Val() != rdb.ClusterKeySlot(ctx, keys.Current()).Val() {
			victim = k
			break
		}
	}
	killed := ""
	p.OnBatch = func(n int) {
		if n >= 300 && killed == "" {
			killed = c.KillMaster(t, victim)
		}
	}
	short, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err := p.Publish(short, 2, release(users, 2))
	if err == nil {
		t.Fatalf("publish survived losing master %s", killed)
	}
	t.Logf("publish losing master %s: %v", killed, err)
	if killed == "" {
		t.Fatal("no master was killed: the test did not exercise a lost node")
	}
	c.WaitHealthy(t, 30*time.Second)

	// The next run is a new process: a new client, which learns the new
	// slot map.
	next := redis.NewClusterClient(c.Options())
	defer next.Close()
	v, before := snapshot(t, next, keys, users)
	if v != 1 {
		t.Fatalf("pointer = %d after a failed publish, want 1", v)
	}
	if _, want := release(users, 1).List(7); !bytes.Equal(before[keys.Recs(1, userID(7))[len(keys.VersionPrefix(1)):]], model.EncodeRecs(want)) {
		t.Error("version 1 is not whole after the failover")
	}
	if n := countKeys(t, next, keys.VersionPrefix(2)+"*"); n == 0 {
		t.Fatal("no partial keys of version 2: the test did not exercise a partial write")
	}
	p2 := keyspace.NewPublisher(next, keys)
	rep, err := p2.Publish(ctx, 3, release(users, 3))
	if err != nil {
		t.Fatalf("publish after the failover: %v", err)
	}
	if len(rep.Cleaned) != 1 || rep.Cleaned[0] != 2 {
		t.Errorf("cleaned %v, want [2]", rep.Cleaned)
	}
	if n := countKeys(t, next, keys.VersionPrefix(2)+"*"); n != 0 {
		t.Errorf("%d keys of the failed version 2 left on the masters", n)
	}
	if ptr, _ := p2.Pointers(ctx); ptr != (keyspace.Pointers{Current: 3, Previous: 1}) {
		t.Errorf("pointers = %+v, want 3/1", ptr)
	}
}
