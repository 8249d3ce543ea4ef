package keyspace_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/als"
	"github.com/setlist/setlist/internal/feedback"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/model"
	"github.com/setlist/setlist/internal/store"
)

func TestReaderLoadAndUserState(t *testing.T) {
	eachTarget(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		ctx := context.Background()
		r := keyspace.NewReader(rdb, prefix)
		keys := r.Keys()

		if _, err := r.Current(ctx); !errors.Is(err, setlist.ErrNotFound) {
			t.Fatalf("Current with no pointer: %v, want ErrNotFound", err)
		}
		const v = keyspace.Version(7)
		p := als.DefaultParams()
		p.Factors, p.Weighting = 2, feedback.WeightRaw
		side := (&als.Model{Params: p, Items: 3, Factors: 2, ItemFactors: []float32{1, 0, 0, 1, 1, 1}}).ItemSide()
		items, err := model.EncodeItems(model.NewCatalog([]setlist.SongID{10, 20, 30}), side)
		if err != nil {
			t.Fatal(err)
		}
		meta, _ := json.Marshal(model.Meta{Version: v, Scheme: model.DefaultScheme(), K: 2})
		popular := []model.Rec{{Song: 30, Score: 9}, {Song: 10, Score: 3}}
		recs := []model.Rec{{Song: 20, Score: 0.5}}
		if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, keys.Meta(v), meta, 0)
			p.Set(ctx, keys.Items(v), items, 0)
			p.Set(ctx, keys.Popular(v), model.EncodeRecs(popular), 0)
			p.Set(ctx, keys.Recs(v, "ana"), model.EncodeRecs(recs), 0)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Load(ctx, v+1); !errors.Is(err, setlist.ErrNotFound) {
			t.Fatalf("Load of a missing version: %v, want ErrNotFound", err)
		}
		rdb.Set(ctx, keys.Current(), "7", 0)
		cur, err := r.Current(ctx)
		if err != nil || cur != v {
			t.Fatalf("Current = %v, %v", cur, err)
		}
		pub, err := r.Load(ctx, v)
		if err != nil {
			t.Fatal(err)
		}
		if pub.Meta.K != 2 || pub.Catalog.Len() != 3 || !slices.Equal(pub.Popular, popular) {
			t.Fatalf("loaded %+v", pub)
		}

		st, err := r.UserState(ctx, v, "ana")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(st.Recs, recs) || st.FoldIn != nil || st.Touched != 0 {
			t.Fatalf("state = %+v", st)
		}

		// Touch sets the time, drops the fold-in and announces the user.
		sub := r.Subscribe(ctx)
		defer sub.Close()
		if _, err := sub.Receive(ctx); err != nil { // the subscription confirmation
			t.Fatal(err)
		}
		rec := keyspace.FoldInRecord{Source: setlist.SourceFoldIn, Touched: 5, Items: []model.Explained{{Rec: model.Rec{Song: 30, Score: 1}, Because: 10}}}
		if err := r.StoreFoldIn(ctx, v, "bo b", rec, time.Minute); err != nil {
			t.Fatal(err)
		}
		if st, _ := r.UserState(ctx, v, "bo b"); st.FoldIn == nil || st.FoldIn.Items[0].Because != 10 {
			t.Fatalf("stored fold-in not read back: %+v", st)
		}
		// A mark stored before sequence numbers existed (unix nanoseconds) is
		// raised by the first number; a smaller number never lowers it.
		if err := r.Touch(ctx, v, "bo b", time.Unix(100, 42).UnixNano()); err != nil {
			t.Fatal(err)
		}
		seq := store.SeqBase + 9
		if err := r.Touch(ctx, v, "bo b", seq); err != nil {
			t.Fatal(err)
		}
		st, _ = r.UserState(ctx, v, "bo b")
		if st.FoldIn != nil || st.Touched != seq {
			t.Fatalf("after Touch: %+v", st)
		}
		if err := r.Touch(ctx, v, "bo b", seq-1); err != nil {
			t.Fatal(err)
		}
		if st, _ = r.UserState(ctx, v, "bo b"); st.Touched != seq {
			t.Fatalf("an older number lowered the mark: %d, want %d", st.Touched, seq)
		}
		for range 2 { // the events of the first two touches; the third is checked below
			if _, err := sub.ReceiveMessage(ctx); err != nil {
				t.Fatal(err)
			}
		}
		msg, err := sub.ReceiveMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := keyspace.ParseEvent(msg.Payload)
		if err != nil || ev.Kind != keyspace.EventUser || ev.User != "bo b" {
			t.Fatalf("event %q → %+v, %v", msg.Payload, ev, err)
		}
	})
}

func TestFoldInCodec(t *testing.T) {
	for _, rec := range []keyspace.FoldInRecord{
		{Source: setlist.SourcePopular, Touched: -1, Complete: true},
		{Source: setlist.SourceFoldIn, Touched: 1 << 60, Items: []model.Explained{{Rec: model.Rec{Song: 1, Score: -2.5}}, {Rec: model.Rec{Song: 1 << 40, Score: 3}, Because: 9}}},
	} {
		b := keyspace.EncodeFoldIn(rec)
		got, err := keyspace.DecodeFoldIn(b)
		if err != nil {
			t.Fatal(err)
		}
		if got.Source != rec.Source || got.Touched != rec.Touched || got.Complete != rec.Complete || !slices.Equal(got.Items, rec.Items) {
			t.Fatalf("round trip %+v → %+v", rec, got)
		}
		for cut := range len(b) {
			if _, err := keyspace.DecodeFoldIn(b[:cut]); err == nil {
				t.Fatalf("truncated record of %d/%d bytes decoded", cut, len(b))
			}
		}
	}
}

func TestParseEvent(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want keyspace.Event
		ok   bool
	}{
		{keyspace.VersionEvent(12), keyspace.Event{Kind: keyspace.EventVersion, Version: 12}, true},
		{keyspace.UserEvent("a b"), keyspace.Event{Kind: keyspace.EventUser, User: "a b"}, true},
		{"version x", keyspace.Event{}, false},
		{"user ", keyspace.Event{}, false},
		{"hello", keyspace.Event{}, false},
	} {
		got, err := keyspace.ParseEvent(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseEvent(%q) = %+v, %v; want %+v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// TestTouchedTTL: Touch gives P:touched:{U} a TTL of TouchedTTL, and
// BatchFresh never trusts an absent key for a snapshot older than that (a
// reaction may have expired since), while a key present always decides.
func TestTouchedTTL(t *testing.T) {
	eachTarget(t, func(t *testing.T, rdb redis.UniversalClient, prefix string) {
		ctx := context.Background()
		r := keyspace.NewReader(rdb, prefix)
		if err := r.Touch(ctx, 1, "toucher", store.SeqBase+1); err != nil {
			t.Fatal(err)
		}
		ttl, err := rdb.TTL(ctx, keyspace.NewKeys(prefix).Touched("toucher")).Result()
		if err != nil {
			t.Fatal(err)
		}
		if ttl <= keyspace.TouchedTTL-time.Minute || ttl > keyspace.TouchedTTL {
			t.Fatalf("P:touched TTL %v, want about %v", ttl, keyspace.TouchedTTL)
		}

		now := time.Unix(1_800_000_000, 0)
		day := 24 * time.Hour
		at := func(d time.Duration) int64 { return now.Add(-d).UnixNano() }
		seq := func(n int64) int64 { return store.SeqBase + n }
		for _, c := range []struct {
			name             string
			touched, snapSeq int64
			snapshot         int64
			want             bool
		}{
			{"reacted after the snapshot", seq(10), seq(9), at(2 * day), false},
			{"reacted before the snapshot", seq(8), seq(9), at(2 * day), true},
			{"the snapshot's last write", seq(9), seq(9), at(2 * day), true},
			{"no key, recent snapshot", 0, seq(9), at(2 * day), true},
			{"no key, snapshot just inside the TTL", 0, seq(9), at(keyspace.TouchedTTL - time.Second), true},
			{"no key, snapshot older than the TTL (a reaction may have expired)", 0, seq(9), at(keyspace.TouchedTTL + day), false},
			{"key present, old snapshot, older reaction", seq(1), seq(9), at(keyspace.TouchedTTL + day), true},
			{"no snapshot time, no key", 0, 0, 0, true},
			{"a version from before the numbers, a reaction", seq(1), 0, at(day), false},
			{"a mark from before the numbers (unix ns)", at(3 * day), seq(9), at(2 * day), true},
		} {
			if got := keyspace.BatchFresh(c.touched, c.snapSeq, c.snapshot, now); got != c.want {
				t.Errorf("%s: BatchFresh %v, want %v", c.name, got, c.want)
			}
		}
	})
}
