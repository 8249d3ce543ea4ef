package server_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/setlist/setlist"
)

// TestPausedRedisNeverUndoesALike (issue 24 item 2): with Redis refusing
// writes (CLIENT PAUSE WRITE on a private server; reads still answer), a
// like of a song of the user's batch list is either saved (2xx, the row in
// PostgreSQL) or refused (503, no row): never 503 with the row committed.
// After the pause, a song whose like is committed is never served back.
// Before the fix the like answered 503 "a backing store is unavailable",
// was committed anyway, and the liked song came back from the batch list,
// 3 times of 3: the freshness mark was written after the commit and failed.
func TestPausedRedisNeverUndoesALike(t *testing.T) {
	pr := startPrivateRedis(t)
	w := pr.world(t, &redis.Options{ContextTimeoutEnabled: true}, "pausewrite")
	in := w.start(t, fastConfig(), nil)
	in.waitModel(t, 1)
	batch := w.v1.Lists["batchy"]
	if a := in.recs(t, "batchy", 5); a.Source != "batch" {
		t.Fatalf("batchy answered from %s", a.Source)
	}
	ctx := context.Background()
	liked := func(song setlist.SongID) bool {
		var n int
		err := w.db.Pool.QueryRow(ctx, `SELECT count(*) FROM reactions r JOIN users u ON u.id = r.user_id
			WHERE u.external_id = 'batchy' AND r.song_id = $1 AND r.kind = 'like'`, song).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n > 0
	}
	pause := 1500 * time.Millisecond
	for i := range 3 {
		song := batch[i].Song
		if err := w.rdb.Do(ctx, "CLIENT", "PAUSE", pause.Milliseconds(), "WRITE").Err(); err != nil {
			t.Fatal(err)
		}
		paused := time.Now()
		r, err := in.try(http.MethodPost, "/v1/users/batchy/reactions", map[string]any{"song_id": song, "kind": "like"})
		if err != nil {
			t.Fatal(err)
		}
		stored := liked(song)
		switch {
		case r.status == http.StatusServiceUnavailable && stored:
			t.Errorf("like %d of song %d: 503, yet the like is committed: %s", i+1, song, r.body)
		case r.status/100 == 2 && !stored:
			t.Errorf("like %d of song %d: %d, yet nothing is committed", i+1, song, r.status)
		case r.status != http.StatusServiceUnavailable && r.status/100 != 2:
			t.Errorf("like %d of song %d: status %d: %s", i+1, song, r.status, r.body)
		}
		time.Sleep(time.Until(paused.Add(pause + 200*time.Millisecond)))
		for range 3 {
			a := in.recs(t, "batchy", 10)
			for _, s := range batch[:i+1] {
				if liked(s.Song) && slices.Contains(a.songs(), s.Song) {
					t.Errorf("after like %d: song %d, liked and committed, served back from %s", i+1, s.Song, a.Source)
				}
			}
		}
	}
	// Once Redis takes writes again the like goes through.
	for _, s := range batch[:3] {
		if !liked(s.Song) {
			in.react(t, "batchy", s.Song, "like")
		}
	}
	a := in.recs(t, "batchy", 10)
	for _, s := range batch[:3] {
		if slices.Contains(a.songs(), s.Song) {
			t.Errorf("song %d served after its like", s.Song)
		}
	}
}
