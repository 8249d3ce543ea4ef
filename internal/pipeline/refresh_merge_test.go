package pipeline

import (
	"slices"
	"testing"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/als"
	"github.com/setlist/setlist/internal/artifact"
	"github.com/setlist/setlist/internal/model"
)

// TestRefreshMergeKeepsWithheld: a refresh enters a new song into the
// lists it beats and keeps each list at K available songs; the songs the
// version withholds (Meta.Unavailable) stay where they rank, never count
// towards K, and drop out only when they fall below the K-th available
// song. One user, factor x = [1]: a song's score is its vector's value.
func TestRefreshMergeKeepsWithheld(t *testing.T) {
	const held = setlist.SongID(90)
	a := &artifact.Artifact{Side: &als.ItemSide{Factors: 1}, UserFactors: []float32{1}}
	a.Meta.K, a.Meta.Unavailable = 3, []setlist.SongID{held}
	rec := func(s setlist.SongID, score float32) model.Rec { return model.Rec{Song: s, Score: score} }
	for _, tc := range []struct {
		name   string
		old    []model.Rec
		added  float32 // the new song 50's score
		want   []model.Rec
		change bool
	}{
		{"below the last: nothing changes",
			[]model.Rec{rec(1, 9), rec(held, 8), rec(2, 7), rec(3, 6)}, 5,
			[]model.Rec{rec(1, 9), rec(held, 8), rec(2, 7), rec(3, 6)}, false},
		{"enters under the withheld song, the last available leaves",
			[]model.Rec{rec(1, 9), rec(held, 8), rec(2, 7), rec(3, 6)}, 6.5,
			[]model.Rec{rec(1, 9), rec(held, 8), rec(2, 7), rec(50, 6.5)}, true},
		{"enters above the withheld song, which stays",
			[]model.Rec{rec(1, 9), rec(held, 8), rec(2, 7), rec(3, 6)}, 8.5,
			[]model.Rec{rec(1, 9), rec(50, 8.5), rec(held, 8), rec(2, 7)}, true},
		{"the withheld song falls below the new K-th and leaves",
			[]model.Rec{rec(1, 9), rec(2, 7), rec(held, 6.8), rec(3, 6)}, 8,
			[]model.Rec{rec(1, 9), rec(50, 8), rec(2, 7)}, true},
		{"short list: the song enters",
			[]model.Rec{rec(held, 8), rec(1, 7)}, 1,
			[]model.Rec{rec(held, 8), rec(1, 7), rec(50, 1)}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &refreshPlan{changed: []model.AddedSong{{Song: 50, Vector: []float32{tc.added}}}, reacted: map[setlist.SongID][]int32{}}
			got, changed := p.merge(a)(0, slices.Clone(tc.old))
			if !slices.Equal(got, tc.want) || changed != tc.change {
				t.Fatalf("merge(%v) with song 50 at %v = %v (changed %v), want %v (%v)", tc.old, tc.added, got, changed, tc.want, tc.change)
			}
		})
	}
}
