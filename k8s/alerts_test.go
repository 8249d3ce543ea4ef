package k8s_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"
)

// TestAlertsFire evaluates alerts of k8s/monitoring/prometheusrule.yaml the
// way Prometheus does (its rule engine, its PromQL engine, the rule's for:)
// over series shaped like what serve and batch export, minute by minute:
// each fires on the situation it is for, only after its for:, and not on
// the look-alikes (a finished experiment, a better challenger, one replica
// recovering). TestPrometheusRules checks the rules' form; this checks
// that their expressions say what the runbook means.
func TestAlertsFire(t *testing.T) {
	groups, errs := rulefmt.Parse(ruleGroups(t), false)
	if len(errs) > 0 {
		t.Fatalf("k8s/monitoring/prometheusrule.yaml: %v", errs)
	}
	byName := map[string]rulefmt.Rule{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				byName[r.Alert] = r
			}
		}
	}
	for _, tc := range []struct {
		name, alert string
		series      string // promqltest load commands, one sample a minute from t=0
		minutes     int    // evaluated every minute from 0 to this
		want        bool   // firing at the last evaluation
	}{
		{"challenger significantly worse on one replica, for 10 min", "SetlistChallengerWorse", `
load 1m
  setlist_serve_experiment_verdict{verdict="challenger_worse",pod="a"} 1x12
  setlist_serve_experiment_verdict{verdict="challenger_worse",pod="b"} 0 0 1x10
  setlist_serve_experiment_verdict{verdict="challenger_better",pod="a"} 0x12
  setlist_serve_experiment_running{pod="a"} 1x12
  setlist_serve_experiment_running{pod="b"} 1x12`, 10, true},
		{"challenger worse for less than its for:", "SetlistChallengerWorse", `
load 1m
  setlist_serve_experiment_verdict{verdict="challenger_worse",pod="a"} 0 0 0 0 0 0 0 1 1 1 1 1
  setlist_serve_experiment_running{pod="a"} 1x12`, 10, false},
		{"the worse challenger's experiment was stopped", "SetlistChallengerWorse", `
load 1m
  setlist_serve_experiment_verdict{verdict="challenger_worse",pod="a"} 1x12
  setlist_serve_experiment_running{pod="a"} 1 1 0x10`, 10, false},
		{"challenger better", "SetlistChallengerWorse", `
load 1m
  setlist_serve_experiment_verdict{verdict="challenger_worse",pod="a"} 0x12
  setlist_serve_experiment_verdict{verdict="challenger_better",pod="a"} 1x12
  setlist_serve_experiment_running{pod="a"} 1x12`, 10, false},
		{"5 % of requests answered 5xx", "SetlistHigh5xxRatio", `
load 1m
  setlist_serve_http_request_duration_seconds_count{code="200",route="/v1/users/:id/recommendations"} 0+950x20
  setlist_serve_http_request_duration_seconds_count{code="503",route="/v1/users/:id/recommendations"} 0+50x20`, 15, true},
		{"1 % of requests answered 5xx", "SetlistHigh5xxRatio", `
load 1m
  setlist_serve_http_request_duration_seconds_count{code="200",route="/v1/users/:id/recommendations"} 0+990x20
  setlist_serve_http_request_duration_seconds_count{code="500",route="/v1/users/:id/recommendations"} 0+10x20`, 15, false},
		{"Redis names no version on one replica", "SetlistModelPointerMissing", `
load 1m
  setlist_serve_model_pointer_present{pod="a"} 1 1 0x10
  setlist_serve_model_pointer_present{pod="b"} 1x12`, 8, true},
		{"the pointer was back within a minute", "SetlistModelPointerMissing", `
load 1m
  setlist_serve_model_pointer_present{pod="a"} 1 1 0 1x9`, 8, false},
		{"Redis calls failing", "SetlistRedisErrors", `
load 1m
  setlist_serve_store_errors_total{store="redis",op="user_state"} 0+120x20`, 15, true},
		{"PostgreSQL calls failing is not a Redis alert", "SetlistRedisErrors", `
load 1m
  setlist_serve_store_errors_total{store="postgres",op="user_reactions"} 0+120x20`, 15, false},
		{"half the answers folded in for 40 min", "SetlistFoldInShareHigh", `
load 1m
  setlist_serve_recommendations_total{source="batch"} 0+500x60
  setlist_serve_recommendations_total{source="fold-in"} 0+500x60`, 60, true},
		{"a tenth folded in", "SetlistFoldInShareHigh", `
load 1m
  setlist_serve_recommendations_total{source="batch"} 0+900x60
  setlist_serve_recommendations_total{source="fold-in"} 0+100x60`, 60, false},
		{"two refreshes in a row failed", "SetlistRefreshFailed", `
load 1m
  setlist_batch_refresh_status{status="failed"} 0x5 1x30`, 30, true},
		{"one failed refresh, the next succeeded", "SetlistRefreshFailed", `
load 1m
  setlist_batch_refresh_status{status="failed"} 0x5 1x15 0x10`, 30, false},
		{"no refresh for 90 min", "SetlistRefreshStale", `
load 1m
  setlist_batch_refresh_last_success_timestamp_seconds 0x100
  setlist_batch_refresh_status{status="locked"} 0x100`, 90, true},
		{"refreshes locked out by a long train", "SetlistRefreshStale", `
load 1m
  setlist_batch_refresh_last_success_timestamp_seconds 0x100
  setlist_batch_refresh_status{status="locked"} 1x100`, 90, false},
		{"refreshes on schedule", "SetlistRefreshStale", `
load 1m
  setlist_batch_refresh_last_success_timestamp_seconds 0x15 900x15 1800x15 2700x15 3600x15 4500x15 5400x15
  setlist_batch_refresh_status{status="locked"} 0x105`, 100, false},
		{"one replica stuck behind a takedown for 3 min", "SetlistCatalogReplicaBehind", `
load 1m
  setlist_serve_catalog_seq{pod="a"} 3 3 4x10
  setlist_serve_catalog_seq{pod="b"} 3 3 3x10`, 5, true},
		{"a replica behind for less than a minute", "SetlistCatalogReplicaBehind", `
load 1m
  setlist_serve_catalog_seq{pod="a"} 3 3 4x10
  setlist_serve_catalog_seq{pod="b"} 3 3 3 4x9`, 5, false},
		{"a restarted replica applies the catalog at start", "SetlistCatalogReplicaBehind", `
load 1m
  setlist_serve_catalog_seq{pod="a"} 7x12
  setlist_serve_catalog_seq{pod="c"} _ _ _ 0 7x8`, 8, false},
		{"replicas agree through changes", "SetlistCatalogReplicaBehind", `
load 1m
  setlist_serve_catalog_seq{pod="a"} 1 2 3 4 5 6 7 8
  setlist_serve_catalog_seq{pod="b"} 1 2 3 4 5 6 7 8`, 7, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := byName[tc.alert]
			if !ok {
				t.Fatalf("no alert %s", tc.alert)
			}
			if got := fires(t, r, tc.series, tc.minutes); got != tc.want {
				t.Errorf("%s firing after %d min: %v, want %v (expr %s, for %v)", tc.alert, tc.minutes, got, tc.want, r.Expr, time.Duration(r.For))
			}
		})
	}
}

// fires evaluates rule r every minute from 0 to minutes over series, as
// Prometheus' rule manager does (an instant query of the expression at
// each evaluation, by Prometheus' own PromQL engine; a series is pending
// from the first evaluation that returns it and firing once it has been
// returned for the rule's for:), and reports whether one is firing at the
// end. Prometheus' rules and tsdb packages would do the same but pull its
// service discovery's client-go into go.mod, at a version that conflicts
// with the k8s.io/api the manifests are decoded with.
func fires(t *testing.T, r rulefmt.Rule, series string, minutes int) bool {
	t.Helper()
	db := loadSeries(t, series)
	engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 1e6, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	hold := time.Duration(r.For)
	activeSince := map[string]time.Time{} // series → first evaluation of its current run
	firing := false
	for m := 0; m <= minutes; m++ {
		ts := time.Unix(0, 0).Add(time.Duration(m) * time.Minute)
		q, err := engine.NewInstantQuery(context.Background(), db, nil, r.Expr, ts)
		if err != nil {
			t.Fatalf("alert %s: %v", r.Alert, err)
		}
		res := q.Exec(context.Background())
		vec, err := res.Vector()
		if res.Err != nil || err != nil {
			t.Fatalf("alert %s at minute %d: %v %v", r.Alert, m, res.Err, err)
		}
		q.Close()
		now := map[string]time.Time{}
		firing = false
		for _, s := range vec {
			key := s.Metric.String()
			since, ok := activeSince[key]
			if !ok {
				since = ts
			}
			now[key] = since
			if ts.Sub(since) >= hold {
				firing = true
			}
		}
		activeSince = now // a series no longer returned starts over
	}
	return firing
}

// loadSeries reads promqltest's load syntax ("load 1m", then a series
// description a line, e.g. `up{pod="a"} 0+1x10`) into an in-memory store,
// the first sample at time 0.
func loadSeries(t *testing.T, text string) storage.Queryable {
	t.Helper()
	var db memSeries
	step := time.Duration(0)
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		line = strings.TrimSpace(line)
		if rest, ok := strings.CutPrefix(line, "load "); ok {
			d, err := time.ParseDuration(rest)
			if err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			step = d
			continue
		}
		if step == 0 {
			t.Fatalf("%q before a load line", line)
		}
		lset, values, err := parser.ParseSeriesDesc(line)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		ser := memSeriesEntry{lset: lset}
		for i, v := range values {
			if !v.Omitted {
				ser.samples = append(ser.samples, floatSample{t: int64(time.Duration(i) * step / time.Millisecond), f: v.Value})
			}
		}
		db = append(db, ser)
	}
	return db
}

// memSeries is a few series in memory, enough for an engine to query.
type memSeries []memSeriesEntry

type memSeriesEntry struct {
	lset    labels.Labels
	samples []chunks.Sample
}

// floatSample is a plain float sample (storage's own types are internal).
type floatSample struct {
	t int64
	f float64
}

func (s floatSample) T() int64                      { return s.t }
func (s floatSample) F() float64                    { return s.f }
func (s floatSample) H() *histogram.Histogram       { return nil }
func (s floatSample) FH() *histogram.FloatHistogram { return nil }
func (s floatSample) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (s floatSample) Copy() chunks.Sample           { return s }

func (db memSeries) Querier(int64, int64) (storage.Querier, error) { return db, nil }

func (db memSeries) Select(_ context.Context, _ bool, _ *storage.SelectHints, ms ...*labels.Matcher) storage.SeriesSet {
	var out []storage.Series
	for _, s := range db {
		ok := true
		for _, m := range ms {
			ok = ok && m.Matches(s.lset.Get(m.Name))
		}
		if ok {
			out = append(out, storage.NewListSeries(s.lset, s.samples))
		}
	}
	slices.SortFunc(out, func(a, b storage.Series) int { return labels.Compare(a.Labels(), b.Labels()) })
	return &sliceSet{series: out, i: -1}
}

func (memSeries) LabelValues(context.Context, string, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return nil, nil, nil
}

func (memSeries) LabelNames(context.Context, *storage.LabelHints, ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	return nil, nil, nil
}

func (memSeries) Close() error { return nil }

type sliceSet struct {
	series []storage.Series
	i      int
}

func (s *sliceSet) Next() bool                        { s.i++; return s.i < len(s.series) }
func (s *sliceSet) At() storage.Series                { return s.series[s.i] }
func (s *sliceSet) Err() error                        { return nil }
func (s *sliceSet) Warnings() annotations.Annotations { return nil }
