package server_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/setlist/setlist/internal/store"
	"github.com/setlist/setlist/serve/internal/server"
)

func exposureConfig() (cfg server.Config) {
	cfg = fastConfig()
	cfg.Exposure.Interval = 50 * time.Millisecond
	cfg.Exposure.Persist = 100 * time.Millisecond
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

	// /v1/model puts the online metrics next to the offline ones: batchy
	// likes the first song of its batch list and dislikes the 2nd popular
	// song disliker was shown.
	c.react(t, "batchy", w.v1.Lists["batchy"][0].Song, "like")
	pop := c.recs(t, "disliker", 5)
	c.react(t, "disliker", pop.Items[1].SongID, "dislike")
	var m struct {
		Online struct {
			Since    string               `json:"since"`
			Versions []store.OnlineMetric `json:"versions"`
			Sources  []store.OnlineMetric `json:"sources"`
			Daily    []store.OnlineMetric `json:"daily"`
		} `json:"online"`
	}
	c.get(t, "/v1/model").json(t, &m)
	// "Since" is the first day with figures (today's data: today), not
	// the start of the 7-day window (issue 26 item 12).
	if len(m.Online.Daily) == 0 || m.Online.Since != m.Online.Daily[0].Day || m.Online.Since == store.Day(time.Now().UTC().AddDate(0, 0, -6)) {
		t.Errorf("/v1/model online since %q, daily %+v: want the first day with figures", m.Online.Since, m.Online.Daily)
	}
	got = nil
	for _, o := range m.Online.Sources {
		got = append(got, fmt.Sprintf("v%d %s %s users=%d likes=%d dislikes=%d pos=%.2f neg=%.2f mrr=%.2f",
			o.Version, o.Source, o.Arm, o.Users, o.Likes, o.Dislikes, o.PositiveRate, o.NegativeRate, o.MRR))
	}
	want = []string{
		"v1 batch none users=2 likes=1 dislikes=0 pos=0.50 neg=0.00 mrr=1.00",
		"v1 fold-in none users=1 likes=0 dislikes=0 pos=0.00 neg=0.00 mrr=0.00",
		"v1 popular none users=2 likes=0 dislikes=1 pos=0.00 neg=0.50 mrr=0.00",
	}
	if !slices.Equal(got, want) {
		t.Errorf("/v1/model online per source:\n got %q\nwant %q", got, want)
	}
	if len(m.Online.Versions) != 1 || m.Online.Versions[0].Likes != 1 || m.Online.Versions[0].Dislikes != 1 {
		t.Errorf("/v1/model online per version: %+v", m.Online.Versions)
	}
}
