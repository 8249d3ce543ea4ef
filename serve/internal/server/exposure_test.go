package server_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/setlist/setlist/batch/store"
	"github.com/setlist/setlist/serve/internal/server"
)

func exposureConfig() (cfg server.Config) {
	cfg = fastConfig()
	cfg.Recs.ExposureInterval = 50 * time.Millisecond
	cfg.Recs.ExposurePersist = 100 * time.Millisecond
	return cfg
}

// exposureRows reads the exposure table as "source answers users" lines.
func (w *world) exposureRows(t *testing.T) []string {
	t.Helper()
	rows, err := w.db.Exposure(context.Background(), time.Now().Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rows {
		if r.Day != store.Day(time.Now()) && r.Day != store.Day(time.Now().Add(-time.Hour)) {
			t.Errorf("exposure row of day %s", r.Day)
		}
		out = append(out, fmt.Sprintf("v%d %s %s answers=%d users=%d", r.Version, r.Source, r.Arm, r.Answers, r.Users))
	}
	slices.Sort(out)
	return out
}

// TestExposureAcrossReplicas: two serve instances answer; the exposure
// table holds the sum of their answers and the distinct users of both per
// version and source (the HyperLogLog they share), and a third instance
// started later adds to the same rows instead of starting over.
func TestExposureAcrossReplicas(t *testing.T) {
	w := newWorld(t)
	a := w.start(t, exposureConfig(), nil)
	b := w.start(t, exposureConfig(), nil)
	a.waitModel(t, 1)
	b.waitModel(t, 1)
	for range 3 {
		a.recs(t, "batchy", 5)
	}
	a.recs(t, "newbie", 5)
	a.recs(t, "newbie", 3)
	b.recs(t, "batchy", 5)
	b.recs(t, "batchy", 2)
	b.recs(t, weird, 5)
	b.recs(t, "folder", 5)
	b.recs(t, "folder", 4)
	want := []string{
		"v1 batch none answers=6 users=2",
		"v1 fold-in none answers=2 users=1",
		"v1 popular none answers=2 users=1",
	}
	var got []string
	waitFor(t, "exposure persisted", func() bool {
		got = w.exposureRows(t)
		return slices.Equal(got, want)
	})
	if n := a.metric(t, `setlist_serve_exposure_answers_total{arm="none",source="batch",version="current"}`); n != 3 {
		t.Errorf("replica a counted %v batch answers, want 3", n)
	}
	waitFor(t, "the users gauge", func() bool {
		return b.metric(t, `setlist_serve_exposure_users{arm="none",source="batch",version="current"}`) == 2
	})

	c := w.start(t, exposureConfig(), nil)
	c.waitModel(t, 1)
	c.recs(t, "batchy", 5)
	c.recs(t, "disliker", 5)
	want = []string{
		"v1 batch none answers=7 users=2",
		"v1 fold-in none answers=2 users=1",
		"v1 popular none answers=3 users=2",
	}
	waitFor(t, "a new replica's exposure added", func() bool {
		got = w.exposureRows(t)
		return slices.Equal(got, want)
	})
}
