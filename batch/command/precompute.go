package command

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/setlist/setlist/batch/shard"
	"github.com/setlist/setlist/internal/keyspace"
)

// precomputeCommand is one shard of the scale-out precompute, run by an
// Indexed Job (cronjobs/precompute/indexed-job.yaml): pod k of N folds in
// its range of users against a staged version's item side and writes their
// lists; the pod that completes the set switches the pointer.
func precomputeCommand(g *globals) *cli.Command {
	var (
		version int64
		cfg     shard.Config
	)
	return &cli.Command{
		Name:  "precompute",
		Usage: "write one shard of a staged model version's per-user top-K (the Indexed Job's command)",
		Description: "Users with reactions (created before the model's snapshot) are ordered by id and split into --shards\n" +
			"contiguous ranges; this run folds in range --shard-index against version --version's stored item side and\n" +
			"writes the lists. Fold-in is exact and deterministic, so any shard count writes the same bytes. With\n" +
			"--switch the run that completes the set of shards switches readers to the version.",
		Flags: []cli.Flag{
			&cli.Int64Flag{Name: "version", Usage: "the staged model version (run id)", EnvVars: []string{"SETLIST_PRECOMPUTE_VERSION"}, Required: true, Destination: &version},
			&cli.IntFlag{Name: "shards", Usage: "number of shards (the Indexed Job's completions)", EnvVars: []string{"SETLIST_PRECOMPUTE_SHARDS"}, Value: 1, Destination: &cfg.Shards},
			&cli.IntFlag{Name: "shard-index", Usage: "this shard, 0-based", EnvVars: []string{"SETLIST_PRECOMPUTE_SHARD_INDEX", "JOB_COMPLETION_INDEX"}, Destination: &cfg.Index},
			&cli.IntFlag{Name: "k", Usage: "list length (0: the version's)", EnvVars: []string{"SETLIST_PRECOMPUTE_K"}, Destination: &cfg.K},
			&cli.BoolFlag{Name: "switch", Usage: "switch readers to the version when this run completes the set of shards", EnvVars: []string{"SETLIST_PRECOMPUTE_SWITCH"}, Destination: &cfg.Switch},
			&cli.IntFlag{Name: "publish-batch", Usage: "Redis commands per pipelined round trip", EnvVars: []string{"SETLIST_PRECOMPUTE_PUBLISH_BATCH"}, Value: keyspace.DefaultBatchSize, Destination: &cfg.BatchSize},
		},
		Action: func(c *cli.Context) error {
			cfg.Version = keyspace.Version(version)
			if err := cfg.Validate(); err != nil {
				return err
			}
			if err := g.postgresOnly("precompute"); err != nil {
				return err
			}
			db, err := g.openDB(c.Context, false)
			if err != nil {
				return err
			}
			defer db.Close()
			rdb, keys, err := g.openRedis(c.Context)
			if err != nil {
				return err
			}
			defer rdb.Close()
			res, err := shard.Run(c.Context, db, rdb, keys.Prefix(), cfg)
			if err != nil {
				return err
			}
			g.logger.Info("precompute shard done", "version", version, "shard", cfg.Index, "shards", cfg.Shards,
				"range", fmt.Sprintf("[%d,%d) of %d", res.Lo, res.Hi, res.Users), "written", res.Written,
				"shards_done", res.Done, "switched", res.Switched)
			fmt.Fprintf(c.App.Writer, "shard %d/%d of version %d: %d lists written (users %d..%d of %d); %d of %d shards done",
				cfg.Index, cfg.Shards, version, res.Written, res.Lo, res.Hi, res.Users, res.Done, cfg.Shards)
			if res.Switched {
				fmt.Fprintf(c.App.Writer, "; readers now use version %d", version)
			}
			fmt.Fprintln(c.App.Writer)
			return nil
		},
	}
}
