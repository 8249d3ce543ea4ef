package recs

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/model"
	"github.com/setlist/setlist/internal/postgres/pgtest"
	"github.com/setlist/setlist/serve/internal/fixture"
	"github.com/setlist/setlist/serve/internal/metrics"
)

// BenchmarkFoldIn is serve's fold-in path at the production shape (10k
// songs, 64 factors) for a user with 50 or 200 reactions: the PostgreSQL read
// on a real database, the solve, scoring + top-K and one explanation. The
// per-phase means are reported as extra columns.
func BenchmarkFoldIn(b *testing.B) {
	ctx := context.Background()
	db := pgtest.DB(b)
	songs, err := fixture.Songs(ctx, db, 0, 10000)
	if err != nil {
		b.Fatal(err)
	}
	v := fixture.Version{Version: 1, Songs: songs, Factors: 64, Seed: 1}
	side := v.ItemSide()
	p := &model.Published{Meta: model.Meta{Version: 1, Scheme: model.DefaultScheme(), Params: side.Params},
		Catalog: model.NewCatalog(songs), Side: side}
	snap := &Snapshot{Version: 1, Published: p}
	for _, n := range []int{50, 200} {
		user := setlist.UserID(fmt.Sprint("user", n))
		if err := fixture.Users(ctx, db, []setlist.UserID{user}); err != nil {
			b.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(uint64(n), 1))
		var rs []setlist.Reaction
		for _, i := range rng.Perm(len(songs))[:n] {
			kind := setlist.Play
			if i%10 == 0 {
				kind = setlist.Like
			}
			rs = append(rs, setlist.Reaction{User: user, Song: songs[i], Kind: kind, Weight: float64(1 + i%4)})
		}
		if err := fixture.Reactions(ctx, db, rs); err != nil {
			b.Fatal(err)
		}
		for _, explain := range []int{0, 1} {
			b.Run(fmt.Sprintf("reactions=%d/explain=%d", n, explain), func(b *testing.B) {
				reg := prometheus.NewRegistry()
				s := New(Config{Explain: explain}, nil, db, metrics.New(reg, func() int { return 0 }, func() int64 { return 0 }, func() time.Time { return time.Time{} }), slog.New(slog.DiscardHandler))
				var took []time.Duration
				for b.Loop() {
					start := time.Now()
					rec, err := s.foldIn(ctx, "bench", snap, user, 5, newSieve(snap, nil, nil))
					took = append(took, time.Since(start))
					if err != nil || len(rec.Items) == 0 || rec.Source != setlist.SourceFoldIn {
						b.Fatalf("fold-in: %v %+v", err, rec)
					}
				}
				slices.Sort(took)
				b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-µs")
				mfs, _ := reg.Gather()
				for _, mf := range mfs {
					if mf.GetName() != "setlist_serve_foldin_duration_seconds" {
						continue
					}
					for _, m := range mf.GetMetric() {
						h := m.GetHistogram()
						b.ReportMetric(h.GetSampleSum()/float64(h.GetSampleCount())*1e6, m.GetLabel()[0].GetValue()+"-µs")
					}
				}
			})
		}
	}
}
