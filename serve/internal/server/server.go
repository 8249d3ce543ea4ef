// Package server assembles serve from its parts (stores, recommendation
// service, HTTP API, metrics) and owns its lifecycle: start following the
// published model, serve, and shut down gracefully. Tests build it exactly as
// the binary does, on a random port, against the real stores.
package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/experiment"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/registry"
	"github.com/setlist/setlist/internal/store"
	"github.com/setlist/setlist/serve/internal/api"
	"github.com/setlist/setlist/serve/internal/exposure"
	"github.com/setlist/setlist/serve/internal/metrics"
	"github.com/setlist/setlist/serve/internal/recs"
)

// Config is everything tunable about a server.
type Config struct {
	API  api.Config
	Recs recs.Config
	// Exposure tunes the recording of answers (flush and persist intervals).
	Exposure exposure.Config
	// ShutdownDelay is how long /readyz reports 503 before the listener
	// closes, so a load balancer stops routing here first.
	ShutdownDelay time.Duration
	// ShutdownTimeout bounds draining in-flight requests; keep it below the
	// pod's terminationGracePeriodSeconds minus ShutdownDelay.
	ShutdownTimeout time.Duration
	// MaxConnsPerClient caps the connections one client address (trusted
	// proxies exempt) holds open on the API listener; 0 disables the cap.
	MaxConnsPerClient int
}

// DB is the system of record (PostgreSQL, or SQLite when embedded): what
// the API, fold-in and the admin rollback need from it.
type DB interface {
	api.DB
	recs.History
	exposure.DB
	RecordRollback(ctx context.Context, rolledBack, restored int64, reason string) error
	// The experiments an admin starts and stops over HTTP, under the
	// training lock as `batch experiment start` takes it.
	registry.ExperimentRecorder
	LockTraining(ctx context.Context, wait bool, onWait func(holder string)) (release func(), err error)
}

// Deps are the connected stores and process-wide facilities.
type Deps struct {
	DB          DB
	Redis       redis.UniversalClient
	RedisPrefix string
	Registry    *prometheus.Registry
	Log         *slog.Logger
	Static      fs.FS
	// Retrain is the playground's in-process retrain (nil elsewhere).
	Retrain api.Retrainer
	// DBName and KVName name DB and Redis in /readyz (see api.Deps).
	DBName, KVName string
	// Catalog is told of every committed catalog change (api.Deps.Catalog).
	Catalog api.CatalogNotifier
}

// Server is one serve process's HTTP server and background model follower.
type Server struct {
	cfg  Config
	api  *api.API
	recs *recs.Service
	// exposure records what is answered (package exposure).
	exposure *exposure.Recorder
	log      *slog.Logger
	metrics  *http.Server
	cancel   context.CancelFunc
	done     sync.WaitGroup
}

// New wires a server and starts following the published model (loading
// the current version in the background; /readyz says when it is in).
func New(cfg Config, d Deps) (*Server, error) {
	if d.DB == nil || d.Redis == nil || d.Registry == nil {
		return nil, errors.New("new server: DB, Redis and Registry are required")
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 20 * time.Second
	}
	if cfg.API.ReportMaxAge <= 0 {
		// The reports change with a new version, which is polled this
		// often: a shorter cache would only cost the database.
		cfg.API.ReportMaxAge = cfg.Recs.PollInterval
	}
	keys := keyspace.NewReader(d.Redis, d.RedisPrefix)
	if d.Catalog == nil {
		// The key space announces catalog changes to every replica once it
		// can (keyspace.Reader.CatalogChanged); until then none is sent and
		// replicas see changes at their periodic check.
		if n, ok := any(keys).(api.CatalogNotifier); ok {
			d.Catalog = n
		}
	}
	s := &Server{cfg: cfg, log: d.Log}
	var svc *recs.Service
	m := metrics.New(d.Registry, func() int { return svc.NearCacheLen() }, func() int64 { return svc.NearCacheBytes() },
		func() time.Time { return svc.TrainedAt() })
	svc = recs.New(cfg.Recs, keys, d.DB, m, d.Log)
	rec := exposure.New(cfg.Exposure, keys, d.DB, svc, m, d.Log)
	admin := &rollbacker{pub: keyspace.NewPublisher(d.Redis, keyspace.NewKeys(d.RedisPrefix)), db: d.DB}
	a, err := api.New(cfg.API, api.Deps{Recs: svc, Exposure: rec, DB: d.DB, Redis: keys, Metrics: m, Log: d.Log, Static: d.Static, Admin: admin,
		DBName: d.DBName, KVName: d.KVName, Retrain: d.Retrain, Catalog: d.Catalog})
	if err != nil {
		return nil, fmt.Errorf("new server: %w", err)
	}
	s.api, s.recs, s.exposure = a, svc, rec
	s.metrics = &http.Server{
		Handler:           promhttp.HandlerFor(d.Registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}),
		ReadHeaderTimeout: 5 * time.Second,
		WriteTimeout:      30 * time.Second,
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.done.Add(1)
	go func() {
		defer s.done.Done()
		svc.Run(ctx)
	}()
	s.done.Add(1)
	go func() {
		defer s.done.Done()
		exportReadouts(ctx, svc, d.DB, m, d.Log)
	}()
	s.done.Go(func() { rec.Run(ctx) })
	return s, nil
}

// readoutEvery is how often serve recomputes the running experiment's
// readout for its gauges (the ChallengerWorse alert): the counts query
// scans the experiment's exposures, so not on every scrape.
const readoutEvery = 30 * time.Second

// exportReadouts keeps the experiment readout gauges current while an
// experiment runs on this replica. Every replica exports the same numbers
// (they come from the shared database); rules take max() over them.
func exportReadouts(ctx context.Context, svc *recs.Service, db api.ExperimentDB, m *metrics.Metrics, log *slog.Logger) {
	tick := time.NewTicker(readoutEvery)
	defer tick.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		r, ok := svc.Experiment()
		if !ok {
			continue
		}
		res, err := readoutOf(ctx, db, r.ID)
		if err != nil {
			m.StoreError("postgres", "experiment_counts")
			if !failing {
				log.Warn("experiment readout failed; the gauges keep their last values", "experiment", r.ID, "err", err)
			}
			failing = true
			continue
		}
		failing = false
		m.SetReadout(res)
	}
}

func readoutOf(ctx context.Context, db api.ExperimentDB, id int64) (experiment.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	list, err := db.Experiments(ctx, 1)
	if err != nil {
		return experiment.Result{}, err
	}
	if len(list) == 0 || list[0].ID != id {
		return experiment.Result{}, fmt.Errorf("experiment %d is not the newest in the registry: %w", id, setlist.ErrNotFound)
	}
	return api.Readout(ctx, db, list[0])
}

// Recs is the recommendation service (tests use it to force a refresh).
func (s *Server) Recs() *recs.Service { return s.recs }

// Exposure records what is answered (tests flush it, and read what a
// user was shown).
func (s *Server) Exposure() *exposure.Recorder { return s.exposure }

// Serve answers the API and the web page on ln until Shutdown; it returns
// nil after a clean shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.log.Info("serving", "addr", ln.Addr().String())
	if err := s.api.App.Listener(lingerConns(limitConns(ln, s.cfg.MaxConnsPerClient, s.cfg.API.TrustedProxies))); err != nil {
		return fmt.Errorf("serve http on %s: %w", ln.Addr(), err)
	}
	return nil
}

// ServeMetrics answers Prometheus scrapes (any path) on ln until Shutdown.
// It is a listener of its own so the ingress, which routes only the API's
// port, never exposes the metrics: they name routes, versions and load.
func (s *Server) ServeMetrics(ln net.Listener) error {
	if err := s.metrics.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve metrics on %s: %w", ln.Addr(), err)
	}
	return nil
}

// Shutdown fails readiness, waits ShutdownDelay, stops accepting
// connections and waits for in-flight requests to finish (bounded by
// ShutdownTimeout and ctx), then stops following the model.
func (s *Server) Shutdown(ctx context.Context) error {
	s.api.Drain()
	if s.cfg.ShutdownDelay > 0 {
		select {
		case <-time.After(s.cfg.ShutdownDelay):
		case <-ctx.Done():
		}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ShutdownTimeout)
	defer cancel()
	err := s.api.App.ShutdownWithContext(ctx)
	// Scrapes are short: closing the metrics listener last keeps the drain
	// observable.
	err = errors.Join(err, s.metrics.Shutdown(ctx))
	s.cancel()
	s.done.Wait()
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// rollbacker is `batch rollback` for POST /v1/admin/rollback and `batch
// experiment start|stop` for /v1/admin/experiments: the same functions,
// a rollback's unrecorded case reported as the API's RegistryError.
type rollbacker struct {
	pub *keyspace.Publisher
	db  DB
}

func (r *rollbacker) Rollback(ctx context.Context, reason string) (current, previous keyspace.Version, err error) {
	ptr, err := registry.Rollback(ctx, r.pub, r.db, reason)
	if unrec, ok := errors.AsType[*registry.UnrecordedRollbackError](err); ok {
		return ptr.Current, ptr.Previous, &api.RegistryError{Err: unrec.Err}
	}
	return ptr.Current, ptr.Previous, err
}

// StartExperiment starts n under the training lock (a train publishing
// meanwhile would change the control under it); a held lock is a conflict
// to retry, not a wait inside a request.
func (r *rollbacker) StartExperiment(ctx context.Context, n store.NewExperiment) (store.Experiment, error) {
	release, err := r.db.LockTraining(ctx, false, nil)
	if err != nil {
		return store.Experiment{}, fmt.Errorf("start experiment: %w", err)
	}
	defer release()
	return registry.StartExperiment(ctx, r.db, r.pub, n)
}

// StopExperiment ends the running experiment, if any.
func (r *rollbacker) StopExperiment(ctx context.Context) (store.Experiment, bool, error) {
	return registry.StopExperiment(ctx, r.db, r.pub)
}
