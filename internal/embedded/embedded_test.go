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
	"github.com/setlist/setlist/internal/embedded"
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
