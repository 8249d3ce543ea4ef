package als

import (
	"context"
	"os"
	"slices"
	"testing"

	"github.com/setlist/setlist/internal/feedback"
	"github.com/setlist/setlist/internal/realdata"
)

// BenchmarkNewSongQuality measures how well a song folded in by batch
// refresh (FoldItem from its first m listeners, the model trained without
// it) reaches its later listeners, against a full retrain that saw the same
// m listeners. New songs: the 5 % of songs with the fewest listeners among
// those with more than m (file order stands for time: a song's first m
// distinct listeners are the ones a refresh would see). For each later
// listener (held out of both trainings' new-song entries) it measures
// where the new song ranks over the whole catalogue, excluding what
// they played in training, and logs hit rate@50 and @500 and the mean
// percentile rank for both, at m = 5 and m = 20.
func BenchmarkNewSongQuality(b *testing.B) {
	if _, err := os.Stat(realdata.Path()); err != nil {
		b.Skipf("benchmark data not found at %s (set SETLIST_DATA to run): %v", realdata.Path(), err)
	}
	tr, err := realdata.Read(realdata.Path())
	if err != nil {
		b.Fatal(err)
	}
	listeners := make([][]int32, tr.Songs) // distinct users in file order
	seen := map[[2]int32]bool{}
	for e := range tr.Rows {
		k := [2]int32{tr.Rows[e], tr.Cols[e]}
		if !seen[k] {
			seen[k] = true
			listeners[tr.Cols[e]] = append(listeners[tr.Cols[e]], tr.Rows[e])
		}
	}
	for b.Loop() {
		for _, m := range []int{5, 20} {
			newSongQuality(b, tr, listeners, m)
		}
	}
}

func newSongQuality(b *testing.B, tr *realdata.Triples, listeners [][]int32, m int) {
	var cand []int32
	for s, ls := range listeners {
		if len(ls) > m {
			cand = append(cand, int32(s))
		}
	}
	slices.SortStableFunc(cand, func(a, c int32) int { return len(listeners[a]) - len(listeners[c]) })
	newSongs := cand[:tr.Songs/20]
	isNew := map[int32]bool{}
	early := map[[2]int32]bool{}
	for _, s := range newSongs {
		isNew[s] = true
		for _, u := range listeners[s][:m] {
			early[[2]int32{u, s}] = true
		}
	}
	var base, retrain []feedback.Entry
	for e := range tr.Rows {
		en := feedback.Entry{Row: tr.Rows[e], Col: tr.Cols[e], Value: tr.Vals[e]}
		if !isNew[en.Col] {
			base = append(base, en)
			retrain = append(retrain, en)
		} else if early[[2]int32{en.Row, en.Col}] {
			retrain = append(retrain, en)
		}
	}
	baseM := feedback.NewCSR(tr.Users, tr.Songs, base)
	retrainM := feedback.NewCSR(tr.Users, tr.Songs, retrain)
	p := DefaultParams()
	p.Factors, p.Iterations = 64, 15
	{
		ctx := context.Background()
		mA, err := Train(ctx, baseM, p, nil)
		if err != nil {
			b.Fatal(err)
		}
		mB, err := Train(ctx, retrainM, p, nil)
		if err != nil {
			b.Fatal(err)
		}
		// The refresh: fold each new song in from its early listeners.
		us, err := NewUserSide(p, mA.UserFactors, mA.Users, mA.ItemWeights)
		if err != nil {
			b.Fatal(err)
		}
		k := p.Factors
		refreshed := slices.Clone(mA.ItemFactors)
		for _, s := range newSongs {
			var ls []Listener
			for _, u := range listeners[s][:m] {
				cols, vals := retrainM.Row(int(u))
				if j, ok := slices.BinarySearch(cols, s); ok {
					ls = append(ls, Listener{User: u, Value: vals[j]})
				}
			}
			y, err := us.FoldItem(ls)
			if err != nil {
				b.Fatal(err)
			}
			copy(refreshed[int(s)*k:], y)
		}
		// Hit rate at 50 and 500 of 10k songs, and the mean percentile rank
		// (0 best, 0.5 a random guess): the ranks of a new song with a
		// few dozen listeners are far down for both, so the percentile
		// tells them apart where the hit rates do not.
		hits := func(userF, itemF []float32) (h10, h50, pct float64, pairs int) {
			for _, s := range newSongs {
				for _, u := range listeners[s][m:] {
					x := userF[int(u)*k : int(u+1)*k]
					target := dot(x, itemF[int(s)*k:int(s+1)*k])
					exclude, _ := retrainM.Row(int(u))
					rank := 0
					for i := 0; i < tr.Songs; i++ {
						if int32(i) == s {
							continue
						}
						if _, ex := slices.BinarySearch(exclude, int32(i)); ex {
							continue
						}
						if dot(x, itemF[i*k:(i+1)*k]) > target {
							rank++
						}
					}
					pairs++
					if rank < 50 {
						h10++
					}
					if rank < 500 {
						h50++
					}
					pct += float64(rank) / float64(tr.Songs)
				}
			}
			return h10 / float64(pairs), h50 / float64(pairs), pct / float64(pairs), pairs
		}
		r10, r50, rp, pairs := hits(mA.UserFactors, refreshed)
		t10, t50, tp, _ := hits(mB.UserFactors, mB.ItemFactors)
		b.Logf("%d new songs (listeners %d..%d), m = %d, %d held-out listener pairs: refresh hit@50 %.4f hit@500 %.4f percentile %.4f; retrain hit@50 %.4f hit@500 %.4f percentile %.4f",
			len(newSongs), len(listeners[newSongs[0]]), len(listeners[newSongs[len(newSongs)-1]]), m, pairs, r10, r50, rp, t10, t50, tp)
	}
}
