package artifact

import (
	"bytes"
	"context"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/ease"
	"github.com/setlist/setlist/internal/feedback"
	"github.com/setlist/setlist/internal/model"
	"github.com/setlist/setlist/internal/npz"
)

// TestEASEArtifact: an EASE version's artifact round trips (family, lists,
// item model), its Lists are the stored ones, and export writes B's kept
// entries instead of implicit's factors.
func TestEASEArtifact(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var e []feedback.Entry
	for u := 0; u < 60; u++ {
		for k := 0; k < 8; k++ {
			e = append(e, feedback.Entry{Row: int32(u), Col: int32(rng.IntN(40)), Value: 1})
		}
	}
	x := feedback.NewCSR(60, 40, e)
	ctx := context.Background()
	m, _, err := ease.Train(ctx, x, ease.DefaultParams(), ease.Options{})
	if err != nil {
		t.Fatal(err)
	}
	lists, err := m.TopNAll(ctx, x, 5, x, 0)
	if err != nil {
		t.Fatal(err)
	}
	songs := make([]setlist.SongID, 40)
	users := make([]setlist.UserID, 60)
	for i := range songs {
		songs[i] = setlist.SongID(100 + i)
	}
	for i := range users {
		users[i] = setlist.UserID(rune('a' + i%26))
	}
	p := ease.DefaultParams()
	meta := model.Meta{Version: 9, Family: model.FamilyEASE, EASE: &p, K: 5, Items: 40, Scheme: model.DefaultScheme()}
	a, err := NewEASE(meta, SourceTrained, model.NewCatalog(songs), m.Prune(ease.DefaultPrune, 0), nil, users, lists)
	if err != nil {
		t.Fatal(err)
	}
	b, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if fam, _ := Family(b); fam != FamilyEASE {
		t.Fatalf("family %q", fam)
	}
	back, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := back.Lists(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for u := range lists {
		if !slices.Equal(got[u], lists[u]) {
			t.Fatalf("user %d: list %v, stored %v", u, got[u], lists[u])
		}
	}
	if back.Side != nil || back.Model.Family() != model.FamilyEASE || !bytes.Equal(back.Items(), a.Items()) {
		t.Fatal("decoded item model differs")
	}
	var out bytes.Buffer
	if err := back.ExportNPZ(&out); err != nil {
		t.Fatal(err)
	}
	f, err := npz.ReadBytes(out.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	vals, err := f.Array("b_values")
	if err != nil || vals.Len() != 40*39 || f.Has("user_factors") {
		t.Fatalf("export: b_values %v (%v), user_factors present %v", vals, err, f.Has("user_factors"))
	}
	// A list naming a song outside the catalog is refused.
	lists[3] = append(lists[3], feedback.Scored{Item: 40})
	if _, err := NewEASE(meta, SourceTrained, model.NewCatalog(songs), m.Prune(10, 0), nil, users, lists); err == nil {
		t.Fatal("a list outside the catalog was accepted")
	}
}
