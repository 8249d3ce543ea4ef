package command

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/pipeline"
)

func statusCommand(g *globals) *cli.Command {
	var limit int
	return &cli.Command{
		Name:  "status",
		Usage: "show the published model version, its quality and age, and the last runs",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "limit", Usage: "runs to list", EnvVars: []string{"SETLIST_STATUS_LIMIT"}, Value: 5, Destination: &limit},
		},
		Action: func(c *cli.Context) error {
			b, rdb, keys, err := g.openWithModels(c.Context)
			if err != nil {
				return err
			}
			defer b.Close(g)
			db := b.db
			pub := keyspace.NewPublisher(rdb, keys)
			ptr, err := pub.Pointers(c.Context)
			if err != nil {
				return err
			}
			w := c.App.Writer
			if ptr.Current == 0 {
				fmt.Fprintf(w, "no model is published under prefix %q\n", keys.Prefix())
			} else {
				meta, err := pub.Meta(c.Context, ptr.Current)
				if err != nil && !errors.Is(err, setlist.ErrNotFound) {
					return err
				}
				fmt.Fprintf(w, "current version: %d (previous %s)\n", ptr.Current, versionOrNone(ptr.Previous))
				if err == nil {
					age := time.Since(meta.TrainedAt).Round(time.Second)
					fmt.Fprintf(w, "  trained %s (%s ago), data snapshot %s\n", meta.TrainedAt.Format(time.RFC3339), age, meta.SnapshotAt.Format(time.RFC3339))
					fmt.Fprintf(w, "  %d users with top-%d lists, %d songs, %d keys\n", meta.Users, meta.K, meta.Items, meta.Keys)
					m := meta.Metrics
					fmt.Fprintf(w, "  NDCG@5 %.4f (popularity %.4f), precision@5 %.4f, recall@5 %.4f, hit rate %.3f\n",
						m["ndcg_at_5"], m["baseline_ndcg_at_5"], m["precision_at_5"], m["recall_at_5"], m["hit_rate_at_5"])
				}
				if run, err := db.Run(c.Context, int64(ptr.Current)); err == nil {
					var p pipeline.RunParams
					if json.Unmarshal(run.Params, &p) == nil && p.Tuning != nil {
						fmt.Fprintf(w, "  parameters from the search of %s (batch runs --trials %d)\n", searchSummary(p.Tuning.Run, p.Tuning), p.Tuning.Run)
					}
				}
			}
			runs, err := db.Runs(c.Context, limit)
			if err != nil {
				return err
			}
			fmt.Fprintln(w)
			return printRuns(w, runs, nil, 0)
		},
	}
}

func versionOrNone(v keyspace.Version) string {
	if v == 0 {
		return "none"
	}
	return fmt.Sprint(v)
}
