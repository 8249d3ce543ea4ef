package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/postgres/pgtest"
	"github.com/setlist/setlist/internal/store"
)

func TestRunRegistry(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	if _, err := db.LastPublished(ctx); !errors.Is(err, setlist.ErrNotFound) {
		t.Fatalf("LastPublished on an empty registry = %v, want ErrNotFound", err)
	}
	first, err := db.StartRun(ctx, "first")
	if err != nil {
		t.Fatalf("StartRun: %v", err)
	}
	snap := time.Now().Add(-time.Minute).Truncate(time.Microsecond)
	v := first
	err = db.UpdateRun(ctx, first, store.RunUpdate{
		Status: store.RunPublished, Version: &v, SnapshotAt: &snap,
		Params: map[string]int{"factors": 8}, Metrics: map[string]float64{"ndcg_at_5": 0.25},
		Counts: map[string]int{"users": 3}, Timings: map[string]float64{"total": 1.5},
	})
	if err != nil {
		t.Fatalf("UpdateRun: %v", err)
	}
	r, err := db.Run(ctx, first)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if r.Status != store.RunPublished || r.Version == nil || *r.Version != first || r.Notes != "first" {
		t.Errorf("run = %+v, want published version %d with notes", r, first)
	}
	if r.FinishedAt == nil || r.PublishedAt == nil || r.SnapshotAt == nil || !r.SnapshotAt.Equal(snap) {
		t.Errorf("timestamps not set: finished %v published %v snapshot %v (want %v)", r.FinishedAt, r.PublishedAt, r.SnapshotAt, snap)
	}
	var m map[string]float64
	if err := json.Unmarshal(r.Metrics, &m); err != nil || m["ndcg_at_5"] != 0.25 {
		t.Errorf("metrics = %s (%v)", r.Metrics, err)
	}

	second, _ := db.StartRun(ctx, "")
	// A partial update leaves the other columns alone.
	if err := db.UpdateRun(ctx, second, store.RunUpdate{Counts: map[string]int{"users": 4}}); err != nil {
		t.Fatalf("UpdateRun: %v", err)
	}
	if err := db.UpdateRun(ctx, second, store.RunUpdate{Status: store.RunRejected, Reason: "worse"}); err != nil {
		t.Fatalf("UpdateRun: %v", err)
	}
	r2, _ := db.Run(ctx, second)
	if r2.Status != store.RunRejected || r2.Reason != "worse" || string(r2.Counts) != `{"users": 4}` || r2.Version != nil || r2.PublishedAt != nil {
		t.Errorf("second run = %+v counts %s", r2, r2.Counts)
	}
	last, err := db.LastPublished(ctx)
	if err != nil || last.ID != first {
		t.Errorf("LastPublished = %d, %v; want %d", last.ID, err, first)
	}
	runs, err := db.Runs(ctx, 10)
	if err != nil || len(runs) != 2 || runs[0].ID != second {
		t.Errorf("Runs = %d runs (%v), want 2 newest first", len(runs), err)
	}
	if err := db.UpdateRun(ctx, 999, store.RunUpdate{Reason: "x"}); !errors.Is(err, setlist.ErrNotFound) {
		t.Errorf("UpdateRun of a missing run = %v, want ErrNotFound", err)
	}
	if _, err := db.Run(ctx, 999); !errors.Is(err, setlist.ErrNotFound) {
		t.Errorf("Run of a missing run = %v, want ErrNotFound", err)
	}
}

func TestRecordRollback(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	a, _ := db.StartRun(ctx, "")
	b, _ := db.StartRun(ctx, "")
	for _, id := range []int64{a, b} {
		v := id
		if err := db.UpdateRun(ctx, id, store.RunUpdate{Status: store.RunPublished, Version: &v}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.RecordRollback(ctx, b, a, "bad recs"); err != nil {
		t.Fatalf("RecordRollback: %v", err)
	}
	rb, _ := db.Run(ctx, b)
	if rb.Status != store.RunRolledBack || rb.Reason != "bad recs" {
		t.Errorf("rolled back run = %s %q", rb.Status, rb.Reason)
	}
	last, err := db.LastPublished(ctx)
	if err != nil || last.ID != a {
		t.Errorf("LastPublished after rollback = %d, %v; want %d", last.ID, err, a)
	}
	if err := db.RecordRollback(ctx, a, 999, "x"); !errors.Is(err, setlist.ErrNotFound) {
		t.Errorf("RecordRollback to a missing run = %v, want ErrNotFound", err)
	}
	if ra, _ := db.Run(ctx, a); ra.Status != store.RunPublished {
		t.Errorf("a failed RecordRollback changed run %d to %s", a, ra.Status)
	}
}

func TestLockTraining(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	release, err := db.LockTraining(ctx, false, nil)
	if err != nil {
		t.Fatalf("first LockTraining: %v", err)
	}
	_, err = db.LockTraining(ctx, false, nil)
	if !errors.Is(err, setlist.ErrConflict) || !strings.Contains(err.Error(), "another batch train holds the lock (setlist batch train pid") {
		t.Fatalf("second LockTraining = %v, want ErrConflict naming the holder", err)
	}
	// A waiter blocks until the holder releases.
	got := make(chan error, 1)
	waited := make(chan string, 1)
	go func() {
		rel, err := db.LockTraining(ctx, true, func(holder string) { waited <- holder })
		if err == nil {
			rel()
		}
		got <- err
	}()
	select {
	case h := <-waited:
		if !strings.Contains(h, "pid") {
			t.Errorf("onWait holder = %q", h)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("waiter never reported waiting")
	}
	select {
	case err := <-got:
		t.Fatalf("waiter returned %v while the lock was held", err)
	case <-time.After(200 * time.Millisecond):
	}
	release()
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("waiter: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("waiter did not get the lock after release")
	}
	// A waiter gives up when its context ends.
	release, err = db.LockTraining(ctx, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := db.LockTraining(short, true, nil); err == nil {
		t.Errorf("waiting LockTraining succeeded while the lock was held")
	}
}
