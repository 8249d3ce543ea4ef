// Command batch is setlist's train-and-tune CLI: it migrates the schema,
// imports reaction CSVs, trains and tunes the ALS model and publishes every
// user's top-K to Redis. A Kubernetes CronJob runs it; people run it by hand.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/setlist/setlist/batch/command"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := command.Run(ctx, command.NewApp(version), os.Args)
	stop()
	os.Exit(code)
}
