package server_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/setlist/setlist/internal/keyspace"
)

// TestTouchedExpiry: P:touched:{U} expires (keyspace.TouchedTTL after
// the reaction), so its absence only proves "no reaction since the
// snapshot" for a model snapshotted within the TTL: an older model (training
// stopped, or an old version restored) folds in a user with no key instead
// of serving a batch list a since-expired reaction outdated.
func TestTouchedExpiry(t *testing.T) {
	w := newWorld(t)
	in := w.start(t, fastConfig(), nil)
	in.waitModel(t, 1)
	ctx := context.Background()

	// A reaction through the API sets the key with the TTL.
	r := in.do(t, http.MethodPost, "/v1/users/folder/reactions", map[string]any{"song_id": w.songs[33], "kind": "like"})
	wantStatus(t, r, http.StatusCreated)
	ttl, err := w.rdb.TTL(ctx, keyspace.NewKeys(w.prefix).Touched("folder")).Result()
	if err != nil || ttl <= keyspace.TouchedTTL-time.Minute || ttl > keyspace.TouchedTTL {
		t.Fatalf("P:touched:folder TTL %v (%v), want about %v", ttl, err, keyspace.TouchedTTL)
	}

	// batchy has a batch list and no touched key: served from the batch
	// while the snapshot is recent...
	if a := in.recs(t, "batchy", 3); a.Source != "batch" {
		t.Fatalf("untouched user on a fresh model: source %s, want batch", a.Source)
	}
	// ...but not from a model whose snapshot is older than the TTL.
	old := w.version(2, w.songs[:40])
	old.SnapshotAt = time.Now().Add(-keyspace.TouchedTTL - 24*time.Hour)
	publishVersion(t, w, old)
	in.waitModel(t, 2)
	a := in.recs(t, "batchy", 3)
	if a.ModelVersion != 2 || a.Source == "batch" {
		t.Fatalf("untouched user on a model snapshotted %v ago: version %d source %s, want a fold-in",
			time.Since(old.SnapshotAt).Round(time.Hour), a.ModelVersion, a.Source)
	}
}
