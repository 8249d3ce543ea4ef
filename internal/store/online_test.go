package store

import (
	"math"
	"testing"

	"github.com/setlist/setlist"
)

// TestMergeAndSumOnline: rates per user shown and MRR on hand-computed
// cases, opinions without exposure (rates 0, never a division by a guess),
// and sums over days that weigh each day's MRR by its likes.
func TestMergeAndSumOnline(t *testing.T) {
	b, f := setlist.SourceBatch, setlist.SourceFoldIn
	none := setlist.ArmNone
	daily := MergeOnline(
		[]Exposure{
			{Day: "2026-11-28", Version: 3, Source: b, Arm: none, Answers: 10, Users: 4},
			{Day: "2026-11-29", Version: 3, Source: b, Arm: none, Answers: 6, Users: 2},
			{Day: "2026-11-29", Version: 3, Source: f, Arm: none, Answers: 1, Users: 1},
		},
		[]ShownOpinions{
			{Day: "2026-11-28", Version: 3, Source: b, Arm: none, Likes: 2, Dislikes: 1, RR: 1 + 0.25},
			{Day: "2026-11-29", Version: 3, Source: b, Arm: none, Likes: 1, RR: 1.0 / 3},
			{Day: "2026-11-29", Version: 2, Source: b, Arm: none, Likes: 1, Dislikes: 2, RR: 0.5},
		})
	tests := []struct {
		name string
		got  []OnlineMetric
		want []OnlineMetric
	}{
		{"daily", daily, []OnlineMetric{
			{Day: "2026-11-29", Version: 3, Source: b, Arm: none, Answers: 6, Users: 2, Likes: 1, PositiveRate: 0.5, MRR: 1.0 / 3},
			{Day: "2026-11-29", Version: 3, Source: f, Arm: none, Answers: 1, Users: 1},
			{Day: "2026-11-28", Version: 3, Source: b, Arm: none, Answers: 10, Users: 4, Likes: 2, Dislikes: 1,
				PositiveRate: 0.5, NegativeRate: 0.25, MRR: 0.625},
			{Day: "2026-11-29", Version: 2, Source: b, Arm: none, Likes: 1, Dislikes: 2, MRR: 0.5},
		}},
		{"total", TotalOnline(daily), []OnlineMetric{
			{Version: 3, Source: b, Arm: none, Answers: 16, Users: 6, Likes: 3, Dislikes: 1,
				PositiveRate: 0.5, NegativeRate: 1.0 / 6, MRR: (1 + 0.25 + 1.0/3) / 3},
			{Version: 3, Source: f, Arm: none, Answers: 1, Users: 1},
			{Version: 2, Source: b, Arm: none, Likes: 1, Dislikes: 2, MRR: 0.5},
		}},
		{"version", VersionOnline(daily), []OnlineMetric{
			{Version: 3, Answers: 17, Users: 7, Likes: 3, Dislikes: 1, PositiveRate: 3.0 / 7, NegativeRate: 1.0 / 7, MRR: (1 + 0.25 + 1.0/3) / 3},
			{Version: 2, Likes: 1, Dislikes: 2, MRR: 0.5},
		}},
	}
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-12 }
	for _, tc := range tests {
		if len(tc.got) != len(tc.want) {
			t.Fatalf("%s: %d rows %+v, want %d", tc.name, len(tc.got), tc.got, len(tc.want))
		}
		for i, w := range tc.want {
			g := tc.got[i]
			if g.Day != w.Day || g.Version != w.Version || g.Source != w.Source || g.Arm != w.Arm || g.Answers != w.Answers ||
				g.Users != w.Users || g.Likes != w.Likes || g.Dislikes != w.Dislikes ||
				!near(g.PositiveRate, w.PositiveRate) || !near(g.NegativeRate, w.NegativeRate) || !near(g.MRR, w.MRR) {
				t.Errorf("%s row %d:\n got %+v\nwant %+v", tc.name, i, g, w)
			}
		}
	}
}
