package server_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/store"
)

// BenchmarkReactAttribution measures what attribution adds to a reaction,
// against the real PostgreSQL and Redis, interleaving in one run a like or
// dislike recorded as the handler records it (the last list answered,
// exposure.Recorder.Shown, then ReactAttributed, then Reacted) with the
// same write unattributed (React, then Reacted). It reports the median and
// p99 of both and of Shown alone (the Redis read attribution adds), in µs.
func BenchmarkReactAttribution(b *testing.B) {
	w := newWorld(b)
	in := w.start(b, fastConfig(), nil)
	in.waitModel(b, 1)
	svc := in.srv.Recs()
	ctx := context.Background()
	wantStatus(b, in.get(b, "/v1/users/batchy/recommendations?n=5"), 200) // a list answered, so attribution finds one
	in.srv.Exposure().Flush(ctx)
	songs := w.v1.Lists["batchy"]
	var plain, attributed, shown []time.Duration
	i := 0
	for b.Loop() {
		// Pairs of the same song and kind, so both variants write the same mix
		// of new opinions and repeats.
		kind := setlist.Like
		if (i/2)%2 == 1 {
			kind = setlist.Dislike
		}
		ref := setlist.SongRef{ID: songs[(i/4)%len(songs)].Song}
		start := time.Now()
		if i%2 == 0 {
			l, _, err := in.srv.Exposure().Shown(ctx, "batchy")
			if err != nil {
				b.Fatal(err)
			}
			sh := store.Shown{Version: int64(l.Version), Arm: l.Arm, Source: l.Source, Songs: l.Songs}
			shown = append(shown, time.Since(start))
			r, _, err := w.db.ReactAttributed(ctx, "batchy", ref, kind, &sh)
			if err != nil {
				b.Fatal(err)
			}
			if err := svc.Reacted(ctx, "batchy", r.Seq); err != nil {
				b.Fatal(err)
			}
			attributed = append(attributed, time.Since(start))
		} else {
			r, err := w.db.React(ctx, "batchy", ref, kind)
			if err != nil {
				b.Fatal(err)
			}
			if err := svc.Reacted(ctx, "batchy", r.Seq); err != nil {
				b.Fatal(err)
			}
			plain = append(plain, time.Since(start))
		}
		i++
	}
	for _, m := range []struct {
		name string
		d    []time.Duration
	}{{"plain", plain}, {"attributed", attributed}, {"shown", shown}} {
		if len(m.d) == 0 {
			continue
		}
		slices.Sort(m.d)
		b.ReportMetric(float64(m.d[len(m.d)/2].Nanoseconds())/1e3, m.name+"-p50-µs")
		b.ReportMetric(float64(m.d[len(m.d)*99/100].Nanoseconds())/1e3, m.name+"-p99-µs")
	}
}
