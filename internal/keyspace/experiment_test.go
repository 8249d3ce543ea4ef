package keyspace_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/experiment"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/keyspace/redistest"
)

// TestExperimentProtectsChallenger: only a published version with live keys
// can be a challenger; while the experiment runs, publishes that push it out
// of previous leave its keys without an expiry; once it ends, the next
// cleanup retires it as usual. Start and end are announced on the events
// channel and a second, different routing is refused.
func TestExperimentProtectsChallenger(t *testing.T) {
	rdb, prefix := redistest.Client(t)
	ctx := context.Background()
	keys := keyspace.NewKeys(prefix)
	pub := keyspace.NewPublisher(rdb, keys)
	rd := keyspace.NewReader(rdb, prefix)
	for v := range 2 {
		if _, err := pub.Publish(ctx, keyspace.Version(v+1), release(3, v+1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.CheckChallenger(ctx, 2); !errors.Is(err, setlist.ErrInvalid) {
		t.Errorf("current as challenger: %v", err)
	}
	if err := pub.CheckChallenger(ctx, 9); !errors.Is(err, setlist.ErrNotFound) {
		t.Errorf("unknown version as challenger: %v", err)
	}
	if err := pub.CheckChallenger(ctx, 1); err != nil {
		t.Fatalf("previous as challenger: %v", err)
	}
	if _, ok, err := rd.Experiment(ctx); ok || err != nil {
		t.Fatalf("experiment before start: %v, %v", ok, err)
	}

	ps := rd.Subscribe(ctx)
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil { // the subscription confirmation
		t.Fatal(err)
	}
	r := experiment.Routing{ID: 7, Challenger: 1, Share: 0.25, Salt: "abc123"}
	if err := pub.StartExperiment(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := pub.StartExperiment(ctx, r); err != nil {
		t.Errorf("a retried start of the same experiment: %v", err)
	}
	other := r
	other.ID = 8
	if err := pub.StartExperiment(ctx, other); !errors.Is(err, setlist.ErrConflict) {
		t.Errorf("second experiment: %v", err)
	}
	msg, err := ps.ReceiveMessage(ctx)
	if err != nil || msg.Payload != keyspace.ExperimentEvent {
		t.Fatalf("event %v, %v", msg, err)
	}
	if ev, err := keyspace.ParseEvent(msg.Payload); err != nil || ev.Kind != keyspace.EventExperiment {
		t.Errorf("parsed %+v, %v", ev, err)
	}
	got, ok, err := rd.Experiment(ctx)
	if !ok || err != nil || got != r {
		t.Fatalf("routing read back %+v, %v, %v; want %+v", got, ok, err, r)
	}

	// Two publishes push version 1 out of previous; it is the challenger,
	// so neither the publish's sweep nor Cleanup touches it.
	for v := 3; v <= 4; v++ {
		if _, err := pub.Publish(ctx, keyspace.Version(v), release(3, v)); err != nil {
			t.Fatal(err)
		}
		c, err := pub.Cleanup(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range c.Retired {
			if x == 1 {
				t.Errorf("publish of %d retired the challenger", v)
			}
		}
	}
	if ttl := rdb.PTTL(ctx, keys.Recs(1, userID(0))).Val(); ttl != -1 {
		t.Errorf("challenger list TTL %v during the experiment, want none", ttl)
	}
	if ttl := rdb.PTTL(ctx, keys.Items(2)).Val(); ttl <= 0 {
		t.Errorf("version 2 (neither current, previous nor challenger) not retired: TTL %v", ttl)
	}
	if err := pub.CheckChallenger(ctx, 2); !errors.Is(err, setlist.ErrNotFound) && !errors.Is(err, setlist.ErrConflict) {
		t.Errorf("a retired version as challenger: %v", err)
	}

	if err := pub.EndExperiment(ctx); err != nil {
		t.Fatal(err)
	}
	if msg, err := ps.ReceiveMessage(ctx); err != nil || msg.Payload != keyspace.ExperimentEvent {
		t.Errorf("end event %v, %v", msg, err)
	}
	if _, ok, _ := rd.Experiment(ctx); ok {
		t.Error("routing still there after the end")
	}
	c, err := pub.Cleanup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Retired) != 1 || c.Retired[0] != 1 {
		t.Errorf("cleanup after the end retired %v, want [1]", c.Retired)
	}
	if ttl := rdb.PTTL(ctx, keys.Recs(1, userID(0))).Val(); ttl <= 0 || ttl > keyspace.DefaultGrace+time.Second {
		t.Errorf("former challenger TTL %v, want the grace", ttl)
	}
}

func TestParseRouting(t *testing.T) {
	for _, bad := range []string{"", "1 2 0.1", "x 2 0.1 s", "1 x 0.1 s", "1 2 x s", "1 2 1.5 s", "1 0 0.1 s"} {
		if _, err := keyspace.ParseRouting(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// TestPublishHeld: a held version is written whole (every list, meta) but
// readers stay on current; it can be a challenger; the sweeps keep it while
// it is newer than current, and retire it once a newer version is current.
func TestPublishHeld(t *testing.T) {
	rdb, prefix := redistest.Client(t)
	ctx := context.Background()
	keys := keyspace.NewKeys(prefix)
	pub := keyspace.NewPublisher(rdb, keys)
	if _, err := pub.Publish(ctx, 1, release(3, 1)); err != nil {
		t.Fatal(err)
	}
	rep, err := pub.PublishHeld(ctx, 2, release(3, 2))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Users != 3 {
		t.Errorf("held publish wrote %d lists, want 3", rep.Users)
	}
	if ptr, err := pub.Pointers(ctx); err != nil || ptr.Current != 1 {
		t.Fatalf("pointers after a held publish: %+v, %v; want current 1", ptr, err)
	}
	for u := range 3 {
		if n := rdb.Exists(ctx, keys.Recs(2, userID(u))).Val(); n != 1 {
			t.Errorf("held version's list of user %d missing", u)
		}
	}
	if err := pub.CheckChallenger(ctx, 2); err != nil {
		t.Errorf("held version as challenger: %v", err)
	}
	c, err := pub.Cleanup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Retired)+len(c.Deleted) != 0 {
		t.Errorf("cleanup touched the held version: %+v", c)
	}
	if ttl := rdb.PTTL(ctx, keys.Items(2)).Val(); ttl != -1 {
		t.Errorf("held version's items TTL %v, want none", ttl)
	}
	// A newer version goes live: the held one is no longer a candidate.
	if _, err := pub.Publish(ctx, 3, release(3, 3)); err != nil {
		t.Fatal(err)
	}
	if c, err = pub.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	if len(c.Retired) != 1 || c.Retired[0] != 2 {
		t.Errorf("cleanup after a newer publish retired %v, want [2]", c.Retired)
	}
	if ttl := rdb.PTTL(ctx, keys.Items(2)).Val(); ttl <= 0 {
		t.Errorf("older held version not retired: TTL %v", ttl)
	}
}
