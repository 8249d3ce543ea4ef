package command

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/urfave/cli/v2"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/config"
	"github.com/setlist/setlist/internal/modelstore"
	"github.com/setlist/setlist/internal/pipeline"
	"github.com/setlist/setlist/internal/store"
	"github.com/setlist/setlist/internal/synth"
	"github.com/setlist/setlist/serve/internal/api"
)

// Playground is serve's one-process demo mode (`make run`): on a start with
// no published model, import the sample and train and publish before
// serving; later starts serve what is there.
type Playground struct {
	Enabled bool
	// Sample is the CSV imported on the first start.
	Sample string
}

func (p *Playground) flags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "playground", Usage: "one process, no servers: --store embedded unless --store is given; with no published model, import --sample, train and publish before serving", EnvVars: []string{"SETLIST_PLAYGROUND"}, Destination: &p.Enabled},
		&cli.StringFlag{Name: "sample", Usage: "CSV the playground imports on its first start", EnvVars: []string{"SETLIST_SAMPLE"}, Value: "data/sample.csv.gz", Destination: &p.Sample},
	}
}

// resolve sets the playground's defaults; a flag or variable given
// explicitly always wins:
//   - the embedded store (--store postgres+redis runs the same bootstrap
//     against the servers);
//   - loopback only (127.0.0.1:8080): the playground has a write API and
//     no authentication, so it is not offered to the network unless --addr
//     says so (docs/SECURITY.md);
//   - --auth off, and no metrics listener.
func (p *Playground) resolve(c *cli.Context, cfg *Config) {
	if !p.Enabled {
		return
	}
	if !c.IsSet("store") {
		cfg.Stores.Backend = config.StoreEmbedded
	}
	if !c.IsSet("addr") {
		cfg.Addr = PlaygroundAddr
	}
	if !c.IsSet("auth") {
		cfg.Auth = AuthOff
	}
	if !c.IsSet("metrics-addr") {
		cfg.MetricsAddr = ""
	}
}

// PlaygroundAddr is where the playground listens unless told otherwise.
const PlaygroundAddr = "127.0.0.1:8080"

// bootstrap prepares the playground: nothing when a model is published,
// otherwise import the sample (a snapshot: importing it again changes
// nothing) and run the batch pipeline with its defaults, which train the
// sample in a few seconds.
func (p Playground) bootstrap(ctx context.Context, db database, rdb redis.UniversalClient, prefix string, logger *slog.Logger) error {
	v, err := modelstore.NewReader(rdb, prefix).Current(ctx)
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
		Source: db, Registry: db, Locker: db, Artifacts: db, Publisher: modelstore.NewPublisher(rdb, modelstore.NewKeys(prefix)), Logger: logger,
	})
}

// adminTokenFile is where the playground keeps the admin token it made
// (when none is configured), for `make retrain` to read.
const adminTokenFile = "admin-token"

// playgroundToken returns a fresh random admin token written to
// dir/admin-token (mode 0600, replaced on every start), so the playground's
// admin endpoints (retrain, rollback) work for whoever can read the data
// dir, and for nobody else, without any setup.
func playgroundToken(dir string) (string, error) {
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
