package recs

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/experiment"
	"github.com/setlist/setlist/serve/internal/metrics"
)

// BenchmarkRecommendExperiment is the deployed batch-hit path (an answer
// from the near cache: no store call) with no experiment and with one
// routing half the users to a challenger snapshot, in the same process and
// run: what an experiment adds to a request is the salted hash of the user
// id (recording the answer is package exposure's: BenchmarkAnswered). Run with -count to interleave.
func BenchmarkRecommendExperiment(b *testing.B) {
	const users = 10000
	ids := make([]setlist.UserID, users)
	for i := range ids {
		ids[i] = setlist.UserID(fmt.Sprintf("user-%05d", i))
	}
	for _, share := range []float64{0, 0.5} {
		b.Run(fmt.Sprintf("experiment=%v", share), func(b *testing.B) {
			reg := prometheus.NewRegistry()
			m := metrics.New(reg, func() int { return 0 }, func() int64 { return 0 }, func() time.Time { return time.Time{} })
			s := New(Config{NearCacheBytes: 256 << 20}, nil, nil, m, slog.New(slog.DiscardHandler))
			s.near.trust(true) // as once the events channel is subscribed
			control, challenger := &Snapshot{Version: 1}, &Snapshot{Version: 2}
			s.holder.snap.Store(control)
			if share > 0 {
				s.holder.exp.Store(&expState{routing: experiment.Routing{ID: 1, Challenger: 2, Share: share, Salt: "0123456789abcdef"}, challenger: challenger})
			}
			for _, u := range ids {
				snap, arm := s.assignment(u)
				s.near.put(s.near.generation(u), snap.Version, u, 5, setlist.SourceBatch, snap.appendAnswer(nil, u, arm, setlist.SourceBatch, nil), nil)
			}
			var next atomic.Uint64
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					u := ids[next.Add(1)%users]
					if _, err := s.Recommend(ctx, "bench", u, 5); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.StopTimer()
		})
	}
}
