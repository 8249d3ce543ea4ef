package command

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/setlist/setlist/batch/progress"
	"github.com/setlist/setlist/internal/synth"
)

func synthCommand(g *globals) *cli.Command {
	var cfg synth.Config
	var out string
	env := func(name string) []string { return []string{"SETLIST_SYNTH_" + name} }
	return &cli.Command{
		Name:  "synth",
		Usage: "write seeded synthetic listening data (Zipf popularity, taste clusters) as an import CSV",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "users", Usage: "listeners", EnvVars: env("USERS"), Value: 10000, Destination: &cfg.Users},
			&cli.IntFlag{Name: "songs", Usage: "catalogue size", EnvVars: env("SONGS"), Value: 5000, Destination: &cfg.Songs},
			&cli.Int64Flag{Name: "reactions", Usage: "rows", EnvVars: env("REACTIONS"), Value: 500000, Destination: &cfg.Reactions},
			&cli.IntFlag{Name: "clusters", Usage: "planted taste clusters", EnvVars: env("CLUSTERS"), Value: 20, Destination: &cfg.Clusters},
			&cli.Float64Flag{Name: "zipf", Usage: "popularity exponent (> 1)", EnvVars: env("ZIPF"), Value: 1.1, Destination: &cfg.Zipf},
			&cli.Uint64Flag{Name: "seed", Usage: "same seed, same data", EnvVars: env("SEED"), Value: 1, Destination: &cfg.Seed},
			&cli.StringFlag{Name: "out", Usage: "file to write (gzip if it ends in .gz); - is stdout", EnvVars: env("OUT"), Value: "-", Destination: &out},
		},
		Action: func(c *cli.Context) error {
			var w io.Writer = c.App.Writer
			var closers []io.Closer
			if out != "-" {
				f, err := os.Create(out)
				if err != nil {
					return err
				}
				defer f.Close()
				bw := bufio.NewWriterSize(f, 1<<20)
				w = bw
				if strings.HasSuffix(out, ".gz") {
					zw, _ := gzip.NewWriterLevel(bw, gzip.BestSpeed)
					w = zw
					closers = append(closers, zw)
				}
				closers = append(closers, flusher{bw}, f)
			}
			st, err := synth.Write(w, cfg)
			for _, cl := range closers {
				if cerr := cl.Close(); err == nil && cerr != nil {
					err = fmt.Errorf("write %s: %w", out, cerr)
				}
			}
			if err != nil {
				return err
			}
			g.logger.Info("synthetic data written", "out", out, "rows", progress.Group(st.Rows), "users", st.Users)
			return nil
		},
	}
}

type flusher struct{ *bufio.Writer }

func (f flusher) Close() error { return f.Flush() }
