package keyspace_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/model"
)

// TestApplyRefresh: only the lists Merge changes are rewritten, each in
// place under the live version; the added record and the count land with
// one "version V" event; a user without a list gets none; a refresh with
// nothing to write writes nothing; a version that is gone is refused.
func TestApplyRefresh(t *testing.T) {
	eachTarget(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		ctx := context.Background()
		keys := keyspace.NewKeys(prefix)
		pub := keyspace.NewPublisher(rdb, keys)
		pub.BatchSize = 3 // several batches
		const users = 8
		if _, err := pub.Publish(ctx, 1, release(users, 1)); err != nil {
			t.Fatal(err)
		}
		sub := rdb.Subscribe(ctx, keys.Events())
		defer sub.Close()
		if _, err := sub.Receive(ctx); err != nil {
			t.Fatal(err)
		}
		added, _ := model.EncodeAdded([]model.AddedSong{{Song: 99, Listeners: 2, Vector: []float32{1, 2}}})
		newSong := model.Rec{Song: 99, Score: 5}
		merge := func(i int, old []model.Rec) ([]model.Rec, bool) {
			if i%2 == 1 || slices.Contains(old, newSong) {
				return old, false
			}
			return append([]model.Rec{newSong}, old[:len(old)-1]...), true
		}
		r := keyspace.Refresh{Added: added, Users: users + 1, Merge: merge, User: func(i int) setlist.UserID { return userID(i) }}
		rep, err := pub.ApplyRefresh(ctx, 1, r)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Read != users || rep.Updated != users/2 || rep.Keys != users/2+1 || rep.Refreshes != 1 {
			t.Errorf("report = %+v; want %d read, %d updated, 1 refresh", rep, users, users/2)
		}
		for i := range users + 1 {
			b, err := rdb.Get(ctx, keys.Recs(1, userID(i))).Bytes()
			if i == users {
				if !errors.Is(err, redis.Nil) {
					t.Errorf("a user without a list got one: %v", err)
				}
				continue
			}
			got, _ := model.DecodeRecs(b)
			want := release(users, 1)
			_, orig := want.List(i)
			if i%2 == 0 {
				orig = append([]model.Rec{newSong}, orig[:len(orig)-1]...)
			}
			if !slices.Equal(got, orig) {
				t.Errorf("user %d: list %v, want %v", i, got, orig)
			}
		}
		msg, err := sub.ReceiveTimeout(ctx, 5*time.Second)
		if m, ok := msg.(*redis.Message); err != nil || !ok || m.Payload != keyspace.VersionEvent(1) {
			t.Errorf("event = %v, %v; want %q", msg, err, keyspace.VersionEvent(1))
		}
		if a, err := pub.Added(ctx, 1); err != nil || len(a) != 1 || a[0].Song != 99 {
			t.Errorf("added = %+v, %v", a, err)
		}
		reader := keyspace.NewReader(rdb, prefix)
		if n, err := reader.Refreshes(ctx, 1); err != nil || n != 1 {
			t.Errorf("refreshes = %d, %v", n, err)
		}

		// Again with nothing new: nothing is written, the count stays.
		r.Added = nil
		rep, err = pub.ApplyRefresh(ctx, 1, r)
		if err != nil || rep.Updated != 0 || rep.Keys != 0 || rep.Refreshes != 0 {
			t.Errorf("idle refresh = %+v, %v; want nothing written", rep, err)
		}
		if n, _ := reader.Refreshes(ctx, 1); n != 1 {
			t.Errorf("refreshes after an idle refresh = %d, want 1", n)
		}
		if _, err := pub.ApplyRefresh(ctx, 2, r); !errors.Is(err, setlist.ErrNotFound) {
			t.Errorf("refresh of a missing version: %v, want ErrNotFound", err)
		}
	})
}
