package redistest_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/keyspace/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// TestSharedCluster checks the shared cluster routes keys to all three
// masters and that a test's keys are its own.
func TestSharedCluster(t *testing.T) {
	rdb, prefix := redistest.OnCluster.Client(t)
	ctx := context.Background()
	for i := range 300 {
		if err := rdb.Set(ctx, fmt.Sprintf("%s:k%d", prefix, i), "x", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if n := redistest.CountKeys(t, rdb, prefix+":*"); n != 300 {
		t.Fatalf("counted %d keys on the masters, want 300", n)
	}
	var mu sync.Mutex
	holding := 0
	err := keyspace.ForEachMaster(ctx, rdb, func(ctx context.Context, c *redis.Client) error {
		n, err := c.DBSize(ctx).Result()
		if n > 0 {
			mu.Lock()
			holding++
			mu.Unlock()
		}
		return err
	})
	if err != nil || holding != 3 {
		t.Fatalf("%d masters hold keys (%v), want 3", holding, err)
	}
}

// TestKillMaster kills the master of a key and checks the replica takes
// over with the key (written before the kill and replicated) readable.
func TestKillMaster(t *testing.T) {
	c := redistest.NewCluster(t)
	rdb, prefix := c.Client(t)
	ctx := context.Background()
	key := prefix + ":survivor"
	if err := rdb.Set(ctx, key, "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	c.Sync(t, rdb)
	killed := c.KillMaster(t, key)
	c.WaitHealthy(t, 30*time.Second)
	// A fresh client: one that held a connection to the dead master
	// only learns the new slot map on its next reload.
	fresh := redis.NewClusterClient(c.Options())
	defer fresh.Close()
	if got, err := fresh.Get(ctx, key).Result(); err != nil || got != "v" {
		t.Fatalf("after killing %s: GET = %q, %v", killed, got, err)
	}
	c.Restart(t, killed)
	c.WaitHealthy(t, 30*time.Second)
}
