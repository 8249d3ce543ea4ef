package command

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/model"
	"github.com/setlist/setlist/internal/registry"
)

func rollbackCommand(g *globals) *cli.Command {
	var (
		reason string
		to     int64
	)
	return &cli.Command{
		Name:  "rollback",
		Usage: "serve the previous model version again (swaps current and previous; run again to roll forward), or any kept version with --to",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "reason", Usage: "why, recorded on the rolled-back run", EnvVars: []string{"SETLIST_ROLLBACK_REASON"}, Value: "rolled back by hand", Destination: &reason},
			&cli.Int64Flag{Name: "to", Usage: "version to serve: any version whose artifact is kept (batch artifacts lists them), republished from it unless its keys are in Redis", EnvVars: []string{"SETLIST_ROLLBACK_TO"}, Destination: &to},
		},
		Action: func(c *cli.Context) error {
			if c.IsSet("to") {
				if to <= 0 {
					return fmt.Errorf("--to must be a version > 0, got %d: %w", to, setlist.ErrInvalid)
				}
				return restore(c, g, model.Version(to), 0, keyspace.DefaultBatchSize, false, reason)
			}
			b, rdb, keys, err := g.openWithModels(c.Context)
			if err != nil {
				return err
			}
			defer b.Close(g)
			ptr, err := registry.Rollback(c.Context, keyspace.NewPublisher(rdb, keys), b.db, reason)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "rolled back: readers now use version %d; version %d is kept as previous (rollback again to restore it)\n",
				ptr.Current, ptr.Previous)
			return nil
		},
	}
}
