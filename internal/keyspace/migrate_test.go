package keyspace_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/als"
	"github.com/setlist/setlist/internal/feedback"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/keyspace/redistest"
	"github.com/setlist/setlist/internal/model"
	"github.com/setlist/setlist/internal/store"
)

// loadable is release with an item side and meta a Reader can decode.
func loadable(t *testing.T, users, salt int) keyspace.Release {
	t.Helper()
	r := release(users, salt)
	p := als.DefaultParams()
	p.Factors, p.Weighting = 2, feedback.WeightRaw
	side := (&als.Model{Params: p, Items: 3, Factors: 2, ItemFactors: []float32{1, 0, 0, 1, 1, float32(salt)}}).ItemSide()
	items, err := model.EncodeItems(model.NewCatalog([]setlist.SongID{10, 20, 30}), side)
	if err != nil {
		t.Fatal(err)
	}
	r.Items, r.Meta.Scheme = items, model.DefaultScheme()
	return r
}

// TestMigrateFromLegacyLayout is a deployment moving from the key layout
// before Redis Cluster support to the current one without downtime: a
// serve (Reader) of the new code reads versions the old code published,
// the new publisher adopts the old pointers, readers then read the new
// version, a rollback to the old version still works, and once no old
// version is current or previous the old pointers go. Single server only:
// that is where legacy versions exist.
func TestMigrateFromLegacyLayout(t *testing.T) {
	rdb, prefix := redistest.Client(t)
	ctx := context.Background()
	keys := keyspace.NewKeys(prefix)
	legacy := keys.In(keyspace.LayoutLegacy)
	const users = 20
	u := userID(3)

	// The old code published 1 and 2.
	old := keyspace.NewPublisher(rdb, legacy)
	for v := range 2 {
		if _, err := old.Publish(ctx, keyspace.Version(v+1), loadable(t, users, v+1)); err != nil {
			t.Fatal(err)
		}
	}
	if raw := rdb.Get(ctx, legacy.Meta(2)).Val(); !json.Valid([]byte(raw)) || strings.Contains(raw, "key_layout") {
		t.Fatalf("legacy meta %q: want one without key_layout, as the old code wrote", raw)
	}

	// A serve of the new code reads version 2 by its legacy names.
	r := keyspace.NewReader(rdb, prefix)
	if v, err := r.Current(ctx); err != nil || v != 2 {
		t.Fatalf("Current = %d, %v; want the legacy pointer's 2", v, err)
	}
	pub, err := r.Load(ctx, 2)
	if err != nil || r.KeysFor(2).Layout() != keyspace.LayoutLegacy || keyspace.LayoutOf(pub.Meta) != keyspace.LayoutLegacy {
		t.Fatalf("Load(2) = %v, layout %d", err, r.KeysFor(2).Layout())
	}
	_, want2 := release(users, 2).List(3)
	st, err := r.UserState(ctx, 2, u)
	if err != nil || !slices.Equal(st.Recs, want2) {
		t.Fatalf("UserState(2) = %+v, %v; want %v", st, err, want2)
	}
	seq := store.SeqBase + 5
	if err := r.StoreFoldIn(ctx, 2, u, keyspace.FoldInRecord{Source: setlist.SourceFoldIn, Touched: 1}, 0); err != nil {
		t.Fatal(err)
	}
	if err := r.Touch(ctx, 2, u, seq); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{legacy.Touched(u), keys.Touched(u)} {
		if got := rdb.Get(ctx, k).Val(); got != strconv.FormatInt(seq, 10) {
			t.Errorf("%s = %q after Touch under a legacy version, want %d", k, got, seq)
		}
	}
	if n := rdb.Exists(ctx, legacy.FoldIn(2, u)).Val(); n != 0 {
		t.Error("Touch left the legacy fold-in record")
	}
	if st, _ := r.UserState(ctx, 2, u); st.Touched != seq {
		t.Fatalf("touched under the legacy version = %d, want %d", st.Touched, seq)
	}

	// The new code publishes 3: the legacy pointers are adopted, 2 becomes
	// previous, and the legacy pointer stays on 2 for old replicas.
	p := keyspace.NewPublisher(rdb, keys)
	rep, err := p.Publish(ctx, 3, loadable(t, users, 3))
	if err != nil || rep.Previous != 2 {
		t.Fatalf("Publish(3) = %+v, %v; want previous 2", rep, err)
	}
	if got := rdb.Get(ctx, legacy.Current()).Val(); got != "2" {
		t.Errorf("legacy pointer = %q after the first new publish, want 2 (old replicas)", got)
	}
	if v, err := r.Current(ctx); err != nil || v != 3 {
		t.Fatalf("Current = %d, %v; want 3", v, err)
	}
	if pub, err = r.Load(ctx, 3); err != nil || keyspace.LayoutOf(pub.Meta) != keyspace.CurrentLayout {
		t.Fatalf("Load(3) = %v, layout %d", err, keyspace.LayoutOf(pub.Meta))
	}
	_, want3 := release(users, 3).List(3)
	if st, err := r.UserState(ctx, 3, u); err != nil || !slices.Equal(st.Recs, want3) || st.Touched != seq {
		t.Fatalf("UserState(3) = %+v, %v; want %v touched %d", st, err, want3, seq)
	}
	if rdb.Exists(ctx, legacy.Meta(3), legacy.Recs(3, u)).Val() != 0 {
		t.Error("version 3 was written under legacy names")
	}

	// Roll back to the legacy version and forward again.
	if ptr, err := p.Rollback(ctx); err != nil || ptr.Current != 2 {
		t.Fatalf("Rollback = %+v, %v", ptr, err)
	}
	if _, err := r.Load(ctx, 2); err != nil {
		t.Fatalf("Load(2) after rollback: %v", err)
	}
	if st, _ := r.UserState(ctx, 2, u); st.Touched != seq || !slices.Equal(st.Recs, want2) {
		t.Fatalf("UserState(2) after rollback = %+v", st)
	}
	c, err := p.Cleanup(ctx)
	if err != nil || c.LegacyPointersDropped || !slices.Equal(c.Retired, []keyspace.Version{1}) {
		t.Fatalf("Cleanup with a legacy version current = %+v, %v; want legacy 1 retired, the legacy pointers kept", c, err)
	}
	if _, err := p.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	// Publishing 4 retires the legacy versions; Cleanup drops the legacy
	// pointers, as neither current (4) nor previous (3) is legacy.
	if _, err := p.Publish(ctx, 4, loadable(t, users, 4)); err != nil {
		t.Fatal(err)
	}
	c, err = p.Cleanup(ctx)
	if err != nil || !c.LegacyPointersDropped {
		t.Fatalf("Cleanup = %+v, %v; want the legacy pointers dropped", c, err)
	}
	if !slices.Equal(c.Retired, []keyspace.Version{2}) {
		t.Errorf("retired %v, want the legacy version 2", c.Retired)
	}
	for _, k := range []string{legacy.Meta(2), legacy.Recs(2, u), legacy.Recs(1, u)} {
		if ttl := rdb.TTL(ctx, k).Val(); ttl <= 0 {
			t.Errorf("retired legacy key %s has TTL %v, want the grace", k, ttl)
		}
	}
	for _, k := range []string{legacy.Current(), legacy.Previous(), legacy.Versions()} {
		if err := rdb.Get(ctx, k).Err(); !errors.Is(err, redis.Nil) {
			t.Errorf("legacy %s still exists", k)
		}
	}
	if ptr, err := p.Pointers(ctx); err != nil || ptr != (keyspace.Pointers{Current: 4, Previous: 3}) {
		t.Errorf("pointers = %+v, %v", ptr, err)
	}
}
