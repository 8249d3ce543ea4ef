package command

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/setlist/setlist/batch/progress"
	"github.com/setlist/setlist/internal/store"
	"github.com/setlist/setlist/internal/synth"
)

// importStatus says what the import is doing, for the progress line: the
// percentage counts bytes read, so once reading is done the status is what
// moves.
func importStatus(p store.ImportProgress) string {
	switch p.Phase {
	case "read":
		return "reading and staging rows"
	case "users":
		return "merging users"
	case "songs":
		return "merging songs"
	case "reactions":
		if p.Items == 0 {
			return "merging reactions"
		}
		return fmt.Sprintf("merging %s rows into reactions", progress.Group(p.Items))
	case "index":
		return fmt.Sprintf("building index %d after the bulk load", p.Items)
	case "commit":
		return "committing"
	}
	return p.Phase
}

func importCommand(g *globals) *cli.Command {
	var path string
	var skipInvalid, nameUsers bool
	return &cli.Command{
		Name:  "import",
		Usage: "load a CSV of play counts (user_id,artist,track[,count]; plain or gzip) into the database",
		Description: "The file is a snapshot of counts: importing it again sets the same weights, and rows it does\n" +
			"not contain are left alone. Rows repeating a (user_id, artist, track) are summed. Either the whole\n" +
			"file is imported or, on the first bad row, nothing is (unless --skip-invalid).",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "csv", Usage: "CSV file to import, plain or gzip (detected by content); - reads stdin", EnvVars: []string{"SETLIST_IMPORT_CSV"}, Required: true, Destination: &path},
			&cli.BoolFlag{Name: "name-users", Usage: "after importing, give every user without a display name a generated, readable one (deterministic; for demo data with opaque ids such as data/sample.csv.gz)", EnvVars: []string{"SETLIST_IMPORT_NAME_USERS"}, Destination: &nameUsers},
			&cli.BoolFlag{Name: "skip-invalid", Usage: "skip malformed rows (and report them) instead of aborting", EnvVars: []string{"SETLIST_IMPORT_SKIP_INVALID"}, Destination: &skipInvalid},
		},
		Action: func(c *cli.Context) error {
			in, name, size, err := openInput(path, c.App.Reader)
			if err != nil {
				return err
			}
			defer in.Close()
			b, err := g.open(c.Context)
			if err != nil {
				return err
			}
			defer b.Close(g)
			db := b.db

			bar := progress.New(c.App.ErrWriter, g.logger, "import "+name, size, progress.WithUnit("rows"))
			sum, err := db.Import(c.Context, in, store.ImportOptions{
				Source:      name,
				SkipInvalid: skipInvalid,
				Progress: func(p store.ImportProgress) {
					if p.Phase == "read" {
						bar.Set(p.Bytes)
					} else {
						// Reading is done but the work is not: no
						// percentage rather than a 100 % that sits.
						bar.SetTotal(0)
					}
					bar.SetItems(p.Rows)
					bar.SetStatus(importStatus(p))
				},
			})
			if err != nil {
				bar.Abandon()
				// Import's errors already name the file (and line).
				return err
			}
			bar.Finish()
			printImportSummary(c.App.Writer, sum)
			if nameUsers {
				named, err := db.NameUsers(c.Context, synth.Namer())
				if err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "  named:     %s users without a display name\n", progress.Group(named))
			}
			for _, bad := range sum.SkippedRows {
				g.logger.Warn("skipped invalid row", "err", bad.Error())
			}
			return nil
		},
	}
}

// openInput opens path ("-" is stdin) and returns its size for the
// progress percentage, 0 when unknown (a pipe).
func openInput(path string, stdin io.Reader) (io.ReadCloser, string, int64, error) {
	if path == "-" {
		return io.NopCloser(stdin), "stdin", 0, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, "", 0, err // *PathError already names the file
	}
	var size int64
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		size = st.Size()
	}
	return f, path, size, nil
}

func printImportSummary(w io.Writer, s store.ImportSummary) {
	secs := s.Duration.Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(s.Rows+s.Skipped) / secs
	}
	fmt.Fprintf(w, "imported %s: %s rows in %.1fs (%s rows/s)\n", s.Source, progress.Group(s.Rows), secs, progress.Group(int64(rate)))
	fmt.Fprintf(w, "  users:     %s inserted, %s already present\n", progress.Group(s.Users.Inserted), progress.Group(s.Users.Unchanged))
	fmt.Fprintf(w, "  songs:     %s inserted, %s already present\n", progress.Group(s.Songs.Inserted), progress.Group(s.Songs.Unchanged))
	checked := ""
	if s.FKChecks != "" {
		checked = " (foreign keys checked " + s.FKChecks + ")"
	}
	fmt.Fprintf(w, "  reactions: %s inserted, %s updated, %s unchanged%s\n",
		progress.Group(s.Reactions.Inserted), progress.Group(s.Reactions.Updated), progress.Group(s.Reactions.Unchanged), checked)
	if s.RebuiltIndexes > 0 {
		fmt.Fprintf(w, "  indexes:   %d reactions indexes built once after the bulk load\n", s.RebuiltIndexes)
	}
	if s.Skipped > 0 {
		lines := make([]string, len(s.SkippedRows))
		for i, e := range s.SkippedRows {
			lines[i] = fmt.Sprint(e.Line)
		}
		more := ""
		if s.Skipped > int64(len(s.SkippedRows)) {
			more = ", ..."
		}
		fmt.Fprintf(w, "  skipped:   %s invalid rows (lines %s%s)\n", progress.Group(s.Skipped), strings.Join(lines, ", "), more)
	}
}
