package server_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/postgres"
	"github.com/setlist/setlist/serve/internal/server"
)

// noHiddenSetDB is the real database whose hidden-set read fails: a
// replica that starts while that query times out.
type noHiddenSetDB struct {
	*postgres.DB
}

func (noHiddenSetDB) HiddenSongs(context.Context) (int64, []setlist.SongID, error) {
	return 0, nil, errors.New("hidden songs: injected failure")
}

// TestUnreadHiddenSetStillHides: stored lists withhold the songs a train
// found unavailable, where they rank, so a replica must never answer one
// because it could not read the hidden set. A replica whose hidden-set
// read fails takes the unavailable songs from the metadata it reads with
// the version (here: a song taken down in the catalog, heading every
// user's list) and still answers every user 5 songs without it.
func TestUnreadHiddenSetStillHides(t *testing.T) {
	tw := newTakedownWorld(t)
	if _, err := tw.db.SetAvailable(context.Background(), []setlist.SongID{tw.hot}, false); err != nil {
		t.Fatal(err)
	}
	in := tw.startDeps(t, fastConfig(), func(d *server.Deps) { d.DB = noHiddenSetDB{tw.db} })
	in.waitModel(t, 3)
	for _, u := range tw.users {
		if got := in.recs(t, u, 5); len(got.Items) != 5 || slices.Contains(got.songs(), tw.hot) {
			t.Fatalf("with no hidden set read, %s got %s %v: the unavailable song %d is shown", u, got.Source, got.songs(), tw.hot)
		}
	}
}
