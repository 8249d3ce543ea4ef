package server_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/model"
	"github.com/setlist/setlist/internal/store"
)

// TestRefreshReachesReplicas: a batch refresh of the served version (a
// song added with the vector of a trained one, and batchy's list
// rewritten with it on top) reaches two replicas with warm near caches:
// both answer batchy's new list, know the song for similar songs, and
// /v1/model shows the refresh.
func TestRefreshReachesReplicas(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	a := w.start(t, fastConfig(), nil)
	b := w.start(t, fastConfig(), nil)
	for _, in := range []*instance{a, b} {
		in.waitModel(t, 1)
		in.waitNearCache(t, "batchy")
	}
	fresh := w.songs[45] // not in version 1's catalog
	if r := a.get(t, fmt.Sprintf("/v1/songs/%d/similar", fresh)); r.status != 404 {
		t.Fatalf("similar of a song version 1 does not know: %d", r.status)
	}
	side := w.v1.ItemSide()
	k := side.Factors
	vec := slices.Clone(side.ItemFactors[3*k : 4*k]) // the twin of catalog song 3
	added, err := model.EncodeAdded([]model.AddedSong{{Song: fresh, Listeners: 3, Vector: vec}})
	if err != nil {
		t.Fatal(err)
	}
	pub := keyspace.NewPublisher(w.rdb, keyspace.NewKeys(w.prefix))
	rep, err := pub.ApplyRefresh(ctx, 1, keyspace.Refresh{
		Added: added, Users: 1,
		User: func(int) setlist.UserID { return "batchy" },
		Merge: func(_ int, old []model.Rec) ([]model.Rec, bool) {
			return append([]model.Rec{{Song: fresh, Score: 100}}, old[:len(old)-1]...), true
		},
	})
	if err != nil || rep.Updated != 1 {
		t.Fatalf("refresh: %+v, %v", rep, err)
	}
	id, err := w.db.StartRefresh(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.db.FinishRefresh(ctx, id, store.RefreshEnd{Status: store.RefreshDone, Songs: []setlist.SongID{fresh}, UsersUpdated: 1}); err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string]*instance{"a": a, "b": b} {
		waitFor(t, "replica "+name+" answers the refreshed list", func() bool {
			ans := in.recs(t, "batchy", 5)
			return len(ans.Items) == 5 && ans.Items[0].SongID == fresh && ans.Source == "batch"
		})
		var sim struct {
			Items []setlist.Song
		}
		in.get(t, fmt.Sprintf("/v1/songs/%d/similar?n=1", w.songs[3])).json(t, &sim)
		if len(sim.Items) != 1 || sim.Items[0].ID != fresh {
			t.Errorf("replica %s: most similar to song 3 = %+v, want its twin %d", name, sim.Items, fresh)
		}
	}
	var m struct {
		Refresh struct {
			Supported bool           `json:"supported"`
			Last      *store.Refresh `json:"last"`
		} `json:"refresh"`
	}
	a.get(t, "/v1/model").json(t, &m)
	if !m.Refresh.Supported || m.Refresh.Last == nil || m.Refresh.Last.SongsAdded != 1 || m.Refresh.Last.UsersUpdated != 1 ||
		m.Refresh.Last.Status != store.RefreshDone || m.Refresh.Last.FinishedAt == nil {
		t.Errorf("/v1/model refresh = %+v", m.Refresh)
	}
}
