// Package playground is serve's one-process demo (`make run`, the
// serve-playground binary of serve/playground): serve's API and page over
// the embedded store (SQLite and an in-process Redis, no servers) or over
// PostgreSQL and Redis (`make run-prod`), which on a start with no
// published model imports the sample and trains and publishes before
// serving, and retrains on request. It is a package of its own so that
// production serve links none of it: not the embedded store, not the
// training pipeline, not the sample's name generator.
package playground

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/urfave/cli/v2"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/config"
	"github.com/setlist/setlist/internal/embedded"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/pipeline"
	"github.com/setlist/setlist/internal/postgres"
	"github.com/setlist/setlist/internal/store"
	"github.com/setlist/setlist/internal/synth"
	"github.com/setlist/setlist/serve/command"
	"github.com/setlist/setlist/serve/internal/api"
	"github.com/setlist/setlist/serve/internal/server"
)

// NewApp builds the serve-playground CLI: serve's flags, the playground's
// own (--store, --data-dir, --sample) and its defaults.
func NewApp(version string) *cli.App { return command.New(version, new(Playground).Mode()) }

// Playground is the playground's own settings.
type Playground struct {
	// Sample is the CSV imported on the first start.
	Sample string
}

// Mode is serve's wiring with the playground's stores, defaults, first
// start and retrain; its flags bind to p.
func (p *Playground) Mode() command.Mode {
	return command.Mode{
		Name:    "serve-playground",
		Usage:   "setlist in one process, no servers needed: serve's API and web page over the embedded store, importing the sample and training on the first start",
		Flags:   p.flags,
		Resolve: p.resolve,
		Open:    open,
		Prepare: p.prepare,
	}
}

func (p *Playground) flags(cfg *command.Config) []cli.Flag {
	return append(cfg.Stores.BackendFlags(config.StoreEmbedded),
		&cli.StringFlag{Name: "sample", Usage: "CSV the playground imports on its first start", EnvVars: []string{"SETLIST_SAMPLE"}, Value: "data/sample.csv.gz", Destination: &p.Sample},
	)
}

// resolve sets the playground's defaults, besides --store's (embedded;
// postgres+redis runs the same first start against the servers); a flag or
// variable given explicitly always wins:
//   - loopback only (127.0.0.1:8080): the playground has a write API and
//     no authentication, so it is not offered to the network unless --addr
//     says so (docs/SECURITY.md);
//   - --auth off, and no metrics listener.
//
// It refuses a --store it does not know.
func (p *Playground) resolve(c *cli.Context, cfg *command.Config) error {
	if !c.IsSet("addr") {
		cfg.Addr = Addr
	}
	if !c.IsSet("auth") {
		cfg.Auth = command.AuthOff
	}
	if !c.IsSet("metrics-addr") {
		cfg.MetricsAddr = ""
	}
	return cfg.Stores.Validate()
}

// Addr is where the playground listens unless told otherwise.
const Addr = "127.0.0.1:8080"

// database is the system of record as the playground uses it: the
// server's needs, plus the import and the training runs it performs. Both
// *postgres.DB and *sqlite.DB have it.
type database interface {
	server.DB
	pipeline.Source
	pipeline.Registry
	pipeline.Locker
	pipeline.Artifacts
	Import(ctx context.Context, r io.Reader, opts store.ImportOptions) (store.ImportSummary, error)
	NameUsers(ctx context.Context, name func(setlist.UserID) string) (int64, error)
}

// open opens and checks the backend --store selected: the embedded store,
// or PostgreSQL (migrated here: the playground does batch's work, with no
// migrate Job to wait for) and Redis.
func open(ctx context.Context, cfg command.Config, logger *slog.Logger) (*command.Stores, error) {
	if cfg.Stores.Embedded() {
		emb, err := embedded.Open(ctx, cfg.Stores.DataDir, logger)
		if err != nil {
			return nil, err
		}
		rdb, err := emb.StartKV(ctx, cfg.Stores.RedisPrefix)
		if err != nil {
			_ = emb.Close()
			return nil, err
		}
		logger.Info("embedded store", "data_dir", cfg.Stores.DataDir, "database", emb.DB.Path())
		return &command.Stores{DB: emb.DB, Redis: rdb, DBName: "sqlite", KVName: "embedded_redis", Close: func() {
			if err := emb.Close(); err != nil {
				logger.Error("embedded store not saved", "err", err)
			}
		}}, nil
	}
	db, err := openPostgres(ctx, cfg.Stores.DatabaseURL, logger)
	if err != nil {
		return nil, err
	}
	rdb, err := keyspace.Dial(ctx, cfg.Stores.RedisURL, cfg.RedisPoolSize, cfg.Stores.RedisCluster)
	if err != nil {
		db.Close()
		return nil, err
	}
	return &command.Stores{DB: db, Redis: rdb, DBName: "postgres", KVName: "redis", Close: func() { _ = rdb.Close(); db.Close() }}, nil
}

// openPostgres does batch migrate's work (make run-prod has no Job to do
// it): it creates the database if missing and applies pending
// migrations, saying which database on which server it uses.
func openPostgres(ctx context.Context, url string, logger *slog.Logger) (*postgres.DB, error) {
	created, err := postgres.CreateDatabase(ctx, url)
	if err != nil {
		return nil, err
	}
	if created {
		logger.Info("created database", "database", postgres.DatabaseName(url), "server", postgres.Server(url))
	}
	db, applied, err := postgres.OpenMigrated(ctx, url)
	if err != nil {
		return nil, err
	}
	logger.Info("database", "database", db.Name(), "server", postgres.Server(url))
	if len(applied) > 0 {
		logger.Info("migrated", "applied", applied)
	}
	return db, nil
}

// prepare runs the first start (bootstrap) and wires `make retrain`: batch
// cannot open the embedded store while serve owns it, so the playground
// trains itself, on request, with an admin token it writes for the script
// when none is configured.
func (p *Playground) prepare(ctx context.Context, cfg *command.Config, st *command.Stores, deps *server.Deps, logger *slog.Logger) (func(), error) {
	db, ok := st.DB.(database)
	if !ok {
		return nil, fmt.Errorf("playground: the %s store cannot import or train", st.DBName)
	}
	// Training may take longer than the start deadline on big data: ctx
	// is the server's lifetime.
	if err := p.bootstrap(ctx, db, st.Redis, cfg.Stores.RedisPrefix, logger); err != nil {
		return nil, err
	}
	if cfg.Server.API.AdminToken == "" {
		tok, err := token(cfg.Stores.DataDir)
		if err != nil {
			return nil, err
		}
		cfg.Server.API.AdminToken = tok
	}
	prefix := cfg.Stores.RedisPrefix
	rt := &retrainer{ctx: ctx, logger: logger, train: func(ctx context.Context, force bool) (*pipeline.Result, error) {
		return train(ctx, db, st.Redis, prefix, logger, pipeline.Config{Notes: "playground retrain", Force: force})
	}}
	deps.Retrain = rt
	return rt.wait, nil
}

// bootstrap prepares the playground: nothing when a model is published,
// otherwise import the sample (a snapshot: importing it again changes
// nothing) and run the batch pipeline with its defaults, which train the
// sample in a few seconds.
func (p *Playground) bootstrap(ctx context.Context, db database, rdb redis.UniversalClient, prefix string, logger *slog.Logger) error {
	v, err := keyspace.NewReader(rdb, prefix).Current(ctx)
	if err == nil {
		logger.Info("playground: serving the published model (delete the data dir to start over)", "version", v)
		return nil
	}
	if !errors.Is(err, setlist.ErrNotFound) {
		return err
	}
	f, err := os.Open(p.Sample)
	if err != nil {
		return fmt.Errorf("playground: open the sample (run from the repository, or pass --sample): %w", err)
	}
	defer f.Close()
	sum, err := db.Import(ctx, f, store.ImportOptions{Source: p.Sample})
	if err != nil {
		return fmt.Errorf("playground: %w", err)
	}
	// The sample's users are 32-hex ids: readable names make the search
	// box and headings usable (deterministic: the same on every machine).
	named, err := db.NameUsers(ctx, synth.Namer())
	if err != nil {
		return fmt.Errorf("playground: %w", err)
	}
	logger.Info("playground: sample imported", "source", sum.Source, "rows", sum.Rows,
		"users", sum.Users.Total(), "named", named, "songs", sum.Songs.Total(), "seconds", sum.Duration.Seconds())
	logger.Info("playground: training the first model (default parameters)")
	res, err := train(ctx, db, rdb, prefix, logger, pipeline.Config{Notes: "playground first start"})
	if err != nil {
		return fmt.Errorf("playground: train: %w", err)
	}
	logger.Info("playground: model published", "version", res.Version, "ndcg_at_5", res.Metrics["ndcg_at_5"],
		"seconds", res.Timings["total"])
	return nil
}

// train is one batch run in this process, with the pipeline's defaults:
// what the playground does on its first start and on each retrain.
func train(ctx context.Context, db database, rdb redis.UniversalClient, prefix string, logger *slog.Logger, cfg pipeline.Config) (*pipeline.Result, error) {
	return pipeline.Run(ctx, cfg, pipeline.Deps{
		Source: db, Registry: db, Locker: db, Artifacts: db, Publisher: keyspace.NewPublisher(rdb, keyspace.NewKeys(prefix)), Logger: logger,
	})
}

// adminTokenFile is where the playground keeps the admin token it made
// (when none is configured), for `make retrain` to read.
const adminTokenFile = "admin-token"

// token returns a fresh random admin token written to dir/admin-token
// (mode 0600, replaced on every start), so the playground's admin
// endpoints (retrain, rollback) work for whoever can read the data dir, and
// for nobody else, without any setup.
func token(dir string) (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(b[:])
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("playground admin token: %w", err)
	}
	path := filepath.Join(dir, adminTokenFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("playground admin token: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("playground admin token: %w", err)
	}
	return tok, nil
}

// retrainer is the playground's POST /v1/admin/retrain: one batch run at a
// time in the background, under the server's lifetime (shutdown cancels it
// and waits for it before the stores close).
type retrainer struct {
	ctx    context.Context
	train  func(ctx context.Context, force bool) (*pipeline.Result, error)
	logger *slog.Logger

	mu     sync.Mutex
	status api.RetrainStatus
	wg     sync.WaitGroup
}

func (r *retrainer) StartRetrain(force bool) (api.RetrainStatus, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.status.Running {
		return r.status, false
	}
	now := time.Now()
	r.status = api.RetrainStatus{Running: true, Force: force, StartedAt: &now}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.logger.Info("playground: retraining", "force", force)
		res, err := r.train(r.ctx, force)
		r.finish(res, err)
	}()
	return r.status, true
}

func (r *retrainer) finish(res *pipeline.Result, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := &r.status
	done := time.Now()
	st.Running, st.FinishedAt = false, &done
	st.Seconds = done.Sub(*st.StartedAt).Seconds()
	if res != nil {
		st.RunID, st.Reason, st.NDCG = res.RunID, res.Reason, res.Metrics["ndcg_at_5"]
	}
	var rejected *pipeline.RejectedError
	switch {
	case errors.As(err, &rejected):
		st.Outcome, st.Reason = "rejected", rejected.Reason
		r.logger.Warn("playground: retrain rejected by the quality gate", "reason", rejected.Reason)
	case err != nil:
		st.Outcome, st.Error = "failed", err.Error()
		r.logger.Error("playground: retrain failed", "err", err)
	default:
		st.Outcome, st.Version = "published", int64(res.Version)
		r.logger.Info("playground: retrained", "version", res.Version, "ndcg_at_5", st.NDCG, "seconds", st.Seconds)
	}
}

func (r *retrainer) RetrainStatus() api.RetrainStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

// wait blocks until a running retrain has stopped.
func (r *retrainer) wait() { r.wg.Wait() }
