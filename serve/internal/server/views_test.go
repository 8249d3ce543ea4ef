package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/setlist/setlist/internal/als"
	"github.com/setlist/setlist/internal/pipeline"
	"github.com/setlist/setlist/internal/registry"
	"github.com/setlist/setlist/internal/store"
	"github.com/setlist/setlist/serve/internal/fixture"
)

// TestRunsOverHTTP: GET /v1/runs lists the registry newest first and GET
// /v1/runs/{id} gives any run with the search behind its parameters (a
// tune's own, a train's it started from; null for a run without), every
// trial in evaluation order; an unknown id is 404, a malformed one 400
// (issue 26 item 17: the page's search view).
func TestRunsOverHTTP(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	plain, err := w.db.StartRun(ctx, "train")
	if err != nil {
		t.Fatal(err)
	}
	tune, err := w.db.StartRun(ctx, "tune")
	if err != nil {
		t.Fatal(err)
	}
	summary := &registry.TuningSummary{Run: tune, BestTrial: 1, IncumbentScore: 0.2, BestScore: 0.3, NoiseMargin: 0.01, StopReason: "trials", Trials: 2}
	p, _ := json.Marshal(als.DefaultParams())
	trials := []store.TuningTrial{
		{Number: 1, Params: p, Iterations: 10, UserFraction: 1, Metrics: json.RawMessage(`{"ndcg_at_5": 0.3}`), Seconds: 1},
		{Number: 0, Params: p, Iterations: 10, UserFraction: 1, Metrics: json.RawMessage(`{"ndcg_at_5": 0.2}`), Seconds: 1, Incumbent: true},
	}
	if err := w.db.UpdateRun(ctx, tune, store.RunUpdate{Status: store.RunTuned, Params: pipeline.RunParams{Tuning: summary}, Trials: trials}); err != nil {
		t.Fatal(err)
	}
	trained, err := w.db.StartRun(ctx, "train")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.db.UpdateRun(ctx, trained, store.RunUpdate{Status: store.RunPublished, Params: pipeline.RunParams{ALS: als.DefaultParams(), Source: "last-tuned", Tuning: summary}}); err != nil {
		t.Fatal(err)
	}
	in := w.start(t, fastConfig(), nil)
	in.waitModel(t, 1)

	var list struct {
		Runs []struct {
			ID     int64  `json:"id"`
			Status string `json:"status"`
		} `json:"runs"`
	}
	r := in.get(t, "/v1/runs?limit=2")
	wantStatus(t, r, http.StatusOK)
	r.json(t, &list)
	if len(list.Runs) != 2 || list.Runs[0].ID != trained || list.Runs[1].ID != tune || list.Runs[1].Status != "tuned" {
		t.Errorf("GET /v1/runs?limit=2 = %+v, want runs %d then %d (tuned)", list.Runs, trained, tune)
	}
	type detail struct {
		Run struct {
			ID int64 `json:"id"`
		} `json:"run"`
		Tuning *struct {
			Run    int64 `json:"run"`
			Trials []struct {
				Number    int      `json:"number"`
				BestSoFar *float64 `json:"best_so_far"`
			} `json:"trials"`
		} `json:"tuning"`
	}
	for _, id := range []int64{tune, trained} {
		var d detail
		r := in.get(t, fmt.Sprintf("/v1/runs/%d", id))
		wantStatus(t, r, http.StatusOK)
		r.json(t, &d)
		if d.Run.ID != id || d.Tuning == nil || d.Tuning.Run != tune || len(d.Tuning.Trials) != 2 || d.Tuning.Trials[0].Number != 0 ||
			d.Tuning.Trials[1].BestSoFar == nil || *d.Tuning.Trials[1].BestSoFar != 0.3 {
			t.Errorf("GET /v1/runs/%d = %s; want run %d with the search of run %d, trials 0 then 1, best so far 0.3", id, r.body, id, tune)
		}
	}
	var d detail
	r = in.get(t, fmt.Sprintf("/v1/runs/%d", plain))
	wantStatus(t, r, http.StatusOK)
	if r.json(t, &d); d.Run.ID != plain || d.Tuning != nil {
		t.Errorf("GET /v1/runs/%d (no search) = %s; want tuning null", plain, r.body)
	}
	wantStatus(t, in.get(t, "/v1/runs/999999"), http.StatusNotFound)
	wantStatus(t, in.get(t, "/v1/runs/0"), http.StatusBadRequest)
	// The page's address of a run's view is its hash route.
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := noRedirect.Get(in.base + fmt.Sprintf("/runs/%d", tune))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if loc := res.Header.Get("Location"); res.StatusCode != http.StatusFound || loc != fmt.Sprintf("/#/runs/%d", tune) {
		t.Errorf("GET /runs/%d: %d to %q, want 302 to the page's /#/runs/%d", tune, res.StatusCode, loc, tune)
	}
}

// TestExperimentsOverHTTP: an admin token starts an experiment of a
// version whose keys are in Redis against the current one, and this
// replica routes by it at once; a second start is 409; stop ends it (and
// a second stop is 404); a write token is refused (issue 26 item 18).
func TestExperimentsOverHTTP(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	// Versions are run ids (the registry refers to them).
	for range 2 {
		if _, err := w.db.StartRun(ctx, "experiment fixture"); err != nil {
			t.Fatal(err)
		}
	}
	// Version 2 published after 1: 2 is current, 1 (still in Redis) the
	// previous, which may be a challenger.
	if err := fixture.Publish(ctx, w.rdb, w.prefix, w.version(2, w.songs[:40])); err != nil {
		t.Fatal(err)
	}
	cfg := fastConfig()
	cfg.API.Tokens, cfg.API.RequireAuth = testTokens(t), true
	in := w.start(t, cfg, nil)
	in.waitModel(t, 2)
	body := `{"challenger_version": 1, "share": 0.3, "name": "one against two"}`
	if r := in.doHeaders(t, http.MethodPost, "/v1/admin/experiments", body, bearer(writeToken)); r.status != http.StatusForbidden {
		t.Errorf("a write token started an experiment: %d %s", r.status, r.body)
	}
	r := in.doHeaders(t, http.MethodPost, "/v1/admin/experiments", `{"challenger_version": 1, "share": 1.5}`, bearer(adminToken))
	wantStatus(t, r, http.StatusBadRequest)
	r = in.doHeaders(t, http.MethodPost, "/v1/admin/experiments", body, bearer(adminToken))
	wantStatus(t, r, http.StatusCreated)
	var e struct {
		ID         int64   `json:"id"`
		Name       string  `json:"name"`
		Control    int64   `json:"control_version"`
		Challenger int64   `json:"challenger_version"`
		Share      float64 `json:"share"`
		Status     string  `json:"status"`
	}
	r.json(t, &e)
	if e.Name != "one against two" || e.Control != 2 || e.Challenger != 1 || e.Share != 0.3 || e.Status != "running" {
		t.Errorf("started %+v", e)
	}
	if got, ok := in.srv.Recs().Experiment(); !ok || got.ID != e.ID {
		t.Errorf("right after the start this replica routes by %+v (%v), want experiment %d", got, ok, e.ID)
	}
	wantStatus(t, in.doHeaders(t, http.MethodPost, "/v1/admin/experiments", body, bearer(adminToken)), http.StatusConflict)

	r = in.doHeaders(t, http.MethodPost, "/v1/admin/experiments/stop", "", bearer(adminToken))
	wantStatus(t, r, http.StatusOK)
	r.json(t, &e)
	if e.Status != "stopped" {
		t.Errorf("stop answered %+v, want status stopped", e)
	}
	if _, ok := in.srv.Recs().Experiment(); ok {
		t.Error("this replica still routes by the stopped experiment")
	}
	wantStatus(t, in.doHeaders(t, http.MethodPost, "/v1/admin/experiments/stop", "", bearer(adminToken)), http.StatusNotFound)
}

// TestSongsPaged: without a query GET /v1/songs pages the whole catalog
// alphabetically by next_cursor, every song once; a cursor with a query, or
// one the server did not issue, is a 400 (issue 26 item 18: Browse).
func TestSongsPaged(t *testing.T) {
	w := newWorld(t)
	in := w.start(t, fastConfig(), nil)
	in.waitModel(t, 1)
	seen := map[int64]bool{}
	var first string
	pages := 0
	for cursor := ""; ; pages++ {
		var page struct {
			Songs []struct {
				ID     int64  `json:"song_id"`
				Artist string `json:"artist"`
				Track  string `json:"track"`
			} `json:"songs"`
			Next string `json:"next_cursor"`
		}
		path := "/v1/songs?limit=25"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		r := in.get(t, path)
		wantStatus(t, r, http.StatusOK)
		r.json(t, &page)
		for _, s := range page.Songs {
			if seen[s.ID] {
				t.Fatalf("page %d: song %d (%s – %s) again", pages, s.ID, s.Artist, s.Track)
			}
			seen[s.ID] = true
		}
		if pages == 0 {
			first = page.Next
		}
		if page.Next == "" {
			break
		}
		cursor = page.Next
	}
	if len(seen) != len(w.songs) || pages != 2 {
		t.Errorf("paging listed %d songs in %d pages, want all %d in 3 pages of 25", len(seen), pages+1, len(w.songs))
	}
	wantStatus(t, in.get(t, "/v1/songs?limit=25&query=a&cursor="+url.QueryEscape(first)), http.StatusBadRequest)
	wantStatus(t, in.get(t, "/v1/songs?limit=25&cursor=not-ours"), http.StatusBadRequest)
}
