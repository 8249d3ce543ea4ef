package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/setlist/setlist/internal/als"
	"github.com/setlist/setlist/internal/pipeline"
	"github.com/setlist/setlist/internal/registry"
	"github.com/setlist/setlist/internal/store"
	"github.com/setlist/setlist/serve/internal/fixture"
)

// TestModelNamesItsSearch: /v1/model names the search behind the served
// parameters (run 1, a tune-only run, whose pick the served run 2 took):
// the winning trial, the budget used and why it stopped, every trial with
// the best so far; and every key of the document is snake_case.
func TestModelNamesItsSearch(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	tuneRun, err := w.db.StartRun(ctx, "tune")
	if err != nil {
		t.Fatal(err)
	}
	summary := &registry.TuningSummary{Run: tuneRun, BestTrial: 2, IncumbentScore: 0.2, BestScore: 0.25, NoiseMargin: 0.01,
		BudgetSeconds: 600, UsedSeconds: 590, StopReason: "budget", Trials: 3}
	var trials []store.TuningTrial
	for i, ndcg := range []float64{0.2, 0.3, 0.25} {
		p, _ := json.Marshal(als.DefaultParams())
		trials = append(trials, store.TuningTrial{Number: i, Rung: map[bool]int{true: 1, false: 0}[i == 1], Params: p,
			Iterations: 10, UserFraction: 1, Metrics: json.RawMessage(fmt.Sprintf(`{"ndcg_at_5": %g}`, ndcg)), Seconds: 1, Incumbent: i == 0})
	}
	if err := w.db.UpdateRun(ctx, tuneRun, store.RunUpdate{Status: store.RunTuned, Params: pipeline.RunParams{Tuning: summary}, Trials: trials}); err != nil {
		t.Fatal(err)
	}
	served, err := w.db.StartRun(ctx, "train")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.db.UpdateRun(ctx, served, store.RunUpdate{Status: store.RunPublished, Params: pipeline.RunParams{ALS: als.DefaultParams(), Source: "last-tuned", Tuning: summary}}); err != nil {
		t.Fatal(err)
	}
	v := w.version(2, w.songs[:40])
	if served != 2 {
		t.Fatalf("served run id %d, want 2 (the fixture's version)", served)
	}
	in := w.start(t, fastConfig(), nil)
	if err := fixture.Publish(ctx, w.rdb, w.prefix, v); err != nil {
		t.Fatal(err)
	}
	in.waitModel(t, 2)

	r := in.get(t, "/v1/model")
	wantStatus(t, r, http.StatusOK)
	var m struct {
		Family string `json:"family"`
		Tuning *struct {
			Run           int64   `json:"run"`
			BestTrial     int     `json:"best_trial"`
			BudgetSeconds float64 `json:"budget_seconds"`
			UsedSeconds   float64 `json:"used_seconds"`
			StopReason    string  `json:"stop_reason"`
			Trials        []struct {
				Number       int      `json:"number"`
				NDCG         float64  `json:"ndcg_at_5"`
				FullFidelity bool     `json:"full_fidelity"`
				BestSoFar    *float64 `json:"best_so_far"`
			} `json:"trials"`
		} `json:"tuning"`
	}
	r.json(t, &m)
	if m.Family != "als" {
		t.Errorf("family %q, want als (a meta written without one is ALS)", m.Family)
	}
	tu := m.Tuning
	if tu == nil || tu.Run != tuneRun || tu.BestTrial != 2 || tu.BudgetSeconds != 600 || tu.UsedSeconds != 590 || tu.StopReason != "budget" || len(tu.Trials) != 3 {
		t.Fatalf("tuning in /v1/model: %s", r.body)
	}
	// Trial 1 ran at the top rung alone; 0 and 2 at rung 0 do not count.
	var best []any
	for _, tr := range tu.Trials {
		if tr.BestSoFar == nil {
			best = append(best, nil)
		} else {
			best = append(best, *tr.BestSoFar)
		}
	}
	if fmt.Sprint(best) != "[<nil> 0.3 0.3]" || tu.Trials[0].NDCG != 0.2 {
		t.Errorf("best so far %v, trials %+v; want the top rung's running best", best, tu.Trials)
	}

	var doc any
	r.json(t, &doc)
	snake := regexp.MustCompile(`^[a-z0-9_@]+$`)
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if !snake.MatchString(k) {
					t.Errorf("/v1/model key %s.%s is not snake_case", path, k)
				}
				walk(path+"."+k, x)
			}
		case []any:
			for i, x := range v {
				walk(fmt.Sprintf("%s[%d]", path, i), x)
			}
		}
	}
	walk("", doc)
}

// TestModelRevalidated: GET /v1/model carries a strong ETag and answers a
// conditional request with 304 while the served model and its report are
// unchanged, and with the new document once a version is published: the
// page polls it this way to switch versions without a click (issue 26
// item 8).
func TestModelRevalidated(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	cfg := fastConfig()
	cfg.API.ReportMaxAge = time.Hour // one report per snapshot: the 304 below cannot race a recomputation
	in := w.start(t, cfg, nil)
	in.waitModel(t, 1)
	first := in.get(t, "/v1/model")
	wantStatus(t, first, http.StatusOK)
	etag := first.header.Get("ETag")
	if !regexp.MustCompile(`^"[0-9a-f]{24}"$`).MatchString(etag) || first.header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("ETag %q, Cache-Control %q: want a strong hash and no-cache", etag, first.header.Get("Cache-Control"))
	}
	same := in.doHeaders(t, http.MethodGet, "/v1/model", "", map[string]string{"If-None-Match": etag})
	if same.status != http.StatusNotModified || len(same.body) != 0 {
		t.Fatalf("conditional GET of an unchanged model: %d %q, want 304 without a body", same.status, same.body)
	}
	if err := fixture.Publish(ctx, w.rdb, w.prefix, w.version(2, w.songs[:40])); err != nil {
		t.Fatal(err)
	}
	in.waitModel(t, 2)
	next := in.doHeaders(t, http.MethodGet, "/v1/model", "", map[string]string{"If-None-Match": etag})
	wantStatus(t, next, http.StatusOK)
	var m struct {
		Version int64 `json:"version"`
	}
	next.json(t, &m)
	if m.Version != 2 || next.header.Get("ETag") == etag {
		t.Errorf("after publishing version 2: version %d, ETag %q (was %q); want 2 and a new ETag", m.Version, next.header.Get("ETag"), etag)
	}
}
