package command

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/redis/go-redis/v9"
	"github.com/urfave/cli/v2"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/batch/config"
	"github.com/setlist/setlist/batch/modelstore"
	"github.com/setlist/setlist/batch/pipeline"
	"github.com/setlist/setlist/batch/store"
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

// resolve makes the playground default to the embedded store; an explicit
// --store (or SETLIST_STORE) wins, so the same bootstrap runs against
// PostgreSQL and Redis too.
func (p *Playground) resolve(c *cli.Context, s *config.Stores) {
	if p.Enabled && !c.IsSet("store") {
		s.Backend = config.StoreEmbedded
	}
}

// bootstrap prepares the playground: nothing when a model is published,
// otherwise import the sample (a snapshot: importing it again changes
// nothing) and run the batch pipeline with its defaults, which train the
// sample in a few seconds.
func (p Playground) bootstrap(ctx context.Context, db database, rdb *redis.Client, prefix string, logger *slog.Logger) error {
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
	logger.Info("playground: sample imported", "source", sum.Source, "rows", sum.Rows,
		"users", sum.Users.Total(), "songs", sum.Songs.Total(), "seconds", sum.Duration.Seconds())
	logger.Info("playground: training the first model (default parameters)")
	res, err := pipeline.Run(ctx, pipeline.Config{Notes: "playground first start"}, pipeline.Deps{
		Source: db, Registry: db, Locker: db, Publisher: modelstore.NewPublisher(rdb, modelstore.NewKeys(prefix)), Logger: logger,
	})
	if err != nil {
		return fmt.Errorf("playground: train: %w", err)
	}
	logger.Info("playground: model published", "version", res.Version, "ndcg_at_5", res.Metrics["ndcg_at_5"],
		"seconds", res.Timings["total"])
	return nil
}
