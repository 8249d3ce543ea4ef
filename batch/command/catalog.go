package command

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/batch/progress"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/store"
)

// catalogDB is the catalog part of the system of record the catalog
// subcommands write.
type catalogDB interface {
	ImportCatalog(ctx context.Context, r io.Reader, opts store.ImportOptions) (store.CatalogImportSummary, error)
	SetAvailable(ctx context.Context, ids []setlist.SongID, available bool) (int64, error)
}

// catalogNotifier announces a committed catalog change to every serve
// replica (the key space's "catalog changed" event).
type catalogNotifier interface {
	CatalogChanged(ctx context.Context, seq int64) error
}

func catalogCommand(g *globals) *cli.Command {
	return &cli.Command{
		Name:  "catalog",
		Usage: "manage the song catalog: import metadata, take songs down (hide) or bring them back (show)",
		Description: "Every change is committed in one transaction, takes the next catalog change number and is then\n" +
			"announced to every serve replica (the key space's catalog event, on --redis-url), which stop or\n" +
			"resume serving the songs within a second; no training is needed.",
		Subcommands: []*cli.Command{catalogImportCommand(g), availabilityCommand(g, false), availabilityCommand(g, true)},
	}
}

func catalogImportCommand(g *globals) *cli.Command {
	var path string
	return &cli.Command{
		Name:  "import",
		Usage: "upsert song metadata from a CSV (" + store.CatalogColumns + "; plain or gzip)",
		Description: "A row updates the song with its external_id, else the song with its artist and track, else\n" +
			"creates the song. A column the file lacks leaves that metadata alone; an empty tags or released\n" +
			"cell clears it. The first bad row (named SOURCE:LINE, field) aborts the whole file: nothing is\n" +
			"written. Importing the same file again changes nothing.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "csv", Usage: "catalog CSV file, plain or gzip (detected by content); - reads stdin", EnvVars: []string{"SETLIST_CATALOG_CSV"}, Required: true, Destination: &path},
		},
		Action: func(c *cli.Context) error {
			in, name, _, err := openInput(path, c.App.Reader)
			if err != nil {
				return err
			}
			defer in.Close()
			return withCatalog(c, g, func(db catalogDB) (int64, error) {
				sum, err := db.ImportCatalog(c.Context, in, store.ImportOptions{Source: name})
				if err != nil {
					return 0, err
				}
				fmt.Fprintf(c.App.Writer, "imported catalog %s: %s rows in %.1fs\n  songs: %s inserted, %s updated, %s unchanged\n",
					sum.Source, progress.Group(sum.Rows), sum.Duration.Seconds(),
					progress.Group(sum.Songs.Inserted), progress.Group(sum.Songs.Updated), progress.Group(sum.Songs.Unchanged))
				return sum.Seq, nil
			})
		},
	}
}

func availabilityCommand(g *globals, available bool) *cli.Command {
	name, usage, done := "hide", "take songs down: no answer shows them, on every replica within a second (their reactions stay training signal)", "hidden"
	if available {
		name, usage, done = "show", "bring hidden songs back into every answer", "shown"
	}
	return &cli.Command{
		Name:      name,
		Usage:     usage,
		ArgsUsage: "SONG_ID...",
		Description: "All or nothing: an unknown song id fails the command (exit 1) and changes no song.\n" +
			"Songs that already are " + done + " are left as they are.",
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return usageError(fmt.Sprintf("batch catalog %s needs at least one SONG_ID", name))
			}
			ids := make([]setlist.SongID, c.NArg())
			for i, a := range c.Args().Slice() {
				n, err := strconv.ParseInt(a, 10, 64)
				if err != nil || n <= 0 {
					return usageError(fmt.Sprintf("SONG_ID must be a positive integer, got %q", a))
				}
				ids[i] = setlist.SongID(n)
			}
			return withCatalog(c, g, func(db catalogDB) (int64, error) {
				seq, err := db.SetAvailable(c.Context, ids, available)
				if err != nil {
					return 0, err
				}
				if seq == 0 {
					fmt.Fprintf(c.App.Writer, "nothing changed: the songs already are %s\n", done)
				} else {
					fmt.Fprintf(c.App.Writer, "%s %d songs (catalog change %d)\n", done, len(ids), seq)
				}
				return seq, nil
			})
		},
	}
}

// withCatalog opens the database and the key space (both before writing,
// so an unreachable Redis fails the command before anything changes), runs
// write and announces the change number it returns (0: nothing changed,
// nothing to announce). The change is committed by then: a failed
// announcement is an error to see, but the replicas still pick the change
// up at their periodic check of the catalog number.
func withCatalog(c *cli.Context, g *globals, write func(catalogDB) (int64, error)) error {
	b, rdb, keys, err := g.openWithModels(c.Context)
	if err != nil {
		return err
	}
	defer b.Close(g)
	seq, err := write(b.db)
	if err != nil || seq == 0 {
		return err
	}
	var note any = keyspace.NewPublisher(rdb, keys)
	n, ok := note.(catalogNotifier)
	if !ok {
		g.logger.Warn("catalog changed; this build cannot announce it, replicas see it at their next check", "seq", seq)
		return nil
	}
	if err := n.CatalogChanged(c.Context, seq); err != nil {
		return fmt.Errorf("catalog change %d is committed, but announcing it failed (replicas see it at their next check): %w", seq, err)
	}
	g.logger.Info("catalog change announced", "seq", seq)
	return nil
}
