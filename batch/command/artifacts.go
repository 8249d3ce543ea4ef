package command

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/batch/progress"
	"github.com/setlist/setlist/internal/artifact"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/model"
	"github.com/setlist/setlist/internal/pipeline"
	"github.com/setlist/setlist/internal/store"
)

// keepFlag is the artifact retention every publishing command takes.
func keepFlag(dst *int) cli.Flag {
	return &cli.IntFlag{Name: "keep", Usage: "model artifacts kept (the newest; pinned ones and the live versions are kept besides)",
		EnvVars: []string{"SETLIST_ARTIFACTS_KEEP"}, Value: pipeline.DefaultKeep, Destination: dst}
}

// restore takes the training lock (a restore publishes like a run) and
// puts version v back (artifact.Restore); v 0 means the registry's
// published run.
func restore(c *cli.Context, g *globals, v model.Version, threads, batchSize int, wait bool, reason string) error {
	b, rdb, keys, err := g.openWithModels(c.Context)
	if err != nil {
		return err
	}
	defer b.Close(g)
	db := b.db
	release, err := db.LockTraining(c.Context, wait, func(holder string) {
		g.logger.Info("waiting for the training lock", "holder", holder)
	})
	if err != nil {
		return fmt.Errorf("take training lock: %w", err)
	}
	defer release()
	if v == 0 {
		last, err := db.LastPublished(c.Context)
		if errors.Is(err, setlist.ErrNotFound) {
			return fmt.Errorf("no published run in the registry: give --version: %w", err)
		}
		if err != nil {
			return err
		}
		v = model.Version(last.ID)
	}
	pub := keyspace.NewPublisher(rdb, keys)
	pub.BatchSize = batchSize
	bar := progress.New(c.App.ErrWriter, g.logger, "republish", 0)
	res, err := pipeline.Restore(c.Context, pipeline.RestoreDeps{
		Artifacts: db, Registry: db, Publisher: pub, Logger: g.logger,
		Progress: func(n int) { bar.Set(int64(n)) },
	}, v, threads, reason)
	if err != nil {
		bar.Abandon() // nothing was republished: no "finished" line
		return restoreHint(c.Context, db, v, err)
	}
	bar.Finish()
	w := c.App.Writer
	switch res.How {
	case pipeline.RestoredAlready:
		fmt.Fprintf(w, "version %d is already served (previous %s); nothing to do\n", v, versionOrNone(res.Previous))
	case pipeline.RestoredSwapped:
		fmt.Fprintf(w, "readers now use version %d (swapped with previous; version %d is kept as previous)\n", v, res.Previous)
	default:
		r := res.Report
		fmt.Fprintf(w, "republished version %d from its artifact: %s user lists, %s keys, %.1f MB; previous %s\n",
			v, progress.Group(int64(r.Users)), progress.Group(int64(r.Keys)), float64(r.Bytes)/1e6, versionOrNone(res.Previous))
		fmt.Fprintf(w, "  seconds: load %.2f, lists %.2f, publish %.2f, total %.2f\n",
			res.Timings["load"], res.Timings["lists"], res.Timings["publish"], res.Timings["total"])
	}
	if res.RolledBack != 0 {
		fmt.Fprintf(w, "  registry: run %d marked rolled back (%s), run %d published\n", res.RolledBack, reason, v)
	}
	return nil
}

// restoreHint explains a restore that found no artifact for v: the run
// never published one (a search, a rejected or failed run) or retention
// deleted it. batch artifacts lists what can be restored.
func restoreHint(ctx context.Context, db database, v model.Version, err error) error {
	if !errors.Is(err, setlist.ErrNotFound) {
		return err
	}
	const list = "batch artifacts lists the versions that can be restored"
	r, rerr := db.Run(ctx, int64(v))
	switch {
	case errors.Is(rerr, setlist.ErrNotFound):
		return fmt.Errorf("no run %d in the registry; %s: %w", v, list, err)
	case rerr != nil:
		return errors.Join(err, rerr)
	case r.Status == store.RunTuned:
		return fmt.Errorf("run %d is a search (batch tune): it publishes no version, so there is nothing to restore; "+
			"the next batch train trains with its pick; %s: %w", v, list, err)
	case r.Status == store.RunRejected || r.Status == store.RunFailed || r.Status == store.RunRunning:
		return fmt.Errorf("run %d is %s: it published no version; %s: %w", v, r.Status, list, err)
	default:
		return fmt.Errorf("version %d's artifact is no longer kept (retention keeps --keep, the pinned and the live ones: batch pin); %s: %w", v, list, err)
	}
}

func republishCommand(g *globals) *cli.Command {
	var (
		version        int64
		threads, batch int
		wait           bool
	)
	env := func(name string) []string { return []string{"SETLIST_REPUBLISH_" + name} }
	return &cli.Command{
		Name:  "republish",
		Usage: "rebuild a version's Redis keys from its stored artifact and switch readers to it (after Redis lost its data)",
		Description: "Every user's list is recomputed from the stored factors; the registry's published run is the default.\n" +
			"A version other than the registry's published one is recorded as a rollback to it.",
		Flags: []cli.Flag{
			&cli.Int64Flag{Name: "version", Usage: "version to republish (0: the registry's published run)", EnvVars: env("VERSION"), Destination: &version},
			&cli.IntFlag{Name: "threads", Usage: "worker threads for the lists (0: GOMAXPROCS)", EnvVars: env("THREADS"), Destination: &threads},
			&cli.IntFlag{Name: "publish-batch", Usage: "Redis commands per pipelined round trip", EnvVars: env("PUBLISH_BATCH"), Value: keyspace.DefaultBatchSize, Destination: &batch},
			&cli.BoolFlag{Name: "wait-lock", Usage: "wait for a running batch train instead of failing", EnvVars: env("WAIT_LOCK"), Destination: &wait},
		},
		Action: func(c *cli.Context) error {
			if version < 0 {
				return fmt.Errorf("--version must be > 0, got %d: %w", version, setlist.ErrInvalid)
			}
			return restore(c, g, model.Version(version), threads, batch, wait, fmt.Sprintf("republished version %d", version))
		},
	}
}

func artifactsCommand(g *globals) *cli.Command {
	return &cli.Command{
		Name:  "artifacts",
		Usage: "list the stored model artifacts (what republish and rollback --to can restore)",
		Action: func(c *cli.Context) error {
			b, err := g.open(c.Context)
			if err != nil {
				return err
			}
			defer b.Close(g)
			list, err := b.db.Artifacts(c.Context)
			if err != nil {
				return err
			}
			if len(list) == 0 {
				fmt.Fprintln(c.App.Writer, "no artifacts stored (batch train stores one with every version it publishes)")
				return nil
			}
			tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VERSION\tFAMILY\tMB\tSHA256\tPINNED\tCREATED")
			for _, a := range list {
				pinned := ""
				if a.Pinned {
					pinned = "pinned"
				}
				fmt.Fprintf(tw, "%d\t%s\t%.1f\t%s…\t%s\t%s\n", a.Version, a.Family, float64(a.Bytes)/1e6, a.SHA256[:12], pinned, a.CreatedAt.UTC().Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
}

func pinCommand(g *globals, pin bool) *cli.Command {
	name, usage := "pin", "keep a version's artifact whatever the retention (batch pin VERSION)"
	if !pin {
		name, usage = "unpin", "let retention delete a pinned version's artifact again (batch unpin VERSION)"
	}
	return &cli.Command{
		Name:      name,
		Usage:     usage,
		ArgsUsage: "VERSION",
		Action: func(c *cli.Context) error {
			v, err := strconv.ParseInt(c.Args().First(), 10, 64)
			if c.NArg() != 1 || err != nil || v <= 0 {
				return usageError(fmt.Sprintf("batch %s takes one version number, got %q", name, c.Args().Slice()))
			}
			b, err := g.open(c.Context)
			if err != nil {
				return err
			}
			defer b.Close(g)
			if err := b.db.PinArtifact(c.Context, v, pin); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "version %d %sned\n", v, name)
			return nil
		},
	}
}

func exportCommand(g *globals) *cli.Command {
	var (
		version           int64
		out, users, items string
	)
	env := func(name string) []string { return []string{"SETLIST_EXPORT_" + name} }
	return &cli.Command{
		Name:  "export",
		Usage: "write a version as an .npz (ALS: implicit's save format; EASE: B) with users.csv and items.csv id maps",
		Description: "ALS: numpy.load(FILE) or implicit's AlternatingLeastSquares.load(FILE) read it; row i of user_factors is\n" +
			"row i of users.csv (row,user_id), row i of item_factors row i of items.csv (row,artist,track).\n" +
			"EASE: implicit's format is for ALS only; the .npz holds b_indices and b_values (songs × m, row j the\n" +
			"kept entries of B's row j, indexes into items.csv) and the parameters; numpy.load reads it.",
		Flags: []cli.Flag{
			&cli.Int64Flag{Name: "version", Usage: "version to export (0: the registry's published run)", EnvVars: env("VERSION"), Destination: &version},
			&cli.StringFlag{Name: "out", Usage: "the .npz file to write", EnvVars: env("OUT"), Required: true, Destination: &out},
			&cli.StringFlag{Name: "users", Usage: "user id map to write (default: users.csv beside --out)", EnvVars: env("USERS"), Destination: &users},
			&cli.StringFlag{Name: "items", Usage: "song id map to write (default: items.csv beside --out)", EnvVars: env("ITEMS"), Destination: &items},
		},
		Action: func(c *cli.Context) error {
			if users == "" {
				users = filepath.Join(filepath.Dir(out), "users.csv")
			}
			if items == "" {
				items = filepath.Join(filepath.Dir(out), "items.csv")
			}
			b, err := g.open(c.Context)
			if err != nil {
				return err
			}
			defer b.Close(g)
			v := model.Version(version)
			if v == 0 {
				last, err := b.db.LastPublished(c.Context)
				if err != nil {
					return fmt.Errorf("no version given and no published run: %w", err)
				}
				v = model.Version(last.ID)
			}
			a, err := artifact.Load(c.Context, b.db, v)
			if err != nil {
				return err
			}
			songs, err := b.db.SongsByID(c.Context, a.Catalog.Songs())
			if err != nil {
				return err
			}
			var npzBuf, usersBuf, itemsBuf bytes.Buffer
			if err := a.ExportNPZ(&npzBuf); err != nil {
				return err
			}
			if err := a.WriteUsersCSV(&usersBuf); err != nil {
				return err
			}
			if err := a.WriteItemsCSV(&itemsBuf, songs); err != nil {
				return fmt.Errorf("export version %d: %w", v, err)
			}
			// Everything is encoded before any file is written: a failure
			// leaves no half set of files behind.
			for _, f := range []struct {
				path string
				data []byte
			}{{out, npzBuf.Bytes()}, {users, usersBuf.Bytes()}, {items, itemsBuf.Bytes()}} {
				if err := writeFileAtomic(f.path, f.data); err != nil {
					return err
				}
			}
			shape := "B's kept entries (EASE; not implicit's format)"
			if a.Side != nil {
				shape = fmt.Sprintf("%d factors", a.Side.Factors)
			}
			fmt.Fprintf(c.App.Writer, "exported version %d (%s): %s (%s users × %s songs × %s), %s, %s\n", v, a.Family, out,
				progress.Group(int64(len(a.Users))), progress.Group(int64(a.Catalog.Len())), shape, users, items)
			return nil
		},
	}
}

// writeFileAtomic writes data to a temporary file beside path and renames
// it into place, so a reader never sees a partial file.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func importModelCommand(g *globals) *cli.Command {
	var (
		cfg                   pipeline.Config
		npzPath, users, items string
		create                bool
		batch                 int
	)
	env := func(name string) []string { return []string{"SETLIST_IMPORT_MODEL_" + name} }
	return &cli.Command{
		Name:  "import-model",
		Usage: "publish ALS factors trained elsewhere (implicit's .npz with users.csv and items.csv) as a new version",
		Description: "Unless --force, the quality gate measures the file's parameters as batch train measures its candidates\n" +
			"(a fit on the training split of the database's reactions, scored on the held-out ones: that figure is recorded\n" +
			"and compared with the published run's), and the imported item factors must beat popularity with the holdout\n" +
			"users folded in (they may have been trained on the holdout, so that figure is never a bar).\n" +
			"Exit codes as batch train: 3 rejected by the gate, 4 another run holds the lock.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "npz", Usage: "implicit's saved model (numpy .npz: user_factors, item_factors, parameters)", EnvVars: env("NPZ"), Required: true, Destination: &npzPath},
			&cli.StringFlag{Name: "users", Usage: "user id of each user_factors row (CSV row,user_id)", EnvVars: env("USERS"), Required: true, Destination: &users},
			&cli.StringFlag{Name: "items", Usage: "song of each item_factors row (CSV row,artist,track)", EnvVars: env("ITEMS"), Required: true, Destination: &items},
			&cli.BoolFlag{Name: "create-missing", Usage: "create users and songs the database does not know instead of refusing the model", EnvVars: env("CREATE_MISSING"), Destination: &create},
			&cli.BoolFlag{Name: "force", Usage: "publish without evaluating the model on a holdout", EnvVars: env("FORCE"), Destination: &cfg.Force},
			&cli.IntFlag{Name: "depth", Aliases: []string{"k"}, Usage: "songs stored per user's list (-k is the old name; 0: the file's, else 20)", EnvVars: append(env("DEPTH"), env("K")...), Destination: &cfg.K},
			&cli.Float64Flag{Name: "max-regression", Usage: "allowed relative NDCG@5 drop against the published run", EnvVars: env("MAX_REGRESSION"), Value: pipeline.DefaultMaxRegression, Destination: &cfg.MaxRegression},
			&cli.IntFlag{Name: "eval-users", Usage: "evaluate on a seeded sample of this many users (0: all)", EnvVars: env("EVAL_USERS"), Destination: &cfg.EvalUsers},
			&cli.IntFlag{Name: "threads", Usage: "worker threads (0: GOMAXPROCS)", EnvVars: env("THREADS"), Destination: &cfg.Threads},
			&cli.BoolFlag{Name: "wait-lock", Usage: "wait for a running batch train instead of exiting with code 4", EnvVars: env("WAIT_LOCK"), Destination: &cfg.WaitLock},
			&cli.IntFlag{Name: "publish-batch", Usage: "Redis commands per pipelined round trip", EnvVars: env("PUBLISH_BATCH"), Value: keyspace.DefaultBatchSize, Destination: &batch},
			&cli.StringFlag{Name: "notes", Usage: "free text stored with the run (default: the file names)", EnvVars: env("NOTES"), Destination: &cfg.Notes},
			keepFlag(&cfg.Keep),
		},
		Action: func(c *cli.Context) error {
			fm, err := readForeign(npzPath, users, items)
			if err != nil {
				return err
			}
			if cfg.Notes == "" {
				cfg.Notes = fmt.Sprintf("imported from %s (%s, %s)", npzPath, users, items)
			}
			b, rdb, keys, err := g.openWithModels(c.Context)
			if err != nil {
				return err
			}
			defer b.Close(g)
			db := b.db
			pub := keyspace.NewPublisher(rdb, keys)
			pub.BatchSize = batch
			res, runErr := pipeline.ImportModel(c.Context, cfg, pipeline.Deps{
				Source: db, Registry: db, Locker: db, Publisher: pub, Artifacts: db,
				Logger: g.logger, Progress: progressFor(c.App.ErrWriter, g.logger),
			}, db, fm, create)
			if res != nil {
				printRun(c.App.Writer, res)
			}
			return runErr
		},
	}
}

// readForeign reads the three files of an implicit model.
func readForeign(npzPath, usersPath, itemsPath string) (*artifact.Foreign, error) {
	data, err := os.ReadFile(npzPath)
	if err != nil {
		return nil, fmt.Errorf("read model: %w", err)
	}
	uf, err := os.Open(usersPath)
	if err != nil {
		return nil, fmt.Errorf("read user ids: %w", err)
	}
	defer uf.Close()
	itf, err := os.Open(itemsPath)
	if err != nil {
		return nil, fmt.Errorf("read song ids: %w", err)
	}
	defer itf.Close()
	fm, err := artifact.ReadImplicit(data, uf, itf)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", npzPath, err)
	}
	return fm, nil
}
