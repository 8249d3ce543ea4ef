// Package metrics defines every Prometheus metric serve exports. They are
// created on a registry the caller injects (no package globals), so tests and
// two servers in one process each get their own, and the names live in one
// file that docs/API.md and the alert rules can be checked against.
package metrics

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/setlist/setlist/internal/experiment"
)

const namespace = "setlist_serve"

// Metrics are serve's collectors.
type Metrics struct {
	RequestDuration *prometheus.HistogramVec // route, method, code
	Recommendations *prometheus.CounterVec   // source
	FoldInDuration  *prometheus.HistogramVec // phase
	NearCacheHits   prometheus.Counter
	NearCacheMisses prometheus.Counter
	NearCacheDrops  *prometheus.CounterVec // reason: user, version, resubscribe
	NearCacheSize   prometheus.GaugeFunc
	NearCacheBytes  prometheus.GaugeFunc
	FoldInCache     *prometheus.CounterVec // result: hit, miss
	FoldIns         *prometheus.CounterVec // outcome: solved, shared, busy, unknown_user
	Similar         *prometheus.CounterVec // outcome: cached, computed, shared, filtered, busy
	// Throttled counts scored answers over their client's rate, by work
	// (foldin, filtered, similar) and outcome (delayed, refused,
	// queue_full). No client label: clients are unbounded.
	Throttled    *prometheus.CounterVec
	StoreErrors  *prometheus.CounterVec // store, op
	ModelVersion prometheus.Gauge
	// RedisMastersDown is set by each readiness check: a cluster that lost
	// a master is degraded, not unready (issue 25 item 1).
	RedisMastersDown prometheus.Gauge
	ModelPointer     prometheus.Gauge
	ModelTrained     prometheus.Gauge
	ModelSnapshot    prometheus.Gauge
	ModelLoaded      prometheus.Gauge
	ModelMetric      *prometheus.GaugeVec // name
	ModelLoads       *prometheus.CounterVec
	Events           *prometheus.CounterVec // kind
	// Catalog (issue 22): the hidden set applied, its sequence, and the
	// answers given under request filters by where they came from.
	HiddenSongs     prometheus.Gauge
	CatalogSeq      prometheus.Gauge
	Filtered        *prometheus.CounterVec // source
	Attributions    *prometheus.CounterVec // kind, outcome: shown, not_shown, unattributed
	ExposureAnswers *prometheus.CounterVec // version (current, previous, challenger), source, arm
	ExposureUsers   *prometheus.GaugeVec   // version, source, arm
	ExposureDropped prometheus.Counter
	// Experiment describes the running experiment (0s when none).
	ExperimentRunning    prometheus.Gauge
	ExperimentID         prometheus.Gauge
	ExperimentChallenger prometheus.Gauge
	ExperimentShare      prometheus.Gauge
	// ExperimentReadout is the running experiment's readout as serve last
	// computed it (see recs/api): per arm units, conversions and rate, and
	// the verdict as challenger_worse / challenger_better (1 when
	// significant), which the ChallengerWorse alert reads.
	ExperimentReadout *prometheus.GaugeVec // arm, quantity
	ExperimentVerdict *prometheus.GaugeVec // verdict

	modelAge prometheus.GaugeFunc

	// observers caches RequestDuration's children: WithLabelValues hashes
	// three strings per call, which shows on the hot path.
	mu        sync.RWMutex
	observers map[obsKey]prometheus.Observer
	bySource  map[string]prometheus.Counter
}

type obsKey struct {
	route, method string
	code          int
}

// New registers serve's metrics on reg. size and bytes report the near
// cache's entry count and bytes held, and trainedAt the current model's
// training time (zero when none), at scrape time.
func New(reg prometheus.Registerer, size func() int, bytes func() int64, trainedAt func() time.Time) *Metrics {
	m := &Metrics{
		RequestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route pattern, method and status code.",
			Buckets: []float64{.0001, .00025, .0005, .001, .002, .005, .01, .025, .05, .1, .25, 1, 5},
		}, []string{"route", "method", "code"}),
		Recommendations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "recommendations_total",
			Help: "Recommendation answers served, by source (batch, fold-in, popular).",
		}, []string{"source"}),
		FoldInDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "foldin_duration_seconds",
			Help:    "Time of an on-demand fold-in by phase: postgres_read, solve, recommend (score + top-K), explain, total.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .00075, .001, .0015, .002, .003, .005, .01, .025, .1},
		}, []string{"phase"}),
		HiddenSongs: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "catalog_hidden_songs",
			Help: "Songs hidden from every answer (not available in the catalog), as this replica applies them.",
		}),
		CatalogSeq: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "catalog_seq",
			Help: "Catalog change sequence this replica applies (replicas that disagree for long missed a change).",
		}),
		Filtered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "filtered_recommendations_total",
			Help: "Recommendation answers under request filters, by source: batch (the stored list held n passing songs), fold-in or popular (scored against the allowed catalog).",
		}, []string{"source"}),
		NearCacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "near_cache_hits_total",
			Help: "Recommendation requests answered from the in-process near cache.",
		}),
		NearCacheMisses: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "near_cache_misses_total",
			Help: "Recommendation requests the near cache could not answer.",
		}),
		NearCacheDrops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "near_cache_invalidations_total",
			Help: "Near cache invalidations, by reason: user (a reaction), version (a model switch), resubscribe (events may have been missed), catalog (songs hidden or shown).",
		}, []string{"reason"}),
		FoldInCache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "foldin_cache_total",
			Help: "Lookups of the Redis fold-in cache for users the batch list cannot serve, by result (hit, miss).",
		}, []string{"result"}),
		FoldIns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "foldin_requests_total",
			Help: "Requests that needed a fold-in, by outcome: solved (ran one), shared (waited for the same user's running solve), busy (no fold-in slot before the deadline, or the client's queue full: 503), unknown_user (404 from the existence check: no slot, no history read).",
		}, []string{"outcome"}),
		Similar: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "similar_requests_total",
			Help: "Similar-song requests by outcome: cached (the song's list was cached for the served version and catalog), computed (ran the scan), shared (waited for the same song's running scan), filtered (a filter the cached list could not satisfy: a scan of its own), busy (no similar slot before the deadline, or the client's queue full: 503).",
		}, []string{"outcome"}),
		Throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "scored_throttled_total",
			Help: "Requests over their client's rate, by work (foldin, filtered, similar: a scored answer over --scoring-rate; similar_read: any similar-songs answer over --similar-rate; report: GET /v1/model or /v1/experiments over --report-rate) and outcome: delayed (waited for a token, then served), refused (no token before the deadline: 429), queue_full (the client already had the most requests waiting: 429 at once).",
		}, []string{"work", "outcome"}),
		StoreErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "store_errors_total",
			Help: "Failed Redis and PostgreSQL calls, by store and operation.",
		}, []string{"store", "op"}),
		RedisMastersDown: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "redis_masters_down",
			Help: "Redis masters that did not answer the last /readyz check; above 0 while some answer, serve is ready but degraded (their users get fold-in or popular answers).",
		}),
		ModelVersion: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "model_version",
			Help: "Version of the model being served (0 before one is loaded).",
		}),
		ModelPointer: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "model_pointer_present",
			Help: "1 while Redis names a published model version, 0 when the pointer is missing (Redis lost its data: run batch republish).",
		}),
		ModelTrained: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "model_trained_timestamp_seconds",
			Help: "When the served model was trained (unix seconds).",
		}),
		ModelSnapshot: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "model_snapshot_timestamp_seconds",
			Help: "Database time of the reactions snapshot the served model was trained on (unix seconds).",
		}),
		ModelLoaded: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "model_loaded_timestamp_seconds",
			Help: "When this process loaded the served model (unix seconds).",
		}),
		ModelMetric: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "model_metric",
			Help: "Offline evaluation metrics of the served model as recorded by its batch run (e.g. name=\"ndcg@5\").",
		}, []string{"name"}),
		ModelLoads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "model_loads_total",
			Help: "Attempts to load a newly published model version, by result (ok, error).",
		}, []string{"result"}),
		Events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "events_total",
			Help: "Messages received on the events channel, by kind (version, user, invalid, resubscribe).",
		}, []string{"kind"}),
		Attributions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "attributions_total",
			Help: "Likes and dislikes attributed to what the user was shown, by kind (like, dislike) and outcome: shown (the song was in the list serve shows them), not_shown, unattributed (what they are shown could not be read).",
		}, []string{"kind", "outcome"}),
		ExposureAnswers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "exposure_answers_total",
			Help: "Recommendation answers by the role of the version they came from (current, previous: a request still on the version before a switch, challenger: an experiment's), source and experiment arm; added every exposure flush (1s).",
		}, []string{"version", "source", "arm"}),
		ExposureUsers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "exposure_users",
			Help: "Distinct users answered today (UTC) by version role, source and arm, across every replica (the shared Redis HyperLogLog's count at this replica's last persist).",
		}, []string{"version", "source", "arm"}),
		ExposureDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "exposure_dropped_total",
			Help: "Answered users not added to the distinct-user count because the exposure buffer was full (their answers are still counted).",
		}),
	}
	m.ExperimentRunning = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "experiment_running",
		Help: "1 while an A/B experiment between model versions runs and its challenger is loaded here.",
	})
	m.ExperimentID = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "experiment_id",
		Help: "Id of the running experiment (0: none).",
	})
	m.ExperimentChallenger = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "experiment_challenger_version",
		Help: "Model version the running experiment's challenger arm is served (0: none).",
	})
	m.ExperimentShare = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "experiment_challenger_share",
		Help: "Share of users in the challenger arm (0: none).",
	})
	m.ExperimentReadout = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "experiment_readout",
		Help: "Running experiment's readout per arm: exposed users (units), users who liked a shown song (converted), their ratio (rate) and its 95% interval (rate_low, rate_high).",
	}, []string{"arm", "quantity"})
	m.ExperimentVerdict = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "experiment_verdict",
		Help: "1 when the running experiment's sequential test finds the challenger significantly better or worse (verdict label), else 0.",
	}, []string{"verdict"})
	reg.MustRegister(m.ExperimentRunning, m.ExperimentID, m.ExperimentChallenger, m.ExperimentShare,
		m.ExperimentReadout, m.ExperimentVerdict)
	for _, v := range []string{"challenger_better", "challenger_worse"} {
		m.ExperimentVerdict.WithLabelValues(v)
	}
	m.NearCacheSize = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace, Name: "near_cache_entries",
		Help: "Users with answers in the near cache.",
	}, func() float64 { return float64(size()) })
	m.NearCacheBytes = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace, Name: "near_cache_bytes",
		Help: "Bytes the near cache holds (answers, user ids and per-entry overhead), bounded by --near-cache-bytes.",
	}, func() float64 { return float64(bytes()) })
	m.modelAge = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace, Name: "model_age_seconds",
		Help: "Seconds since the served model was trained (0 before one is loaded).",
	}, func() float64 {
		t := trainedAt()
		if t.IsZero() {
			return 0
		}
		return time.Since(t).Seconds()
	})
	reg.MustRegister(m.RequestDuration, m.Recommendations, m.FoldInDuration, m.NearCacheHits, m.NearCacheMisses,
		m.NearCacheDrops, m.NearCacheSize, m.NearCacheBytes, m.FoldInCache, m.FoldIns, m.Similar, m.Throttled, m.StoreErrors, m.RedisMastersDown, m.ModelVersion, m.ModelPointer, m.ModelTrained,
		m.ModelSnapshot, m.ModelLoaded, m.ModelMetric, m.ModelLoads, m.Events, m.modelAge, m.Attributions,
		m.ExposureAnswers, m.ExposureUsers, m.ExposureDropped, m.HiddenSongs, m.CatalogSeq, m.Filtered)
	// Pre-create the children dashboards divide by, so rates start at 0
	// instead of appearing with the first event.
	m.observers = map[obsKey]prometheus.Observer{}
	m.bySource = map[string]prometheus.Counter{}
	for _, s := range []string{"batch", "fold-in", "popular"} {
		m.bySource[s] = m.Recommendations.WithLabelValues(s)
	}
	for _, s := range []string{"batch", "fold-in", "popular"} {
		m.Filtered.WithLabelValues(s)
	}
	for _, r := range []string{"user", "version", "resubscribe", "catalog"} {
		m.NearCacheDrops.WithLabelValues(r)
	}
	for _, r := range []string{"hit", "miss"} {
		m.FoldInCache.WithLabelValues(r)
	}
	for _, o := range []string{"solved", "shared", "busy", "unknown_user"} {
		m.FoldIns.WithLabelValues(o)
	}
	for _, o := range []string{"cached", "computed", "shared", "filtered", "busy"} {
		m.Similar.WithLabelValues(o)
	}
	for _, w := range []string{"foldin", "filtered", "similar", "similar_read", "report"} {
		for _, o := range []string{"delayed", "refused", "queue_full"} {
			m.Throttled.WithLabelValues(w, o)
		}
	}
	for _, k := range []string{"like", "dislike"} {
		for _, o := range []string{"shown", "not_shown", "unattributed"} {
			m.Attributions.WithLabelValues(k, o)
		}
	}
	return m
}

// ObserveRequest records one request's duration.
func (m *Metrics) ObserveRequest(route, method string, code int, d time.Duration) {
	k := obsKey{route, method, code}
	m.mu.RLock()
	o, ok := m.observers[k]
	m.mu.RUnlock()
	if !ok {
		// Both the registry and the map keep the strings: copies, in case
		// a caller passed one that aliases a request buffer.
		route, method = strings.Clone(route), strings.Clone(method)
		o = m.RequestDuration.WithLabelValues(route, method, strconv.Itoa(code))
		m.mu.Lock()
		m.observers[obsKey{route, method, code}] = o
		m.mu.Unlock()
	}
	o.Observe(d.Seconds())
}

// Recommended counts one answer from source.
func (m *Metrics) Recommended(source string) {
	if c, ok := m.bySource[source]; ok {
		c.Inc()
		return
	}
	m.Recommendations.WithLabelValues(source).Inc()
}

// SetExperiment describes the running experiment (running false: none).
func (m *Metrics) SetExperiment(r experiment.Routing, running bool) {
	if !running {
		r = experiment.Routing{}
		m.ExperimentReadout.Reset()
		for _, v := range []string{"challenger_better", "challenger_worse"} {
			m.ExperimentVerdict.WithLabelValues(v).Set(0)
		}
	}
	m.ExperimentRunning.Set(map[bool]float64{true: 1}[running])
	m.ExperimentID.Set(float64(r.ID))
	m.ExperimentChallenger.Set(float64(r.Challenger))
	m.ExperimentShare.Set(r.Share)
}

// SetReadout exports the running experiment's readout.
func (m *Metrics) SetReadout(res experiment.Result) {
	for arm, c := range map[string]struct {
		c  experiment.Counts
		r  float64
		ci experiment.Interval
	}{"control": {res.Control, res.ControlRate, res.ControlCI}, "challenger": {res.Challenger, res.ChallengerRate, res.ChallengerCI}} {
		m.ExperimentReadout.WithLabelValues(arm, "units").Set(float64(c.c.Units))
		m.ExperimentReadout.WithLabelValues(arm, "converted").Set(float64(c.c.Converted))
		m.ExperimentReadout.WithLabelValues(arm, "rate").Set(c.r)
		m.ExperimentReadout.WithLabelValues(arm, "rate_low").Set(c.ci.Low)
		m.ExperimentReadout.WithLabelValues(arm, "rate_high").Set(c.ci.High)
	}
	m.ExperimentVerdict.WithLabelValues("challenger_better").Set(map[bool]float64{true: 1}[res.Verdict == experiment.VerdictBetter])
	m.ExperimentVerdict.WithLabelValues("challenger_worse").Set(map[bool]float64{true: 1}[res.Verdict == experiment.VerdictWorse])
}

// StoreError counts a failed call.
func (m *Metrics) StoreError(store, op string) { m.StoreErrors.WithLabelValues(store, op).Inc() }

// Attributed counts one like's or dislike's attribution outcome.
func (m *Metrics) Attributed(kind string, attributed, shown bool) {
	switch {
	case !attributed:
		m.Attributions.WithLabelValues(kind, "unattributed").Inc()
	case shown:
		m.Attributions.WithLabelValues(kind, "shown").Inc()
	default:
		m.Attributions.WithLabelValues(kind, "not_shown").Inc()
	}
}
