package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"

	"github.com/setlist/setlist/internal/store"
)

// Metrics are the batch's Prometheus series, registered on an injected
// registerer (never the global one: a test or a second pipeline in the same
// process gets its own). Series that describe the last *published* model are
// registered only once a run publishes, so a failed run pushed with
// Pushgateway's add semantics (POST) does not overwrite them with zeros.
type Metrics struct {
	reg             prometheus.Registerer
	phase           *prometheus.GaugeVec
	status          *prometheus.GaugeVec
	lastRun         prometheus.Gauge
	runNDCG         prometheus.Gauge
	runBaselineNDCG prometheus.Gauge

	published   lazySeries
	lastSuccess prometheus.Gauge
	gauges      map[string]prometheus.Gauge

	// The last search's series, registered once a run tunes, so a run that
	// does not tune pushes nothing over them. A tune-only Metrics
	// (NewTuneMetrics) has only these: `batch tune` pushes to the same
	// Pushgateway job, and must not overwrite the retrain's status,
	// phases or candidate score (nor fire the retrain alerts).
	tuneOnly   bool
	tuned      lazySeries
	tuneGauges map[string]prometheus.Gauge
	tuneStop   *prometheus.GaugeVec
}

// lazySeries registers its collectors on first use, so series describing
// something a run may not do (publish, search) are pushed only once a run
// did it, never as zeros over the last real values.
type lazySeries struct {
	once sync.Once
	err  error
}

func (l *lazySeries) register(reg prometheus.Registerer, what string, cs ...prometheus.Collector) error {
	l.once.Do(func() {
		for _, c := range cs {
			if err := reg.Register(c); err != nil && l.err == nil {
				l.err = fmt.Errorf("register %s metrics: %w", what, err)
			}
		}
	})
	return l.err
}

// tuneGaugeDefs name the gauges set from the last search (see registry.TuningSummary).
var tuneGaugeDefs = []struct{ name, help, key string }{
	{"setlist_batch_tune_trials", "trials the last hyper-parameter search evaluated", "trials"},
	{"setlist_batch_tune_pruned_trials", "trials of the last search stopped at a cheaper rung", "pruned"},
	{"setlist_batch_tune_budget_seconds", "wall-clock budget of the last search (0: none)", "budget"},
	{"setlist_batch_tune_used_seconds", "wall-clock seconds the last search ran", "used"},
	{"setlist_batch_tune_best_ndcg_at_5", "validation NDCG@5 of the last search's pick", "best"},
	{"setlist_batch_tune_incumbent_ndcg_at_5", "validation NDCG@5 of the parameters in use before the last search", "incumbent"},
	{"setlist_batch_tune_noise_margin", "NDCG@5 margin a challenger had to beat the incumbent by (measured seed-to-seed spread)", "margin"},
	{"setlist_batch_tune_kept_incumbent", "1 when the last search kept the parameters in use", "kept"},
	{"setlist_batch_tune_run", "run id of the last search (batch runs --trials RUN)", "run"},
	{"setlist_batch_tune_last_success_timestamp_seconds", "Unix time the last search finished", "time"},
}

// tuneStops are every value of the reason label of
// setlist_batch_tune_stop_reason.
var tuneStops = []string{"budget", "trials", "cancelled"}

// runStatuses are every value of the status label, so each push sets the
// last run's to 1 and every other to 0.
var runStatuses = []store.RunStatus{store.RunPublished, store.RunRejected, store.RunFailed}

// publishedGauges name the gauges set from the last published run; the key
// is the metric key in the registry's metrics map (or a count).
var publishedGauges = []struct{ name, help, key string }{
	{"setlist_batch_model_ndcg_at_5", "NDCG@5 of the published model on its holdout", "ndcg_at_5"},
	{"setlist_batch_model_precision_at_5", "precision@5 of the published model on its holdout", "precision_at_5"},
	{"setlist_batch_model_recall_at_5", "recall@5 of the published model on its holdout", "recall_at_5"},
	{"setlist_batch_model_map_at_5", "MAP@5 of the published model on its holdout", "map_at_5"},
	{"setlist_batch_model_hit_rate_at_5", "share of holdout users with a hit in the published model's top 5", "hit_rate_at_5"},
	{"setlist_batch_model_coverage_at_5", "share of the catalogue in some evaluated user's top 5", "coverage_at_5"},
	{"setlist_batch_model_baseline_ndcg_at_5", "popularity baseline's NDCG@5 on the published run's holdout", "baseline_ndcg_at_5"},
	{"setlist_batch_model_version", "version (run id) of the published model", "version"},
	{"setlist_batch_users_published", "user lists written by the last publish", "users_published"},
	{"setlist_batch_keys_written", "Redis keys written by the last publish", "keys_written"},
	{"setlist_batch_published_bytes", "key and value bytes written by the last publish", "bytes"},
}

// NewMetrics registers the always-present series on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		reg: reg,
		phase: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "setlist_batch_phase_duration_seconds",
			Help: "Wall-clock seconds of each phase of the last batch run (load, split, tune, eval, train, topk, publish, total).",
		}, []string{"phase"}),
		status: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "setlist_batch_run_status",
			Help: "1 for the outcome of the last batch run (published, rejected, failed), 0 for the others.",
		}, []string{"status"}),
		lastRun: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "setlist_batch_last_run_timestamp_seconds",
			Help: "Unix time the last batch run ended, whatever its outcome.",
		}),
		runNDCG: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "setlist_batch_run_ndcg_at_5",
			Help: "NDCG@5 of the last evaluated candidate, published or not.",
		}),
		runBaselineNDCG: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "setlist_batch_run_baseline_ndcg_at_5",
			Help: "Popularity baseline's NDCG@5 on the last evaluated candidate's holdout.",
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "setlist_batch_last_success_timestamp_seconds",
			Help: "Unix time of the last batch run that published a model.",
		}),
		gauges: map[string]prometheus.Gauge{},
	}
	m.initTune()
	for _, c := range []prometheus.Collector{m.phase, m.status, m.lastRun, m.runNDCG, m.runBaselineNDCG} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register batch metrics: %w", err)
		}
	}
	for _, g := range publishedGauges {
		m.gauges[g.key] = prometheus.NewGauge(prometheus.GaugeOpts{Name: g.name, Help: g.help})
	}
	return m, nil
}

// NewTuneMetrics is `batch tune`'s: only the last search's series.
func NewTuneMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{reg: reg, tuneOnly: true}
	m.initTune()
	return m
}

func (m *Metrics) initTune() {
	m.tuneGauges = map[string]prometheus.Gauge{}
	for _, g := range tuneGaugeDefs {
		m.tuneGauges[g.key] = prometheus.NewGauge(prometheus.GaugeOpts{Name: g.name, Help: g.help})
	}
	m.tuneStop = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "setlist_batch_tune_stop_reason",
		Help: "1 for why the last search stopped (budget, trials, cancelled), 0 for the others.",
	}, []string{"reason"})
}

// observeTuning records the run's search, if it searched.
func (m *Metrics) observeTuning(res *Result) error {
	s := res.Params.Tuning
	if res.Tuning == nil || s == nil {
		return nil
	}
	cs := []prometheus.Collector{m.tuneStop}
	for _, g := range tuneGaugeDefs {
		cs = append(cs, m.tuneGauges[g.key])
	}
	if err := m.tuned.register(m.reg, "tuning", cs...); err != nil {
		return err
	}
	kept := 0.0
	if s.KeptIncumbent {
		kept = 1
	}
	for k, v := range map[string]float64{
		"trials": float64(s.Trials), "pruned": float64(s.Pruned), "budget": s.BudgetSeconds, "used": s.UsedSeconds,
		"best": s.BestScore, "incumbent": s.IncumbentScore, "margin": s.NoiseMargin, "kept": kept,
		"run": float64(s.Run), "time": float64(time.Now().Unix()),
	} {
		m.tuneGauges[k].Set(v)
	}
	for _, r := range tuneStops {
		v := 0.0
		if r == s.StopReason {
			v = 1
		}
		m.tuneStop.WithLabelValues(r).Set(v)
	}
	return nil
}

// observe records a finished run.
func (m *Metrics) observe(res *Result) error {
	if m == nil {
		return nil
	}
	err := m.observeTuning(res)
	if m.tuneOnly {
		return err
	}
	return errors.Join(err, m.observeRun(res))
}

// observeRun records a train run's outcome and, when it published, the
// published model's series.
func (m *Metrics) observeRun(res *Result) error {
	for phase, secs := range res.Timings {
		m.phase.WithLabelValues(phase).Set(secs)
	}
	for _, s := range runStatuses {
		v := 0.0
		if s == res.Status {
			v = 1
		}
		m.status.WithLabelValues(string(s)).Set(v)
	}
	m.lastRun.Set(float64(time.Now().Unix()))
	if v, ok := res.Metrics["ndcg_at_5"]; ok {
		m.runNDCG.Set(v)
		m.runBaselineNDCG.Set(res.Metrics["baseline_ndcg_at_5"])
	}
	if res.Status != store.RunPublished {
		return nil
	}
	cs := []prometheus.Collector{m.lastSuccess}
	for _, g := range publishedGauges {
		cs = append(cs, m.gauges[g.key])
	}
	if err := m.published.register(m.reg, "published-model", cs...); err != nil {
		return err
	}
	m.lastSuccess.Set(float64(time.Now().Unix()))
	for k, v := range res.Metrics {
		if g, ok := m.gauges[k]; ok {
			g.Set(v)
		}
	}
	m.gauges["version"].Set(float64(res.Version))
	m.gauges["users_published"].Set(float64(res.Counts.UsersPublished))
	m.gauges["keys_written"].Set(float64(res.Counts.KeysWritten))
	m.gauges["bytes"].Set(float64(res.Counts.Bytes))
	return nil
}

// PushJob is the Pushgateway job name of the batch's series.
const PushJob = "setlist_batch"

// Push sends g's series to a Pushgateway at url with add semantics (POST):
// series of this job that this push does not carry (the published model's,
// after a failed run) keep their last pushed values. A CronJob pod is gone
// before Prometheus could scrape it, hence a push.
func Push(ctx context.Context, url string, g prometheus.Gatherer) error {
	if err := push.New(url, PushJob).Gatherer(g).AddContext(ctx); err != nil {
		return fmt.Errorf("push metrics to %s: %w", url, err)
	}
	return nil
}
