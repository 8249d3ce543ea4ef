package keyspace_test

import (
	"context"
	"errors"
	"testing"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/keyspace/redistest"
	"github.com/setlist/setlist/internal/model"
)

// TestPublishDuringPrecompute reproduces issue 25 item 4's interleaving:
// version 2 is staged and shard 0 of 2 is written, then a publish (a
// republish, a nightly retrain) and its clean-up run before shard 1. The
// staged version must survive both, whole, and switch when shard 1 is done.
// Then a staged version whose lease ran out is deleted by a clean-up while
// a shard writes to it: the shard stops with ErrConflict at its next batch
// and leaves no list of the deleted version behind.
func TestPublishDuringPrecompute(t *testing.T) {
	for _, target := range redistest.Targets() {
		t.Run(target.Name, func(t *testing.T) {
			rdb, prefix := target.Client(t)
			ctx := context.Background()
			keys := keyspace.NewKeys(prefix)
			p := keyspace.NewPublisher(rdb, keys)
			p.BatchSize = 10
			const users = 60
			if _, err := p.Publish(ctx, 1, release(users, 1)); err != nil {
				t.Fatal(err)
			}
			staged := release(0, 2)
			if _, err := p.Stage(ctx, 2, staged); err != nil {
				t.Fatal(err)
			}
			lists := release(users, 2).List
			half := func(shard int) func(i int) (setlist.UserID, []model.Rec) {
				return func(i int) (setlist.UserID, []model.Rec) { return lists(shard*users/2 + i) }
			}
			if _, done, err := p.WriteShard(ctx, 2, 0, users/2, half(0)); err != nil || done != 1 {
				t.Fatalf("shard 0: done %d, %v", done, err)
			}
			// The interleaving: another publisher (a new process) publishes
			// version 3 and cleans up while shard 1 is still to run.
			other := keyspace.NewPublisher(rdb, keys)
			if _, err := other.Publish(ctx, 3, release(users, 3)); err != nil {
				t.Fatal(err)
			}
			if _, err := other.Cleanup(ctx); err != nil {
				t.Fatal(err)
			}
			if n := countKeys(t, rdb, keys.VersionPrefix(2)+"*"); n < users/2+3 {
				t.Fatalf("version 2 has %d keys after a publish and clean-up during its precompute, want ≥ %d", n, users/2+3)
			}
			if st := rdb.HGet(ctx, keys.Versions(), "2").Val(); st != "precomputing" {
				t.Fatalf("version 2 is %q in the versions hash, want precomputing", st)
			}
			if _, done, err := p.WriteShard(ctx, 2, 1, users/2, half(1)); err != nil || done != 2 {
				t.Fatalf("shard 1: done %d, %v", done, err)
			}
			if _, switched, err := p.FinishShards(ctx, 2, 2); err != nil || !switched {
				t.Fatalf("finish: switched %v, %v", switched, err)
			}
			v, got := snapshot(t, rdb, keys, users)
			if v != 2 || len(got) != users+3 {
				t.Fatalf("serving version %d with %d keys, want 2 whole", v, len(got))
			}

			// A staged version nobody precomputes: once its lease runs out a
			// clean-up deletes it, and a late shard stops at its next batch.
			if _, err := p.Stage(ctx, 4, release(0, 4)); err != nil {
				t.Fatal(err)
			}
			if _, err := p.Cleanup(ctx); err != nil {
				t.Fatal(err)
			}
			if st := rdb.HGet(ctx, keys.Versions(), "4").Val(); st != "precomputing" {
				t.Fatalf("version 4 is %q after a clean-up within its lease, want precomputing", st)
			}
			late := release(users, 4).List
			p.OnBatch = func(written int) {
				if written == 20 { // the lease runs out and a clean-up runs
					if err := rdb.Del(ctx, keys.PrecomputeLease(4)).Err(); err != nil {
						t.Error(err)
					}
					c, err := other.Cleanup(ctx)
					if err != nil || len(c.Deleted) != 1 || c.Deleted[0] != 4 {
						t.Errorf("clean-up after the lease: deleted %v, %v; want [4]", c.Deleted, err)
					}
				}
			}
			_, _, err := p.WriteShard(ctx, 4, 0, users, late)
			if !errors.Is(err, setlist.ErrConflict) {
				t.Fatalf("a shard of a version deleted under it: %v, want ErrConflict", err)
			}
			if n := countKeys(t, rdb, keys.VersionPrefix(4)+"*"); n != 0 {
				t.Errorf("%d keys of the deleted version 4 left behind by its shard", n)
			}
		})
	}
}
