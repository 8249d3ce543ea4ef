package command

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/setlist/setlist/batch/modelstore"
	"github.com/setlist/setlist/batch/pipeline"
)

func rollbackCommand(g *globals) *cli.Command {
	var reason string
	return &cli.Command{
		Name:  "rollback",
		Usage: "serve the previous model version again (swaps current and previous; run again to roll forward)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "reason", Usage: "why, recorded on the rolled-back run", EnvVars: []string{"SETLIST_ROLLBACK_REASON"}, Value: "rolled back by hand", Destination: &reason},
		},
		Action: func(c *cli.Context) error {
			b, rdb, keys, err := g.openWithModels(c.Context)
			if err != nil {
				return err
			}
			defer b.Close(g)
			ptr, err := pipeline.Rollback(c.Context, modelstore.NewPublisher(rdb, keys), b.db, reason)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "rolled back: readers now use version %d; version %d is kept as previous (rollback again to restore it)\n",
				ptr.Current, ptr.Previous)
			return nil
		},
	}
}
