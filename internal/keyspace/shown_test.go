package keyspace_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/keyspace"
)

// TestShown: the last list answered to a user is read back whole while
// within ShownWindow of its answer, not after, and expires with it; a
// list answered longer ago than the window is not stored at all.
func TestShown(t *testing.T) {
	eachTarget(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		ctx := context.Background()
		r := keyspace.NewReader(rdb, prefix)
		now := time.Now().Truncate(time.Millisecond)
		l := keyspace.ShownList{User: "a {b}", Version: 7, Arm: setlist.ArmChallenger, Source: setlist.SourceFoldIn, At: now.Add(-time.Hour), Songs: []setlist.SongID{5, 3, 9}}
		old := keyspace.ShownList{User: "old", Version: 7, Arm: setlist.ArmNone, Source: setlist.SourceBatch, At: now.Add(-keyspace.ShownWindow - time.Minute), Songs: []setlist.SongID{1}}
		if err := r.RecordShown(ctx, []keyspace.ShownList{l, old}); err != nil {
			t.Fatal(err)
		}
		got, ok, err := r.Shown(ctx, l.User, now)
		if err != nil || !ok || got.User != l.User || got.Version != l.Version || got.Arm != l.Arm || got.Source != l.Source ||
			!got.At.Equal(l.At) || !slices.Equal(got.Songs, l.Songs) {
			t.Fatalf("Shown = %+v, %v, %v; want %+v", got, ok, err, l)
		}
		if _, ok, err := r.Shown(ctx, l.User, l.At.Add(keyspace.ShownWindow+time.Second)); ok || err != nil {
			t.Errorf("a list answered more than ShownWindow ago was shown (%v)", err)
		}
		if _, ok, err := r.Shown(ctx, "old", now); ok || err != nil {
			t.Errorf("a list answered before the window was stored (%v)", err)
		}
		if _, ok, err := r.Shown(ctx, "never", now); ok || err != nil {
			t.Errorf("a user never answered has a shown list (%v)", err)
		}
		ttl, err := rdb.PTTL(ctx, keyspace.NewKeys(prefix).Shown(l.User)).Result()
		if err != nil || ttl <= keyspace.ShownWindow-time.Hour-time.Minute || ttl > keyspace.ShownWindow-time.Hour {
			t.Errorf("P:shown TTL %v (%v), want about ShownWindow after the answer", ttl, err)
		}
	})
}

func TestShownCodec(t *testing.T) {
	l := keyspace.ShownList{Version: 3, Arm: setlist.ArmControl, Source: setlist.SourcePopular, At: time.UnixMilli(1700000000123), Songs: []setlist.SongID{1, 1 << 40}}
	got, err := keyspace.DecodeShown(keyspace.EncodeShown(l))
	if err != nil || got.Version != l.Version || got.Arm != l.Arm || got.Source != l.Source || !got.At.Equal(l.At) || !slices.Equal(got.Songs, l.Songs) {
		t.Fatalf("round trip %+v, %v; want %+v", got, err, l)
	}
	b := keyspace.EncodeShown(l)
	for _, bad := range [][]byte{nil, b[:10], b[:len(b)-1], append([]byte{9}, b[1:]...)} {
		if _, err := keyspace.DecodeShown(bad); err == nil {
			t.Errorf("decoded %x", bad)
		}
	}
}
