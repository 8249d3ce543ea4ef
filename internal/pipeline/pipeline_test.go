package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/keyspace/redistest"
	"github.com/setlist/setlist/internal/model"
	"github.com/setlist/setlist/internal/pipeline"
	"github.com/setlist/setlist/internal/postgres"
	"github.com/setlist/setlist/internal/postgres/pgtest"
	"github.com/setlist/setlist/internal/store"
	"github.com/setlist/setlist/internal/synth"
)

type env struct {
	db   *postgres.DB
	rdb  *redis.Client
	keys keyspace.Keys
	pub  *keyspace.Publisher
}

// newEnv imports a small synthetic data set with planted taste clusters.
func newEnv(t *testing.T) *env {
	t.Helper()
	db := pgtest.DB(t)
	rdb, prefix := redistest.Client(t)
	var buf bytes.Buffer
	if _, err := synth.Write(&buf, synth.Config{Users: 300, Songs: 800, Reactions: 12000, Clusters: 8, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Import(context.Background(), &buf, store.ImportOptions{Source: "synth"}); err != nil {
		t.Fatalf("import: %v", err)
	}
	keys := keyspace.NewKeys(prefix)
	return &env{db: db, rdb: rdb, keys: keys, pub: keyspace.NewPublisher(rdb, keys)}
}

func (e *env) deps() pipeline.Deps {
	return pipeline.Deps{Source: e.db, Registry: e.db, Locker: e.db, Publisher: e.pub}
}

func ptr[T any](v T) *T { return &v }

// smallConfig trains fast and well enough on the synthetic clusters.
func smallConfig() pipeline.Config {
	return pipeline.Config{Overrides: pipeline.Overrides{Factors: ptr(16), Iterations: ptr(6)}, Threads: 2}
}

func (e *env) current(t *testing.T) keyspace.Version {
	t.Helper()
	p, err := e.pub.Pointers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return p.Current
}

// reacted returns every song each user reacted to, straight from SQL.
func (e *env) reacted(t *testing.T) map[setlist.UserID]map[setlist.SongID]bool {
	t.Helper()
	rows, err := e.db.Pool.Query(context.Background(), `SELECT u.external_id, r.song_id FROM reactions r JOIN users u ON u.id = r.user_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[setlist.UserID]map[setlist.SongID]bool{}
	for rows.Next() {
		var u string
		var s int64
		if err := rows.Scan(&u, &s); err != nil {
			t.Fatal(err)
		}
		if out[setlist.UserID(u)] == nil {
			out[setlist.UserID(u)] = map[setlist.SongID]bool{}
		}
		out[setlist.UserID(u)][setlist.SongID(s)] = true
	}
	return out
}

func TestRunPublishesEveryUser(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// A like and a dislike on top of the plays: neither may be recommended.
	if _, err := e.db.Pool.Exec(ctx, `INSERT INTO reactions (user_id, song_id, kind) SELECT u.id, s.id, k
		FROM users u, songs s, (VALUES ('like'), ('dislike')) AS kinds(k)
		WHERE u.external_id = 'user1' AND s.track IN ('Track 3', 'Track 5') AND (k = 'like') = (s.track = 'Track 3')`); err != nil {
		t.Fatal(err)
	}
	res, err := pipeline.Run(ctx, smallConfig(), e.deps())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.Status != store.RunPublished || e.current(t) != keyspace.Version(res.RunID) {
		t.Fatalf("status %s, pointer %d, run %d", res.Status, e.current(t), res.RunID)
	}
	if res.Params.WarmIterations != pipeline.DefaultWarmIterations {
		t.Fatalf("full fit ran %d warm iterations, want the default %d", res.Params.WarmIterations, pipeline.DefaultWarmIterations)
	}
	reacted := e.reacted(t)
	if len(reacted) != 300 || res.Counts.UsersPublished != 300 {
		t.Fatalf("%d users reacted, %d published; want 300", len(reacted), res.Counts.UsersPublished)
	}
	v := keyspace.Version(res.RunID)
	for u, songs := range reacted {
		b, err := e.rdb.Get(ctx, e.keys.Recs(v, u)).Bytes()
		if err != nil {
			t.Fatalf("recs of %s: %v", u, err)
		}
		recs, err := model.DecodeRecs(b)
		if err != nil || len(recs) != pipeline.DefaultK {
			t.Fatalf("recs of %s = %v, %v; want the default depth", u, recs, err)
		}
		for _, r := range recs {
			if songs[r.Song] {
				t.Errorf("user %s is recommended song %d they reacted to", u, r.Song)
			}
		}
	}
	// The registry row is complete.
	run, err := e.db.Run(ctx, res.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if run.Status != store.RunPublished || run.Version == nil || *run.Version != res.RunID ||
		run.SnapshotAt == nil || run.FinishedAt == nil || run.PublishedAt == nil {
		t.Errorf("registry row incomplete: %+v", run)
	}
	wantKeys := map[string][]string{
		"params":  {"als", "scheme", "k", "source"},
		"metrics": {"ndcg_at_5", "precision_at_5", "recall_at_5", "map_at_5", "hit_rate_at_5", "coverage_at_5", "baseline_ndcg_at_5", "baseline_precision_at_5"},
		"counts":  {"users", "songs", "reactions", "nnz", "users_published", "keys_written", "bytes"},
		"timings": {"load", "split", "eval", "train", "topk", "publish", "total"},
	}
	for col, raw := range map[string]json.RawMessage{"params": run.Params, "metrics": run.Metrics, "counts": run.Counts, "timings": run.Timings} {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s: %v", col, err)
		}
		for _, k := range wantKeys[col] {
			if _, ok := m[k]; !ok {
				t.Errorf("registry %s lacks %q: %s", col, k, raw)
			}
		}
	}
	if res.Metrics["ndcg_at_5"] <= res.Metrics["baseline_ndcg_at_5"] {
		t.Errorf("model NDCG@5 %.4f does not beat popularity %.4f on planted clusters", res.Metrics["ndcg_at_5"], res.Metrics["baseline_ndcg_at_5"])
	}
	if res.Counts.KeysWritten != 303 || res.Params.Source != "default" {
		t.Errorf("keys written %d (want 303), params source %q", res.Counts.KeysWritten, res.Params.Source)
	}
	// Meta and popular are readable and consistent.
	meta, err := e.pub.Meta(ctx, v)
	if err != nil || meta.Users != 300 || meta.K != pipeline.DefaultK || meta.Params.Factors != 16 || !meta.SnapshotAt.Equal(*run.SnapshotAt) {
		t.Errorf("meta = %+v, %v", meta, err)
	}
	pop, err := e.rdb.Get(ctx, e.keys.Popular(v)).Bytes()
	if recs, derr := model.DecodeRecs(pop); err != nil || derr != nil || len(recs) != 100 || recs[0].Score < recs[99].Score {
		t.Errorf("popular list: %v %v (%d)", err, derr, len(recs))
	}

	// A second run reuses the published parameters.
	res2, err := pipeline.Run(ctx, pipeline.Config{Threads: 2, Overrides: pipeline.Overrides{Iterations: ptr(6)}}, e.deps())
	if err != nil {
		t.Fatalf("second Run: %v", err)
	}
	if res2.Params.Source != "last-published" || res2.Params.ALS.Factors != 16 {
		t.Errorf("second run params = %s %+v, want the last published factors 16", res2.Params.Source, res2.Params.ALS)
	}
}

func TestGateRejectsBadModelAndForcePublishes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	good, err := pipeline.Run(ctx, smallConfig(), e.deps())
	if err != nil {
		t.Fatal(err)
	}
	bad := pipeline.Config{Overrides: pipeline.Overrides{Factors: ptr(1), Iterations: ptr(1), Regularization: ptr(1000.0)}, Threads: 2}
	res, err := pipeline.Run(ctx, bad, e.deps())
	var rej *pipeline.RejectedError
	if !errors.As(err, &rej) || rej.ExitCode() != 3 {
		t.Fatalf("bad model: err = %v, want a RejectedError with exit code 3", err)
	}
	if e.current(t) != keyspace.Version(good.RunID) {
		t.Errorf("pointer moved to %d after a rejection", e.current(t))
	}
	run, _ := e.db.Run(ctx, res.RunID)
	if run.Status != store.RunRejected || run.Reason == "" || run.Version != nil {
		t.Errorf("rejected run row = %s %q version %v", run.Status, run.Reason, run.Version)
	}
	if n := countKeys(t, e.rdb, e.keys.VersionPrefix(keyspace.Version(res.RunID))+"*"); n != 0 {
		t.Errorf("a rejected run wrote %d keys", n)
	}
	bad.Force = true
	forced, err := pipeline.Run(ctx, bad, e.deps())
	if err != nil {
		t.Fatalf("forced run: %v", err)
	}
	if e.current(t) != keyspace.Version(forced.RunID) || !strings.Contains(forced.Reason, "forced") {
		t.Errorf("forced run: pointer %d, reason %q", e.current(t), forced.Reason)
	}
}

func countKeys(t *testing.T, rdb *redis.Client, pattern string) int {
	t.Helper()
	n := 0
	iter := rdb.Scan(context.Background(), 0, pattern, 1000).Iterator()
	for iter.Next(context.Background()) {
		n++
	}
	return n
}

// TestKilledPublish cancels the run after 100 user lists are written.
func TestKilledPublish(t *testing.T) {
	e := newEnv(t)
	first, err := pipeline.Run(context.Background(), smallConfig(), e.deps())
	if err != nil {
		t.Fatal(err)
	}
	old := keyspace.Version(first.RunID)
	before := map[setlist.UserID][]byte{}
	for u := range e.reacted(t) {
		before[u], _ = e.rdb.Get(context.Background(), e.keys.Recs(old, u)).Bytes()
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.pub.BatchSize = 50
	e.pub.OnBatch = func(n int) {
		if n >= 100 {
			cancel()
		}
	}
	killed, err := pipeline.Run(ctx, smallConfig(), e.deps())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("killed run: %v, want context.Canceled", err)
	}
	e.pub.OnBatch = nil
	if e.current(t) != old {
		t.Fatalf("pointer = %d after a killed publish, want %d", e.current(t), old)
	}
	for u, b := range before {
		got, err := e.rdb.Get(context.Background(), e.keys.Recs(e.current(t), u)).Bytes()
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("read of %s changed after a killed publish", u)
		}
	}
	partial := e.keys.VersionPrefix(keyspace.Version(killed.RunID)) + "*"
	if n := countKeys(t, e.rdb, partial); n < 100 {
		t.Fatalf("killed version has %d keys, want a partial ≥ 100", n)
	}
	if run, _ := e.db.Run(context.Background(), killed.RunID); run.Status != store.RunFailed || !strings.Contains(run.Reason, "canceled") {
		t.Errorf("killed run row = %s %q, want failed", run.Status, run.Reason)
	}
	next, err := pipeline.Run(context.Background(), smallConfig(), e.deps())
	if err != nil {
		t.Fatalf("run after the killed one: %v", err)
	}
	if n := countKeys(t, e.rdb, partial); n != 0 {
		t.Errorf("%d partial keys remain after the next publish", n)
	}
	if e.current(t) != keyspace.Version(next.RunID) {
		t.Errorf("pointer = %d, want %d", e.current(t), next.RunID)
	}
}

// countingPublisher fails the test if two publishes overlap.
type countingPublisher struct {
	pipeline.Publisher
	inFlight, maxInFlight, calls atomic.Int32
}

func (c *countingPublisher) Publish(ctx context.Context, v keyspace.Version, r keyspace.Release) (keyspace.Report, error) {
	n := c.inFlight.Add(1)
	defer c.inFlight.Add(-1)
	c.calls.Add(1)
	for {
		m := c.maxInFlight.Load()
		if n <= m || c.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(50 * time.Millisecond) // widen the window an overlap would need
	return c.Publisher.Publish(ctx, v, r)
}

func TestConcurrentRuns(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	release, err := e.db.LockTraining(ctx, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = pipeline.Run(ctx, smallConfig(), e.deps())
	var locked *pipeline.LockedError
	if !errors.As(err, &locked) || locked.ExitCode() != 4 || !strings.Contains(err.Error(), "another batch train holds the lock (setlist batch train pid") {
		t.Fatalf("run while locked: %v, want LockedError naming the holder", err)
	}
	release()

	cp := &countingPublisher{Publisher: e.pub}
	deps := e.deps()
	deps.Publisher = cp
	cfg := smallConfig()
	cfg.WaitLock = true
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() { _, errs[i] = pipeline.Run(ctx, cfg, deps) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Errorf("waiting run: %v", err)
		}
	}
	if cp.calls.Load() != 2 || cp.maxInFlight.Load() != 1 {
		t.Errorf("publishes = %d, max in flight = %d; want 2 and 1", cp.calls.Load(), cp.maxInFlight.Load())
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	e := newEnv(t)
	cfg := smallConfig()
	cfg.DryRun = true
	res, err := pipeline.Run(context.Background(), cfg, e.deps())
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if res.RunID != 0 || res.Metrics["ndcg_at_5"] == 0 || res.Counts.Users != 300 {
		t.Errorf("dry run result = %+v", res)
	}
	if runs, _ := e.db.Runs(context.Background(), 10); len(runs) != 0 {
		t.Errorf("dry run wrote %d registry rows", len(runs))
	}
	if e.current(t) != 0 {
		t.Errorf("dry run moved the pointer")
	}
}

func TestMetricsAndPush(t *testing.T) {
	e := newEnv(t)
	reg := prometheus.NewRegistry()
	m, err := pipeline.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	deps := e.deps()
	deps.Metrics = m
	res, err := pipeline.Run(context.Background(), smallConfig(), deps)
	if err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		for _, mm := range f.GetMetric() {
			name := f.GetName()
			for _, l := range mm.GetLabel() {
				name += "{" + l.GetValue() + "}"
			}
			got[name] = mm.GetGauge().GetValue()
		}
	}
	for name, want := range map[string]float64{
		"setlist_batch_model_ndcg_at_5":              res.Metrics["ndcg_at_5"],
		"setlist_batch_model_precision_at_5":         res.Metrics["precision_at_5"],
		"setlist_batch_users_published":              300,
		"setlist_batch_run_status{published}":        1,
		"setlist_batch_run_status{failed}":           0,
		"setlist_batch_model_version":                float64(res.RunID),
		"setlist_batch_phase_duration_seconds{load}": res.Timings["load"],
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
	if got["setlist_batch_last_success_timestamp_seconds"] < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("last success timestamp = %v", got["setlist_batch_last_success_timestamp_seconds"])
	}

	var mu sync.Mutex
	var method, path, body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		method, path, body = r.Method, r.URL.Path, string(b)
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	if err := pipeline.Push(context.Background(), srv.URL, reg); err != nil {
		t.Fatalf("Push: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if method != http.MethodPost || path != "/metrics/job/setlist_batch" || !strings.Contains(body, "setlist_batch_model_ndcg_at_5") {
		t.Errorf("push = %s %s (%d bytes), want POST /metrics/job/setlist_batch carrying the model gauges", method, path, len(body))
	}
	srv.Close()
	if err := pipeline.Push(context.Background(), srv.URL, reg); err == nil {
		t.Errorf("Push to a closed server succeeded")
	}
}

func TestRunTunes(t *testing.T) {
	e := newEnv(t)
	cfg := pipeline.Config{TuneTrials: 2, TuneBudget: 20 * time.Second, Threads: 2, DryRun: true, Force: true}
	res, err := pipeline.Run(context.Background(), cfg, e.deps())
	if err != nil {
		t.Fatalf("tuned run: %v", err)
	}
	if res.Tuning == nil || res.Params.Trials != len(res.Tuning.Trials) || res.Timings["tune"] == 0 {
		t.Fatalf("tuning %v, %d trials, tune %.2fs; want a tuned run", res.Tuning != nil, res.Params.Trials, res.Timings["tune"])
	}
	// The source says "tuned" only when a challenger replaced the incumbent.
	if want := map[bool]string{true: "default", false: "tuned"}[res.Tuning.KeptIncumbent]; res.Params.Source != want {
		t.Errorf("params source %q with kept incumbent %v, want %q", res.Params.Source, res.Tuning.KeptIncumbent, want)
	}
	if !res.Tuning.Trials[0].Incumbent || res.Tuning.Trials[0].Params.Factors != res.Tuning.Incumbent.Factors {
		t.Errorf("first trial %+v is not the incumbent %+v", res.Tuning.Trials[0], res.Tuning.Incumbent)
	}
}
