package server_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/setlist/setlist/serve/internal/server"
)

// TestRedisLostModel: serve started against an empty Redis says so once at
// WARN, answers 503 naming the missing model and reports the pointer
// missing; once a model is published it serves it; when Redis then loses
// every key, serve keeps the model in memory and answers by fold-in, logs
// the loss once at ERROR (not every poll) and the pointer gauge, which the
// SetlistModelPointerMissing alert watches, drops to 0.
func TestRedisLostModel(t *testing.T) {
	e := newEnv(t)
	var logs syncBuffer
	in := e.startDeps(t, fastConfig(), func(d *server.Deps) { d.Log = slog.New(slog.NewJSONHandler(&logs, nil)) })
	waitFor(t, "the empty Redis to be reported", func() bool {
		return strings.Contains(logs.String(), `"level":"WARN","msg":"no model in Redis`)
	})
	r := in.get(t, "/v1/users/anyone/recommendations?n=5")
	wantStatus(t, r, http.StatusServiceUnavailable)
	if !strings.Contains(string(r.body), "no model is published") {
		t.Errorf("503 without a model says %s", r.body)
	}
	wantStatus(t, in.get(t, "/readyz"), http.StatusServiceUnavailable)
	if v := in.metric(t, "setlist_serve_model_pointer_present"); v != 0 {
		t.Errorf("pointer gauge %v with an empty Redis", v)
	}

	w := newWorldIn(t, e)
	in.waitModel(t, 1)
	if v := in.metric(t, "setlist_serve_model_pointer_present"); v != 1 {
		t.Errorf("pointer gauge %v with a published model", v)
	}
	if a := in.recs(t, weird, 5); a.Source != "batch" {
		t.Errorf("%s answered from %s before the loss", weird, a.Source)
	}
	// batchy is not asked before the loss: the near cache would answer.

	ctx := context.Background()
	rdb := w.single(t)
	keys, err := rdb.Keys(ctx, w.prefix+":*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("keys: %d, %v", len(keys), err)
	}
	if err := rdb.Del(ctx, keys...).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the pointer gauge to drop", func() bool { return in.metric(t, "setlist_serve_model_pointer_present") == 0 })
	time.Sleep(5 * fastConfig().Recs.PollInterval) // several more polls
	if n := strings.Count(logs.String(), "the model pointer is missing from Redis"); n != 1 {
		t.Errorf("the loss was logged %d times, want once; logs:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), `"level":"ERROR","msg":"the model pointer is missing from Redis`) {
		t.Errorf("the loss is not an ERROR line; logs:\n%s", logs.String())
	}
	// batchy's list is gone with Redis: the model in memory folds them in.
	if a := in.recs(t, "batchy", 5); a.Source != "fold-in" || len(a.Items) != 5 || a.ModelVersion != 1 {
		t.Errorf("batchy after the loss: source %s, %d items, version %d", a.Source, len(a.Items), a.ModelVersion)
	}
	wantStatus(t, in.get(t, "/readyz"), http.StatusOK)
}
