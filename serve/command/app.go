// Package command defines the serve CLI and wires the server together. It is
// a package (not main) so tests can check Kubernetes manifests against the
// real flag definitions.
package command

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/urfave/cli/v2"

	"github.com/setlist/setlist/batch/config"
)

// NewApp builds the serve CLI.
func NewApp(version string) *cli.App {
	var (
		stores config.Stores
		logCfg config.Log
		addr   string
	)
	flags := append(stores.Flags(), logCfg.Flags()...)
	flags = append(flags, &cli.StringFlag{Name: "addr", Usage: "listen address", EnvVars: []string{"SETLIST_ADDR"}, Value: ":8080", Destination: &addr})
	return &cli.App{
		Name:           "serve",
		Usage:          "serve setlist's recommendations over HTTP",
		Version:        version,
		Flags:          flags,
		ExitErrHandler: func(*cli.Context, error) {},
		Action: func(c *cli.Context) error {
			logger, err := logCfg.Logger(os.Stderr)
			if err != nil {
				return err
			}
			app := fiber.New(fiber.Config{DisableStartupMessage: true})
			app.Get("/healthz", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "ok"}) })
			errc := make(chan error, 1)
			go func() { errc <- app.Listen(addr) }()
			logger.Info("serving", "addr", addr)
			select {
			case err := <-errc:
				return err
			case <-c.Context.Done():
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				return app.ShutdownWithContext(ctx)
			}
		},
	}
}

// Run runs app and turns its error into an exit code, logging it once.
func Run(ctx context.Context, app *cli.App, args []string) int {
	if err := app.RunContext(ctx, args); err != nil && !errors.Is(err, context.Canceled) {
		slog.Error("serve failed", "err", err)
		return 1
	}
	return 0
}
