package embedded_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/als"
	"github.com/setlist/setlist/internal/embedded"
	"github.com/setlist/setlist/internal/feedback"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/model"
)

// TestKeysSurviveRestart checks the snapshot round trip: binary strings,
// hashes and TTLs come back after Close and Open, and a second process
// cannot own the same data dir's keys meanwhile.
func TestKeysSurviveRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := embedded.Open(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	rdb, err := s.StartKV(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	bin := string([]byte{0, 0xff, 0xfe, 'x', 0})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(rdb.Set(ctx, "p:bin", bin, 0).Err())
	must(rdb.HSet(ctx, "p:versions", "1", "published", "2", bin).Err())
	must(rdb.Set(ctx, "p:ttl", "x", time.Hour).Err())
	must(rdb.Set(ctx, "p:gone", "x", time.Millisecond).Err())

	other, err := embedded.Open(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.StartKV(ctx, "p"); !errors.Is(err, setlist.ErrConflict) {
		t.Errorf("second owner of the data dir: %v; want ErrConflict", err)
	} else if msg := err.Error(); !strings.Contains(msg, fmt.Sprintf("in use by pid %d", os.Getpid())) ||
		strings.Contains(msg, setlist.ErrConflict.Error()) || !strings.Contains(msg, "make retrain") {
		t.Errorf("second owner of the data dir: %q; want who holds it and what to do, without %q", msg, setlist.ErrConflict.Error())
	}
	must(other.Close())
	time.Sleep(1500 * time.Millisecond) // one TTL tick: p:gone expires
	must(s.Close())

	s, err = embedded.Open(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rdb, err = s.StartKV(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := rdb.Get(ctx, "p:bin").Result(); err != nil || got != bin {
		t.Errorf("binary string = %q, %v", got, err)
	}
	if got, err := rdb.HGetAll(ctx, "p:versions").Result(); err != nil || got["1"] != "published" || got["2"] != bin {
		t.Errorf("hash = %q, %v", got, err)
	}
	if ttl, err := rdb.TTL(ctx, "p:ttl").Result(); err != nil || ttl <= 50*time.Minute || ttl > time.Hour {
		t.Errorf("ttl = %v, %v; want about an hour", ttl, err)
	}
	if n, err := rdb.Exists(ctx, "p:gone").Result(); err != nil || n != 0 {
		t.Errorf("expired key restored: exists %d, %v", n, err)
	}
}

// TestPlaygroundAcrossLayouts is a .run/ directory from before Redis
// Cluster support: its saved keys are in the legacy layout. After a
// restart with the new code the version is read, the next publish moves the
// playground to the current layout, and that survives another restart.
func TestPlaygroundAcrossLayouts(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	const prefix = "setlist"
	keys := keyspace.NewKeys(prefix)
	open := func() (*embedded.Store, *keyspace.Reader, *keyspace.Publisher) {
		t.Helper()
		s, err := embedded.Open(ctx, dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		rdb, err := s.StartKV(ctx, prefix)
		if err != nil {
			t.Fatal(err)
		}
		return s, keyspace.NewReader(rdb, prefix), keyspace.NewPublisher(rdb, keys)
	}
	// The old code's publish, saved at close.
	s, _, _ := open()
	rdb, _ := s.StartKV(ctx, prefix)
	if _, err := keyspace.NewPublisher(rdb, keys.In(keyspace.LayoutLegacy)).Publish(ctx, 1, release(t, 1)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	check := func(r *keyspace.Reader, v keyspace.Version, layout keyspace.Layout) {
		t.Helper()
		cur, err := r.Current(ctx)
		if err != nil || cur != v {
			t.Fatalf("current = %d, %v; want %d", cur, err, v)
		}
		if _, err := r.Load(ctx, v); err != nil {
			t.Fatalf("load %d: %v", v, err)
		}
		if got := r.KeysFor(v).Layout(); got != layout {
			t.Fatalf("version %d in layout %d, want %d", v, got, layout)
		}
		st, err := r.UserState(ctx, v, "ana")
		if err != nil || len(st.Recs) != 1 || st.Recs[0].Song != setlist.SongID(v) {
			t.Fatalf("ana under %d: %+v, %v", v, st, err)
		}
	}
	s, r, p := open()
	check(r, 1, keyspace.LayoutLegacy)
	if _, err := p.Publish(ctx, 2, release(t, 2)); err != nil {
		t.Fatal(err)
	}
	check(r, 2, keyspace.CurrentLayout)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, r, _ = open()
	defer s.Close()
	check(r, 2, keyspace.CurrentLayout)
}

// release is a loadable version of one user, ana, whose one song is v.
func release(t *testing.T, v int) keyspace.Release {
	t.Helper()
	p := als.DefaultParams()
	p.Factors, p.Weighting = 1, feedback.WeightRaw
	side := (&als.Model{Params: p, Items: 1, Factors: 1, ItemFactors: []float32{1}}).ItemSide()
	items, err := model.EncodeItems(model.NewCatalog([]setlist.SongID{setlist.SongID(v)}), side)
	if err != nil {
		t.Fatal(err)
	}
	return keyspace.Release{
		Meta:  model.Meta{K: 1, Items: 1, Scheme: model.DefaultScheme()},
		Items: items, Users: 1,
		List: func(int) (setlist.UserID, []model.Rec) {
			return "ana", []model.Rec{{Song: setlist.SongID(v), Score: 1}}
		},
	}
}
