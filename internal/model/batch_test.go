package model_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/feedback"
	"github.com/setlist/setlist/internal/model"
	"github.com/setlist/setlist/internal/realdata"
)

// TestFoldInAllMatchesFoldIn: the precompute's batched path (every user
// folded in, all ranked by training's top-N kernel) gives each user the
// songs serve's one-user FoldIn gives, in the same order up to scores equal
// to the last bits, for ALS and EASE versions; a user with no usable
// reaction gets no list, as FoldIn's ErrNoSignal; and a user's list does
// not depend on who else is in the batch.
func TestFoldInAllMatchesFoldIn(t *testing.T) {
	_, ease, _ := easeVersion(t, 120, 1000)
	for _, tc := range []struct {
		name  string
		p     *model.Published
		items int
	}{
		{"als", synthetic(t, 300, 8, feedback.WeightBM25), 300},
		{"ease", ease, 120},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var users [][]setlist.Reaction
			for seed := range uint64(40) {
				users = append(users, reactions(5+int(seed%20), seed, tc.items))
			}
			// Only a dislike, and nothing the catalog knows: no signal.
			users = append(users, []setlist.Reaction{{User: "u", Song: 1000, Kind: setlist.Dislike, Weight: 1}},
				[]setlist.Reaction{{User: "u", Song: 99, Kind: setlist.Play, Weight: 3}})
			lists, err := tc.p.FoldInAll(context.Background(), users, 10, 2)
			if err != nil {
				t.Fatal(err)
			}
			if len(lists) != len(users) {
				t.Fatalf("%d lists for %d users", len(lists), len(users))
			}
			for i, rs := range users {
				want, err := tc.p.FoldIn(rs, 10)
				if errors.Is(err, model.ErrNoSignal) {
					if lists[i] != nil {
						t.Fatalf("user %d has no signal but got %v", i, lists[i])
					}
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				sameRecs(t, i, lists[i], want)
				alone, err := tc.p.FoldInAll(context.Background(), users[i:i+1], 10, 1)
				if err != nil {
					t.Fatal(err)
				}
				for j := range alone[0] {
					if alone[0][j] != lists[i][j] {
						t.Fatalf("user %d ranked alone: %v, in the batch: %v", i, alone[0], lists[i])
					}
				}
			}
		})
	}
}

// sameRecs fails unless got lists want's songs in order, allowing two songs
// whose scores agree to 1e-5 to swap (the kernels sum in different orders).
func sameRecs(t *testing.T, user int, got, want []model.Rec) {
	t.Helper()
	if len(got) != len(want) || len(got) == 0 {
		t.Fatalf("user %d: %d recs, FoldIn %d", user, len(got), len(want))
	}
	for j := range want {
		if math.Abs(float64(got[j].Score-want[j].Score)) > 1e-5*max(1, math.Abs(float64(want[j].Score))) {
			t.Fatalf("user %d rec %d: batched %+v, FoldIn %+v", user, j, got[j], want[j])
		}
		if got[j].Song != want[j].Song && math.Abs(float64(got[j].Score-want[j].Score)) > 1e-5 {
			t.Fatalf("user %d rec %d: batched %+v, FoldIn %+v", user, j, got[j], want[j])
		}
	}
}

// BenchmarkFoldInAll is the precompute's per-user CPU without the stores:
// 2,048 users of ~50 reactions over 20,000 songs, with 64 factors and with
// 256 (what DefaultParamsFor gives TestPrecomputeFigures' data), K = 5
// (GOEXPERIMENT=simd, as the image is built).
//
//	GOEXPERIMENT=simd go test -run '^$' -bench FoldInAll -cpu 1 ./internal/model/
func BenchmarkFoldInAll(b *testing.B) {
	users := make([][]setlist.Reaction, 2048)
	for i := range users {
		users[i] = reactions(50, uint64(i), 20000)
	}
	for _, k := range []int{64, 256} {
		b.Run(fmt.Sprintf("factors=%d", k), func(b *testing.B) {
			p := synthetic(b, 20000, k, feedback.WeightBM25)
			b.ResetTimer()
			c0 := realdata.CPUSeconds()
			for range b.N {
				if _, err := p.FoldInAll(context.Background(), users, 5, 1); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*len(users)), "µs/user")
			// CPU time is the steadier figure on the shared machine.
			b.ReportMetric(1e6*(realdata.CPUSeconds()-c0)/float64(b.N*len(users)), "cpu-µs/user")
		})
	}
}
