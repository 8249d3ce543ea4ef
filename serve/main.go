// Command serve is setlist's HTTP layer: the REST API over Redis with on-demand
// fold-in, the web page, health and metrics.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/setlist/setlist/serve/command"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := command.Run(ctx, command.NewApp(version), os.Args)
	stop()
	os.Exit(code)
}
