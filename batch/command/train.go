package command

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/urfave/cli/v2"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/batch/progress"
	"github.com/setlist/setlist/internal/config"
	"github.com/setlist/setlist/internal/ease"
	"github.com/setlist/setlist/internal/feedback"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/memlimit"
	"github.com/setlist/setlist/internal/model"
	"github.com/setlist/setlist/internal/pipeline"
)

func trainCommand(g *globals) *cli.Command {
	var (
		cfg        pipeline.Config
		factors    int
		iterations int
		reg, alpha float64
		weighting  string
		pushURL    string
		batchSize  int
		memLimit   string
		easeLambda float64
	)
	env := func(name string) []string { return []string{"SETLIST_TRAIN_" + name} }
	return &cli.Command{
		Name:  "train",
		Usage: "load, evaluate, train, gate and publish a model (the CronJob's command)",
		Description: "Exit codes: 0 published (or, with --dry-run, would publish); 3 rejected by the quality gate;\n" +
			"4 another run holds the lock; 1 any other failure. Parameters come from the last published run\n" +
			"(or defaults scaled to the data) unless tuned: --tune-budget D searches until D has elapsed and keeps\n" +
			"the previous parameters unless a challenger beats them by more than the measured noise; --factors etc.\n" +
			"pin single values on top.",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "depth", Aliases: []string{"k"}, Usage: "songs stored per user's list (-k is the old name): serve answers n up to this from the list after leaving out hidden and filtered songs, and scores only when fewer pass", EnvVars: append(env("DEPTH"), env("K")...), Value: pipeline.DefaultK, Destination: &cfg.K},
			&cli.IntFlag{Name: "tune-trials", Usage: "optional cap on tuning trials (every rung counts; 0: no cap); alone it tunes for that many trials", EnvVars: env("TUNE_TRIALS"), Destination: &cfg.TuneTrials},
			&cli.DurationFlag{Name: "tune-budget", Usage: "tune on the training split until this much time has elapsed, e.g. 10m (0: no tuning unless --tune-trials)", EnvVars: env("TUNE_BUDGET"), Destination: &cfg.TuneBudget},
			&cli.BoolFlag{Name: "dry-run", Usage: "do everything but publish (no lock, no registry row); exits 3 if the gate would reject", EnvVars: env("DRY_RUN"), Destination: &cfg.DryRun},
			&cli.BoolFlag{Name: "stage-only", Usage: "train, evaluate and gate, then stage the version for the sharded precompute Job (batch precompute) instead of computing every user's list here", EnvVars: env("STAGE_ONLY"), Destination: &cfg.StageOnly},
			&cli.BoolFlag{Name: "force", Usage: "publish even if the quality gate rejects the model", EnvVars: env("FORCE"), Destination: &cfg.Force},
			&cli.Float64Flag{Name: "max-regression", Usage: "allowed relative NDCG@5 drop against the published run", EnvVars: env("MAX_REGRESSION"), Value: pipeline.DefaultMaxRegression, Destination: &cfg.MaxRegression},
			&cli.BoolFlag{Name: "wait-lock", Usage: "wait for a running batch train instead of exiting with code 4", EnvVars: env("WAIT_LOCK"), Destination: &cfg.WaitLock},
			&cli.IntFlag{Name: "factors", Usage: "pin the number of latent factors", EnvVars: env("FACTORS"), Destination: &factors},
			&cli.IntFlag{Name: "iterations", Usage: "pin the number of ALS iterations", EnvVars: env("ITERATIONS"), Destination: &iterations},
			&cli.Float64Flag{Name: "regularization", Usage: "pin the L2 regularisation λ", EnvVars: env("REGULARIZATION"), Destination: &reg},
			&cli.Float64Flag{Name: "alpha", Usage: "pin the confidence scale α", EnvVars: env("ALPHA"), Destination: &alpha},
			&cli.StringFlag{Name: "weighting", Usage: "pin the confidence weighting: raw, log or bm25", EnvVars: env("WEIGHTING"), Destination: &weighting},
			&cli.IntFlag{Name: "threads", Usage: "worker threads (0: GOMAXPROCS)", EnvVars: env("THREADS"), Destination: &cfg.Threads},
			&cli.Int64Flag{Name: "seed", Usage: "seed of the holdout split, evaluation sample and initial factors", EnvVars: env("SEED"), Value: pipeline.DefaultSeed, Destination: &cfg.Seed},
			&cli.IntFlag{Name: "eval-users", Usage: "evaluate on a seeded sample of this many users (0: all)", EnvVars: env("EVAL_USERS"), Destination: &cfg.EvalUsers},
			&cli.IntFlag{Name: "publish-batch", Usage: "Redis commands per pipelined round trip", EnvVars: env("PUBLISH_BATCH"), Value: keyspace.DefaultBatchSize, Destination: &batchSize},
			&cli.StringFlag{Name: "notes", Usage: "free text stored with the run", EnvVars: env("NOTES"), Destination: &cfg.Notes},
			&cli.BoolFlag{Name: "hold", Usage: "write the complete version to Redis but leave readers on the current one: a challenger for batch experiment start, or for promotion", EnvVars: env("HOLD"), Destination: &cfg.Hold},
			keepFlag(&cfg.Keep),
			&cli.StringFlag{Name: "family", Usage: "model family: als; ease (the closed-form item-item model; its catalog must fit --memory-limit); or auto, the default (a tuning run compares both on its validation split and keeps the published family unless the other beats it by the noise margin; without tuning, the family the last search chose, else the published one's, else als)", EnvVars: env("FAMILY"), Value: pipeline.FamilyAuto, Destination: &cfg.Family},
			&cli.StringFlag{Name: "memory-limit", Usage: "memory EASE training may use, e.g. 16GiB (auto: 3/4 of the process's memory limit, else of the machine's memory)", EnvVars: env("MEMORY_LIMIT"), Value: "auto", Destination: &memLimit},
			&cli.Float64Flag{Name: "ease-lambda", Usage: "pin EASE's L2 regularisation λ (default: the last published EASE run's, else 100)", EnvVars: env("EASE_LAMBDA"), Destination: &easeLambda},
			&cli.IntFlag{Name: "ease-prune", Usage: "entries per row of EASE's B kept (evaluated, listed and served; 0: 128)", EnvVars: env("EASE_PRUNE"), Destination: &cfg.EASEPrune},
			&cli.StringFlag{Name: "pushgateway-url", Usage: "push the run's metrics to this Prometheus Pushgateway", EnvVars: []string{"SETLIST_PUSHGATEWAY_URL"}, Destination: &pushURL},
		},
		Action: func(c *cli.Context) error {
			if cfg.StageOnly {
				if err := g.postgresOnly("train --stage-only"); err != nil {
					return err
				}
			}
			if c.IsSet("factors") {
				cfg.Overrides.Factors = &factors
			}
			if c.IsSet("iterations") {
				cfg.Overrides.Iterations = &iterations
			}
			if c.IsSet("regularization") {
				cfg.Overrides.Regularization = &reg
			}
			if c.IsSet("alpha") {
				cfg.Overrides.Alpha = &alpha
			}
			if c.IsSet("weighting") {
				w := feedback.Weighting(weighting)
				cfg.Overrides.Weighting = &w
			}
			var err error
			if cfg.MemoryLimit, err = memoryLimit(memLimit); err != nil {
				return fmt.Errorf("--memory-limit: %w: %w", setlist.ErrInvalid, err)
			}
			if c.IsSet("ease-lambda") || (cfg.Family == model.FamilyEASE && c.IsSet("weighting")) {
				p := ease.DefaultParams()
				if c.IsSet("ease-lambda") {
					p.Lambda = easeLambda
				}
				if c.IsSet("weighting") {
					p.Weighting = feedback.Weighting(weighting)
				}
				cfg.EASE = &p
			}
			b, rdb, keys, err := g.openWithModels(c.Context)
			if err != nil {
				return err
			}
			defer b.Close(g)
			db := b.db
			pub := keyspace.NewPublisher(rdb, keys)
			pub.BatchSize = batchSize
			reg := prometheus.NewRegistry()
			metrics, err := pipeline.NewMetrics(reg)
			if err != nil {
				return err
			}
			res, runErr := pipeline.Run(c.Context, cfg, pipeline.Deps{
				Source: db, Registry: db, Locker: db, Publisher: pub, Artifacts: db,
				Logger: g.logger, Metrics: metrics,
				Progress: progressFor(c.App.ErrWriter, g.logger),
			})
			if res != nil {
				printRun(c.App.Writer, res)
			}
			if pushURL != "" && res != nil {
				// The push outlives an interrupted run: it reports the failure.
				ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Context), 10*time.Second)
				defer cancel()
				if err := pipeline.Push(ctx, pushURL, reg); err != nil {
					g.logger.Warn("metrics not pushed", "err", err)
				}
			}
			return runErr
		},
	}
}

// progressFor makes pipeline bars: redrawn on a terminal, log lines in a pod.
func progressFor(w io.Writer, logger *slog.Logger) func(string, int64) pipeline.Bar {
	return func(label string, total int64) pipeline.Bar { return progress.New(w, logger, label, total) }
}

// openRedis connects to the configured Redis and checks that it answers:
// a cluster with a master down (a pod being rescheduled, its replica not
// yet promoted) is used, with a warning; a publish that needs the lost
// master's slots fails on them and its rerun cleans up.
func (g *globals) openRedis(ctx context.Context) (redis.UniversalClient, keyspace.Keys, error) {
	rdb, err := keyspace.Dial(ctx, g.stores.RedisURL, 0, g.stores.RedisCluster)
	if err != nil {
		return nil, keyspace.Keys{}, err
	}
	if h, err := keyspace.CheckHealth(ctx, rdb); err == nil && h.Degraded() {
		g.logger.Warn("redis cluster degraded: the lost masters' slots fail until their replicas are promoted", "health", h.String())
	}
	return rdb, keyspace.NewKeys(g.stores.RedisPrefix), nil
}

// printRun writes a run's summary for a person (logs carry the details).
func printRun(w io.Writer, r *pipeline.Result) {
	switch {
	case r.DryRun && r.Gate.Publish:
		fmt.Fprintln(w, "dry run: the model passes the quality gate (not published)")
	case r.DryRun:
		fmt.Fprintf(w, "dry run: the model would be rejected: %s\n", r.Gate.Reason)
	default:
		fmt.Fprintf(w, "run %d: %s", r.RunID, r.Status)
		if r.Status == "published" || r.Status == "staged" {
			fmt.Fprintf(w, " as version %d", r.Version)
		}
		fmt.Fprintln(w)
		if r.Status == "staged" && r.Publish.Users > 0 {
			fmt.Fprintf(w, "  next:    batch experiment start --challenger %d --share 0.1 (readers stay on the current version until then)\n", r.Version)
		} else if r.Status == "staged" {
			fmt.Fprintf(w, "  next:    run the precompute Job with MODEL_VERSION=%d (docs/deploy.md); its last shard switches the pointer\n", r.Version)
		}
		if r.Reason != "" {
			fmt.Fprintf(w, "  reason:  %s\n", r.Reason)
		}
	}
	p := r.Params.ALS
	if e := r.Params.EASE; r.Params.Family == model.FamilyEASE && e != nil {
		fmt.Fprintf(w, "  params:  %s: EASE, λ %g, %s weighting, k %d\n", r.Params.Source, e.Lambda, e.Weighting, r.Params.K)
	} else if p.Factors > 0 {
		fmt.Fprintf(w, "  params:  %s: factors %d, iterations %d, λ %g, α %g, %s weighting, k %d\n",
			r.Params.Source, p.Factors, p.Iterations, p.Regularization, p.Alpha, p.Weighting, r.Params.K)
	}
	c := r.Counts
	fmt.Fprintf(w, "  data:    %s users, %s songs, %s reactions (%s entries), snapshot %s\n",
		progress.Group(int64(c.Users)), progress.Group(int64(c.Songs)), progress.Group(c.Reactions), progress.Group(int64(c.NNZ)),
		r.SnapshotAt.Format(time.RFC3339))
	if m := r.Metrics; len(m) > 0 {
		fmt.Fprintf(w, "  quality: NDCG@5 %.4f (popularity %.4f), precision@5 %.4f, recall@5 %.4f, MAP@5 %.4f, hit rate %.3f, coverage %.3f over %d users\n",
			m["ndcg_at_5"], m["baseline_ndcg_at_5"], m["precision_at_5"], m["recall_at_5"], m["map_at_5"], m["hit_rate_at_5"], m["coverage_at_5"], c.EvalUsers)
	}
	if v, ok := r.Metrics["imported_fold_in_ndcg_at_5"]; ok {
		fmt.Fprintf(w, "  factors: the imported ones score NDCG@5 %.4f with the holdout users folded in (popularity %.4f); optimistic, as they may have been trained on the holdout, so the quality line is the file's parameters fit on the training split\n",
			v, r.Metrics["imported_fold_in_baseline_ndcg_at_5"])
	}
	if c.KeysWritten > 0 {
		fmt.Fprintf(w, "  publish: %s user lists, %s keys, %.1f MB\n", progress.Group(int64(c.UsersPublished)), progress.Group(int64(c.KeysWritten)), float64(c.Bytes)/1e6)
	}
	if c.ArtifactBytes > 0 {
		fmt.Fprintf(w, "  artifact: %.1f MB stored (batch republish --version %d rebuilds Redis from it)\n", float64(c.ArtifactBytes)/1e6, r.Version)
	}
	fmt.Fprintf(w, "  seconds: %s\n", formatTimings(r.Timings))
}

// phaseOrder is the order phases run in, for printing.
var phaseOrder = []string{"resolve", "load", "split", "tune", "eval", "train", "topk", "artifact", "publish", "cleanup", "total"}

func formatTimings(t map[string]float64) string {
	var parts []string
	for _, p := range phaseOrder {
		if v, ok := t[p]; ok {
			parts = append(parts, fmt.Sprintf("%s %.2f", p, v))
		}
	}
	var rest []string
	for p := range t {
		if !slices.Contains(phaseOrder, p) {
			rest = append(rest, p)
		}
	}
	sort.Strings(rest)
	for _, p := range rest {
		parts = append(parts, fmt.Sprintf("%s %.2f", p, t[p]))
	}
	return strings.Join(parts, ", ")
}

// memoryLimit reads --memory-limit: a size, or auto (three quarters of the
// process's memory limit, else of the machine's memory, leaving room for
// the data and the lists beside EASE's matrices).
func memoryLimit(given string) (int64, error) {
	if !strings.EqualFold(strings.TrimSpace(given), "auto") {
		return config.ParseBytes(given)
	}
	limit := memlimit.Process()
	if limit <= 0 {
		limit = memlimit.Machine()
	}
	return limit / 4 * 3, nil
}
