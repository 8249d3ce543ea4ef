package command

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"

	"github.com/setlist/setlist/batch/progress"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/pipeline"
	"github.com/setlist/setlist/internal/store"
)

func refreshCommand(g *globals) *cli.Command {
	var (
		cfg       pipeline.RefreshConfig
		batchSize int
		pushURL   string
	)
	env := func(name string) []string { return []string{"SETLIST_REFRESH_" + name} }
	return &cli.Command{
		Name:  "refresh",
		Usage: "fold songs first played since the current version into it, and update the lists they enter (the 15-minute CronJob's command)",
		Description: "Songs with at least --min-listeners listeners among the version's users get an item vector solved from\n" +
			"their user vectors; every user whose stored list a new song beats the last of is rewritten in place. Nothing new:\n" +
			"nothing written. An EASE version is skipped (new songs wait for the next train).\n" +
			"Exit codes: 0 done or skipped; 4 a train holds the lock (or wait with --wait-lock); 1 any other failure.",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "min-listeners", Usage: "users of the version who must have played or liked a new song before it is folded in", EnvVars: env("MIN_LISTENERS"), Value: pipeline.DefaultMinListeners, Destination: &cfg.MinListeners},
			&cli.BoolFlag{Name: "wait-lock", Usage: "wait for a running batch train instead of exiting with code 4", EnvVars: env("WAIT_LOCK"), Destination: &cfg.WaitLock},
			&cli.IntFlag{Name: "publish-batch", Usage: "Redis commands per pipelined round trip", EnvVars: env("PUBLISH_BATCH"), Value: keyspace.DefaultBatchSize, Destination: &batchSize},
			&cli.StringFlag{Name: "pushgateway-url", Usage: "push the refresh's metrics to this Prometheus Pushgateway", EnvVars: []string{"SETLIST_PUSHGATEWAY_URL"}, Destination: &pushURL},
		},
		Action: func(c *cli.Context) error {
			if cfg.MinListeners < 1 {
				return usageError(fmt.Sprintf("--min-listeners must be ≥ 1, got %d", cfg.MinListeners))
			}
			b, rdb, keys, err := g.openWithModels(c.Context)
			if err != nil {
				return err
			}
			defer b.Close(g)
			pub := keyspace.NewPublisher(rdb, keys)
			pub.BatchSize = batchSize
			reg := prometheus.NewRegistry()
			metrics, err := pipeline.NewRefreshMetrics(reg)
			if err != nil {
				return err
			}
			res, err := pipeline.Refresh(c.Context, cfg, pipeline.RefreshDeps{
				Source: b.db, Locker: b.db, Artifacts: b.db, Publisher: pub, Logger: g.logger, Metrics: metrics,
			})
			if res.ID != 0 {
				printRefresh(c, res)
			}
			if pushURL != "" && (res.ID != 0 || res.Status != "") {
				ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Context), 10*time.Second)
				defer cancel()
				if perr := pipeline.Push(ctx, pushURL, reg); perr != nil {
					g.logger.Warn("metrics not pushed", "err", perr)
				}
			}
			return err
		},
	}
}

func printRefresh(c *cli.Context, r pipeline.RefreshResult) {
	w := c.App.Writer
	switch {
	case r.Status == store.RefreshSkipped:
		fmt.Fprintf(w, "refresh %d of version %d: skipped: %s\n", r.ID, r.Version, r.Reason)
	case r.Status == store.RefreshDone && len(r.Songs) == 0:
		fmt.Fprintf(w, "refresh %d of version %d: nothing new (%d songs wait for more listeners); nothing written\n", r.ID, r.Version, r.Waiting)
	case r.Status == store.RefreshDone:
		rep := r.Report
		fmt.Fprintf(w, "refresh %d of version %d: %d songs folded in %v, %s users' lists updated of %s read (%s keys, %.1f MB), %d songs wait for more listeners, %.2f s\n",
			r.ID, r.Version, len(r.Songs), r.Songs, progress.Group(int64(rep.Updated)), progress.Group(int64(rep.Read)),
			progress.Group(int64(rep.Keys)), float64(rep.Bytes)/1e6, r.Waiting, r.Seconds)
	default:
		fmt.Fprintf(w, "refresh %d of version %d: failed\n", r.ID, r.Version)
	}
}
