// Command serve-playground is setlist in one process with no servers
// (`make run`): serve's API and web page over the embedded store, importing
// the committed sample and training a first model on its first start.
// Production serve (../) links none of it.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/setlist/setlist/serve/command"
	"github.com/setlist/setlist/serve/internal/playground"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := command.Run(ctx, playground.NewApp(version), os.Args)
	stop()
	os.Exit(code)
}
