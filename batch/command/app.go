// Package command defines the batch CLI: its subcommands and their flags. It
// is a package (not main) so tests can parse Kubernetes manifests' args with
// the real flag definitions.
package command

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/setlist/setlist/internal/config"
	"github.com/setlist/setlist/internal/postgres"
)

// globals are the settings every subcommand shares.
type globals struct {
	stores config.Stores
	log    config.Log
	logger *slog.Logger
	// defaultDB is set when neither --database-url nor DATABASE_URL was
	// given: the logs say the default database is the one used.
	defaultDB bool
}

// exitCoder lets a subcommand choose its exit code (for example "rejected by
// the quality gate") without printing a second error.
type exitCoder interface{ ExitCode() int }

// usageError is a command line batch cannot run: exit code 2, as flag
// parsing errors have by convention (usage.go makes every kind one).
type usageError string

func (e usageError) Error() string { return string(e) }
func (usageError) ExitCode() int   { return 2 }

// NewApp builds the batch CLI. Each subcommand lives in a file named after it.
func NewApp(version string) *cli.App {
	g := &globals{}
	app := &cli.App{
		Name:    "batch",
		Usage:   "train, tune and publish setlist's recommendation model",
		Version: version,
		Flags:   append(g.stores.Flags(), g.log.Flags()...),
		Before: func(c *cli.Context) error {
			logger, err := g.log.Logger(c.App.ErrWriter)
			if err != nil {
				return err
			}
			g.logger = logger
			g.defaultDB = !c.IsSet("database-url")
			return nil
		},
		Commands: []*cli.Command{
			migrateCommand(g),
			importCommand(g),
			trainCommand(g),
			refreshCommand(g),
			tuneCommand(g),
			statusCommand(g),
			rollbackCommand(g),
			runsCommand(g),
			synthCommand(g),
			precomputeCommand(g),
			republishCommand(g),
			artifactsCommand(g),
			pinCommand(g, true),
			pinCommand(g, false),
			exportCommand(g),
			importModelCommand(g),
			experimentCommand(g),
			catalogCommand(g),
		},
		// No subcommand is a usage error: the help goes to stderr and the
		// exit code is 2, so a script that forgot the subcommand fails.
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return unknownCommand("batch", c.Args().First(), c.App.Commands)
			}
			w := c.App.Writer
			c.App.Writer = c.App.ErrWriter
			defer func() { c.App.Writer = w }()
			if err := cli.ShowAppHelp(c); err != nil {
				return err
			}
			return usageError("a subcommand is required (the list is above)")
		},
		// Errors are logged once, in Run, not by the library.
		ExitErrHandler: func(*cli.Context, error) {},
	}
	app.ErrWriter = os.Stderr
	guardUsage(app)
	return app
}

// Run runs app with args and turns its error into an exit code, logging the
// error once: this is the edge of the program.
func Run(ctx context.Context, app *cli.App, args []string) int {
	err := app.RunContext(ctx, hoistGlobalFlags(app, args))
	if err == nil {
		return 0
	}
	code := 1
	var ec exitCoder
	if errors.As(err, &ec) {
		code = ec.ExitCode()
	}
	logger := slog.New(slog.NewTextHandler(app.ErrWriter, nil))
	if errors.Is(err, context.Canceled) {
		logger.Error("interrupted", "err", err)
		return 130
	}
	logger.Error("batch failed", "err", err)
	return code
}

// openDB opens and migrates the database: every subcommand that touches data
// migrates first, so a new release needs no separate step. Only migrate
// creates a database (create): the others fail naming the database and
// its server, so a missing or mistyped DATABASE_URL cannot quietly
// create and fill an empty one.
func (g *globals) openDB(ctx context.Context, create bool) (*postgres.DB, error) {
	url := g.stores.DatabaseURL
	from := "--database-url"
	if g.defaultDB {
		from = "the default (neither --database-url nor DATABASE_URL is set)"
	}
	if create {
		created, err := postgres.CreateDatabase(ctx, url)
		if err != nil {
			return nil, err
		}
		if created {
			g.logger.Info("created database", "database", postgres.DatabaseName(url), "server", postgres.Server(url), "url", from)
		}
	}
	db, applied, err := postgres.OpenMigrated(ctx, url)
	if err != nil {
		return nil, err
	}
	g.logger.Info("database", "database", db.Name(), "server", postgres.Server(url), "url", from)
	if len(applied) > 0 {
		g.logger.Info("migrated database", "database", db.Name(), "applied", applied)
	}
	return db, nil
}

func migrateCommand(g *globals) *cli.Command {
	return &cli.Command{
		Name:  "migrate",
		Usage: "create the database if missing and apply schema migrations (the only command that creates a database)",
		Action: func(c *cli.Context) error {
			b, err := g.openBackend(c.Context, true)
			if err != nil {
				return err
			}
			b.Close(g)
			fmt.Fprintln(c.App.Writer, "schema is up to date")
			return nil
		},
	}
}
