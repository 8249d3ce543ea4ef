package postgres_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/feedback"
	"github.com/setlist/setlist/internal/model"
	"github.com/setlist/setlist/internal/postgres"
	"github.com/setlist/setlist/internal/postgres/pgtest"
)

// seedReaction is one row to insert: user external id, "artist/track", kind, weight.
type seedReaction struct {
	user, song string
	kind       setlist.ReactionKind
	weight     float64
}

// seed inserts users, songs and reactions with plain SQL, returning song ids
// by name.
func seed(t *testing.T, db *postgres.DB, users, songs []string, reactions []seedReaction) map[string]setlist.SongID {
	t.Helper()
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `INSERT INTO users (external_id) SELECT unnest($1::text[])`, users); err != nil {
		t.Fatalf("insert users: %v", err)
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO songs (artist, track) SELECT 'artist', unnest($1::text[])`, songs); err != nil {
		t.Fatalf("insert songs: %v", err)
	}
	ids := map[string]setlist.SongID{}
	rows, err := db.Pool.Query(ctx, `SELECT id, track FROM songs`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id int64
		var track string
		if err := rows.Scan(&id, &track); err != nil {
			t.Fatal(err)
		}
		ids[track] = setlist.SongID(id)
	}
	for _, r := range reactions {
		if _, err := db.Pool.Exec(ctx, `INSERT INTO reactions (user_id, song_id, kind, weight)
			SELECT u.id, $2, $3, $4 FROM users u WHERE u.external_id = $1`, r.user, int64(ids[r.song]), string(r.kind), r.weight); err != nil {
			t.Fatalf("insert reaction %v: %v", r, err)
		}
	}
	return ids
}

func TestLoadTraining(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	ids := seed(t, db,
		[]string{"ann", "bob", "idle", "cat"},
		[]string{"s1", "s2", "s3", "unplayed"},
		[]seedReaction{
			{"ann", "s1", setlist.Play, 3},
			{"ann", "s1", setlist.Like, 1},    // plays + like → 3 + 4
			{"ann", "s2", setlist.Dislike, 1}, // → −1
			{"bob", "s2", setlist.Play, 2},
			{"bob", "s2", setlist.Dislike, 1}, // dislike wins → −1
			{"bob", "s3", setlist.Play, 0},    // no signal: no entry, but bob and s3 are indexed
			{"cat", "s3", setlist.Like, 1},
		})
	before := time.Now().Add(-time.Second)
	var calls int
	tr, err := db.LoadTraining(ctx, model.DefaultScheme(), func(read, est int64) { calls++ })
	if err != nil {
		t.Fatalf("LoadTraining: %v", err)
	}
	if tr.SnapshotAt.Before(before) || tr.SnapshotAt.After(time.Now().Add(time.Second)) {
		t.Errorf("SnapshotAt = %v, want about now", tr.SnapshotAt)
	}
	if want := []setlist.UserID{"ann", "bob", "cat"}; !slices.Equal(tr.Users, want) {
		t.Errorf("Users = %v, want %v (idle has no reaction)", tr.Users, want)
	}
	if want := []setlist.SongID{ids["s1"], ids["s2"], ids["s3"]}; !slices.Equal(tr.Songs, want) {
		t.Errorf("Songs = %v, want %v (unplayed has no reaction)", tr.Songs, want)
	}
	want := []feedback.Entry{
		{Row: 0, Col: 0, Value: 7},
		{Row: 0, Col: 1, Value: -1},
		{Row: 1, Col: 1, Value: -1},
		{Row: 2, Col: 2, Value: 4},
	}
	if !slices.Equal(tr.Entries, want) {
		t.Errorf("Entries = %v, want %v", tr.Entries, want)
	}
	if tr.Reactions != 7 {
		t.Errorf("Reactions = %d, want 7", tr.Reactions)
	}
	if calls == 0 {
		t.Errorf("progress never called")
	}

	// The load weighs a user exactly as fold-in does (Catalog.Row).
	cat := model.NewCatalog(tr.Songs)
	cols, vals := cat.Row(model.DefaultScheme(), []setlist.Reaction{
		{Song: ids["s1"], Kind: setlist.Play, Weight: 3}, {Song: ids["s1"], Kind: setlist.Like, Weight: 1},
		{Song: ids["s2"], Kind: setlist.Dislike, Weight: 1},
	})
	if !slices.Equal(cols, []int32{0, 1}) || !slices.Equal(vals, []float32{7, -1}) {
		t.Errorf("Catalog.Row = %v %v, want the loaded row of ann", cols, vals)
	}
}

func TestLoadTrainingEmpty(t *testing.T) {
	db := pgtest.DB(t)
	tr, err := db.LoadTraining(context.Background(), model.DefaultScheme(), nil)
	if err != nil {
		t.Fatalf("LoadTraining: %v", err)
	}
	if len(tr.Users) != 0 || len(tr.Songs) != 0 || len(tr.Entries) != 0 {
		t.Errorf("empty database loaded %d users, %d songs, %d entries", len(tr.Users), len(tr.Songs), len(tr.Entries))
	}
}

func TestLoadTrainingRejectsBadScheme(t *testing.T) {
	db := pgtest.DB(t)
	if _, err := db.LoadTraining(context.Background(), model.Scheme{}, nil); err == nil {
		t.Errorf("LoadTraining accepted a zero scheme")
	}
}

// TestLoadTrainingSparseSongIDs exercises the map fallback of the song index.
func TestLoadTrainingSparseSongIDs(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `INSERT INTO users (id, external_id) VALUES (5, 'u')`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO songs (id, artist, track) VALUES (1, 'a', 'x'), (900000000, 'a', 'y')`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO reactions (user_id, song_id, kind, weight) VALUES (5, 1, 'play', 1), (5, 900000000, 'play', 2)`); err != nil {
		t.Fatal(err)
	}
	tr, err := db.LoadTraining(ctx, model.DefaultScheme(), nil)
	if err != nil {
		t.Fatalf("LoadTraining: %v", err)
	}
	want := []feedback.Entry{{Row: 0, Col: 0, Value: 1}, {Row: 0, Col: 1, Value: 2}}
	if !slices.Equal(tr.Entries, want) {
		t.Errorf("Entries = %v, want %v", tr.Entries, want)
	}
}
