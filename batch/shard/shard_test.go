package shard_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/batch/shard"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/keyspace/redistest"
	"github.com/setlist/setlist/internal/model"
	"github.com/setlist/setlist/internal/pipeline"
	"github.com/setlist/setlist/internal/postgres/pgtest"
	"github.com/setlist/setlist/internal/store"
	"github.com/setlist/setlist/internal/synth"
)

func TestRange(t *testing.T) {
	for _, c := range []struct{ n, shards int }{{0, 1}, {0, 3}, {1, 1}, {1, 4}, {10, 3}, {100, 7}, {5, 5}} {
		next, minSize, maxSize := 0, c.n, 0
		for i := 0; i < c.shards; i++ {
			lo, hi := shard.Range(c.n, c.shards, i)
			if lo != next || hi < lo {
				t.Fatalf("Range(%d, %d, %d) = [%d, %d), want it to start at %d", c.n, c.shards, i, lo, hi, next)
			}
			next = hi
			minSize, maxSize = min(minSize, hi-lo), max(maxSize, hi-lo)
		}
		if next != c.n || maxSize-minSize > 1 {
			t.Errorf("Range(%d, %d, ·) covers [0, %d) with sizes %d..%d; want [0, %d) balanced", c.n, c.shards, next, minSize, maxSize, c.n)
		}
	}
}

// stager stages one trained version under several prefixes, so one
// stage-only run can be precomputed with different shard counts. A
// stage-only run must never call Publish.
type stager struct{ pubs []*keyspace.Publisher }

func (stager) Publish(context.Context, keyspace.Version, keyspace.Release) (keyspace.Report, error) {
	return keyspace.Report{}, errors.New("a stage-only run called Publish")
}

func (s stager) Stage(ctx context.Context, v keyspace.Version, r keyspace.Release) (keyspace.Report, error) {
	if r.Users != 0 {
		return keyspace.Report{}, fmt.Errorf("a stage-only run computed %d user lists", r.Users)
	}
	var rep keyspace.Report
	for _, p := range s.pubs {
		var err error
		if rep, err = p.Stage(ctx, v, r); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// Cleanup does nothing, as the pipeline's stage-only path does.
func (stager) Cleanup(context.Context) (keyspace.Cleanup, error) { return keyspace.Cleanup{}, nil }

// recs reads every user list of version v under prefix, keyed by user.
func recs(t *testing.T, rdb redis.UniversalClient, prefix string, v keyspace.Version) map[string][]byte {
	t.Helper()
	keys := keyspace.NewKeys(prefix)
	pat := keys.VersionPrefix(v) + "recs:"
	var mu sync.Mutex
	out := map[string][]byte{}
	err := keyspace.ForEachMaster(context.Background(), rdb, func(ctx context.Context, node *redis.Client) error {
		iter := node.Scan(ctx, 0, pat+"*", 10000).Iterator()
		for iter.Next(ctx) {
			b, err := node.Get(ctx, iter.Val()).Bytes()
			if err != nil {
				return err
			}
			mu.Lock()
			out[strings.TrimPrefix(iter.Val(), pat)] = b
			mu.Unlock()
		}
		return iter.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

func current(t *testing.T, rdb redis.UniversalClient, prefix string) keyspace.Version {
	t.Helper()
	ptr, err := keyspace.NewPublisher(rdb, keyspace.NewKeys(prefix)).Pointers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ptr.Current
}

// TestShardsEqualOneRun trains a model on real PostgreSQL, stages it under
// three Redis prefixes, and precomputes it with 1, 2 and 3 shards (the
// latter out of order): every user's list must be byte-equal across the
// three, and only the shard completing the set may switch the pointer; on a
// single Redis and on a Redis Cluster.
func TestShardsEqualOneRun(t *testing.T) {
	for _, target := range redistest.Targets() {
		t.Run(target.Name, func(t *testing.T) {
			rdb, base := target.Client(t)
			shardsEqualOneRun(t, rdb, base)
		})
	}
}

func shardsEqualOneRun(t *testing.T, rdb redis.UniversalClient, base string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	db := pgtest.DB(t)
	var csv bytes.Buffer
	if _, err := synth.Write(&csv, synth.Config{Users: 300, Songs: 200, Reactions: 6000, Seed: 11}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Import(ctx, &csv, store.ImportOptions{Source: "synth"}); err != nil {
		t.Fatal(err)
	}
	prefixes := []string{base + ":one", base + ":two", base + ":three"}
	var pubs []*keyspace.Publisher
	for _, p := range prefixes {
		pubs = append(pubs, keyspace.NewPublisher(rdb, keyspace.NewKeys(p)))
	}
	res, err := pipeline.Run(ctx, pipeline.Config{Force: true, K: 10, StageOnly: true}, pipeline.Deps{Source: db, Registry: db, Locker: db, Publisher: stager{pubs}})
	if err != nil {
		t.Fatalf("train and stage: %v", err)
	}
	v := res.Version
	status := func() store.RunStatus {
		t.Helper()
		r, err := db.Run(ctx, int64(v))
		if err != nil {
			t.Fatal(err)
		}
		return r.Status
	}
	if got := status(); got != store.RunStaged {
		t.Fatalf("after train --stage-only the run is %q, want staged", got)
	}

	run := func(prefix string, shards, index int) shard.Result {
		t.Helper()
		// Batches of 23 users, written 37 lists a round trip: many of
		// each, neither aligned with the shards' ranges.
		r, err := shard.Run(ctx, db, rdb, prefix, shard.Config{Version: v, Shards: shards, Index: index, Switch: true, BatchSize: 37, UsersPerBatch: 23})
		if err != nil {
			t.Fatalf("%s shard %d/%d: %v", prefix, index, shards, err)
		}
		return r
	}
	for i, p := range prefixes {
		if c := current(t, rdb, p); c != 0 {
			t.Fatalf("prefix %d: staging switched the pointer to %d", i, c)
		}
	}

	one := run(prefixes[0], 1, 0)
	if !one.Switched || current(t, rdb, prefixes[0]) != v {
		t.Fatalf("one shard: switched = %v, current %d; want version %d", one.Switched, current(t, rdb, prefixes[0]), v)
	}
	if got := status(); got != store.RunPublished {
		t.Fatalf("after the shards switched the run is %q, want published", got)
	}
	if one.Written == 0 || one.Written > one.Users {
		t.Fatalf("one shard wrote %d lists for %d users", one.Written, one.Users)
	}

	if r := run(prefixes[1], 2, 1); r.Switched || current(t, rdb, prefixes[1]) != 0 {
		t.Fatal("the first of two shards switched the pointer")
	}
	if r := run(prefixes[1], 2, 0); !r.Switched || current(t, rdb, prefixes[1]) != v {
		t.Fatal("the shard completing two did not switch the pointer")
	}
	for _, i := range []int{2, 0} {
		if r := run(prefixes[2], 3, i); r.Switched {
			t.Fatalf("shard %d of three switched before all were done", i)
		}
	}
	run(prefixes[2], 3, 0) // a retried pod: rewrites the same range and record
	if r := run(prefixes[2], 3, 1); !r.Switched || current(t, rdb, prefixes[2]) != v {
		t.Fatal("the shard completing three did not switch the pointer")
	}

	want := recs(t, rdb, prefixes[0], v)
	if len(want) != one.Written {
		t.Fatalf("one shard: %d lists in Redis, %d reported", len(want), one.Written)
	}
	for _, p := range prefixes[1:] {
		got := recs(t, rdb, p, v)
		if len(got) != len(want) {
			t.Errorf("%s: %d user lists, one shard wrote %d", p, len(got), len(want))
		}
		for u, b := range want {
			if !bytes.Equal(got[u], b) {
				t.Errorf("%s: user %s's list differs from the one-shard run", p, u)
			}
		}
	}

	// Every list is the one serve's own fold-in of the user computes, song
	// for song (the precompute ranks with training's batched kernel).
	pub, err := keyspace.NewReader(rdb, prefixes[0]).Load(ctx, v)
	if err != nil {
		t.Fatal(err)
	}
	for u, b := range want {
		got, err := model.DecodeRecs(b)
		if err != nil {
			t.Fatal(err)
		}
		rs, err := db.UserReactions(ctx, setlist.UserID(strings.Trim(u, "{}")), 0) // the key hash-tags the user
		if err != nil {
			t.Fatal(err)
		}
		fold, err := pub.FoldIn(rs, len(got))
		if err != nil {
			t.Fatalf("user %s: %v", u, err)
		}
		if len(fold) != len(got) {
			t.Fatalf("user %s: %d songs precomputed, fold-in %d", u, len(got), len(fold))
		}
		for j := range fold {
			if d := math.Abs(float64(got[j].Score - fold[j].Score)); d > 1e-4 || (d > 1e-6 && got[j].Song != fold[j].Song) {
				t.Fatalf("user %s rec %d: precomputed %+v, serve's fold-in %+v", u, j, got[j], fold[j])
			}
		}
	}

	// The switched version loads as serve loads it, with the shards'
	// users counted in its meta.
	for _, p := range prefixes {
		pub, err := keyspace.NewReader(rdb, p).Load(ctx, v)
		if err != nil {
			t.Fatal(err)
		}
		if pub.Meta.Users != one.Written {
			t.Errorf("%s: meta counts %d users, %d lists were written", p, pub.Meta.Users, one.Written)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []shard.Config{
		{Version: 0, Shards: 1},
		{Version: 1, Shards: 0},
		{Version: 1, Shards: 2, Index: 2},
		{Version: 1, Shards: 2, Index: -1},
		{Version: 1, Shards: 1, K: -1},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
	if err := (shard.Config{Version: 3, Shards: 4, Index: 3}).Validate(); err != nil {
		t.Errorf("valid config: %v", err)
	}
}
