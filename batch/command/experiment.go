package command

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/experiment"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/model"
	"github.com/setlist/setlist/internal/pipeline"
	"github.com/setlist/setlist/internal/registry"
	"github.com/setlist/setlist/internal/store"
)

// experimentDB is what `batch experiment` needs beyond database.
type experimentDB interface {
	StartExperiment(ctx context.Context, n store.NewExperiment) (store.Experiment, error)
	RunningExperiment(ctx context.Context) (store.Experiment, error)
	EndExperiment(ctx context.Context, id int64, status store.ExperimentStatus) (store.Experiment, error)
	Experiments(ctx context.Context, limit int) ([]store.Experiment, error)
	ExperimentCounts(ctx context.Context, id int64) (control, challenger experiment.Counts, err error)
}

func experimentCommand(g *globals) *cli.Command {
	return &cli.Command{
		Name:  "experiment",
		Usage: "A/B test a model version against the current one on a share of users (start, status, stop, promote)",
		Subcommands: []*cli.Command{
			experimentStartCommand(g),
			experimentStatusCommand(g),
			experimentStopCommand(g),
			experimentPromoteCommand(g),
		},
	}
}

// withExperiments opens both stores, and the training lock when lock is
// set (start and promote change what the sweep and publishes may do).
func (g *globals) withExperiments(c *cli.Context, lock bool, fn func(db experimentDB, full database, pub *keyspace.Publisher) error) error {
	b, rdb, keys, err := g.openWithModels(c.Context)
	if err != nil {
		return err
	}
	defer b.Close(g)
	db, ok := b.db.(experimentDB)
	if !ok {
		return fmt.Errorf("the %T backend keeps no experiments", b.db)
	}
	if lock {
		release, err := b.db.LockTraining(c.Context, true, func(holder string) {
			g.logger.Info("waiting for the training lock", "holder", holder)
		})
		if err != nil {
			return fmt.Errorf("take training lock: %w", err)
		}
		defer release()
	}
	return fn(db, b.db, keyspace.NewPublisher(rdb, keys))
}

func experimentStartCommand(g *globals) *cli.Command {
	var (
		challenger        int64
		share, alpha, mde float64
		name              string
	)
	env := func(n string) []string { return []string{"SETLIST_EXPERIMENT_" + n} }
	return &cli.Command{
		Name: "start",
		Usage: "serve version --challenger to a share of users (a salted hash of the user id), everyone else the current version; " +
			"the challenger must have its keys in Redis (the previous version: publish it, then batch rollback)",
		Flags: []cli.Flag{
			&cli.Int64Flag{Name: "challenger", Usage: "model version the challenger arm is served", EnvVars: env("CHALLENGER"), Required: true, Destination: &challenger},
			&cli.Float64Flag{Name: "share", Usage: "share of users in the challenger arm, in (0, 1)", EnvVars: env("SHARE"), Value: 0.1, Destination: &share},
			&cli.StringFlag{Name: "name", Usage: "what the experiment is about (default: \"vC vs vV\")", EnvVars: env("NAME"), Destination: &name},
			&cli.Float64Flag{Name: "alpha", Usage: "the readout's false-positive rate (two-sided; valid however often status is read)", EnvVars: env("ALPHA"), Value: 0.05, Destination: &alpha},
			&cli.Float64Flag{Name: "mde", Usage: "minimum detectable effect: the absolute difference in the share of users who like a song that the test is tuned to find", EnvVars: env("MDE"), Value: 0.02, Destination: &mde},
		},
		Action: func(c *cli.Context) error {
			return g.withExperiments(c, true, func(db experimentDB, _ database, pub *keyspace.Publisher) error {
				e, err := registry.StartExperiment(c.Context, db, pub, store.NewExperiment{Name: name, Challenger: challenger, Share: share, Alpha: alpha, MDE: mde})
				if err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "experiment %d %q running: %.1f%% of users get version %d (challenger), the rest the current version %d (control)\n",
					e.ID, e.Name, 100*e.Share, e.Challenger, e.Control)
				fmt.Fprintf(c.App.Writer, "  readout: batch experiment status (mSPRT at alpha %.3g, tuned to a difference of %.3g; read it as often as you like)\n", e.Alpha, e.MDE)
				return nil
			})
		},
	}
}

func experimentStopCommand(g *globals) *cli.Command {
	return &cli.Command{
		Name:  "stop",
		Usage: "end the running experiment: every user is served the current version again",
		Action: func(c *cli.Context) error {
			return g.withExperiments(c, false, func(db experimentDB, _ database, pub *keyspace.Publisher) error {
				e, stopped, err := registry.StopExperiment(c.Context, db, pub)
				if err != nil {
					return err
				}
				if !stopped {
					fmt.Fprintln(c.App.Writer, "no experiment is running (any routing left in Redis is removed)")
					return nil
				}
				fmt.Fprintf(c.App.Writer, "experiment %d stopped: every user is served the current version; version %d is an ordinary version again\n", e.ID, e.Challenger)
				return nil
			})
		},
	}
}

func experimentPromoteCommand(g *globals) *cli.Command {
	return &cli.Command{
		Name:  "promote",
		Usage: "make the running experiment's challenger the current version (as batch rollback --to does) and end the experiment",
		Action: func(c *cli.Context) error {
			return g.withExperiments(c, true, func(db experimentDB, full database, pub *keyspace.Publisher) error {
				res, e, err := promoteExperiment(c.Context, db, full, pub, g)
				if err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "experiment %d promoted: readers now use version %d (%s); version %d is kept as previous\n",
					e.ID, res.Version, res.How, res.Previous)
				return nil
			})
		},
	}
}

// promoteExperiment switches the pointer to the challenger with the
// restore machinery (a pointer swap when it is the previous version,
// otherwise a republish from its artifact), then ends the experiment in
// Redis and in the registry.
func promoteExperiment(ctx context.Context, db experimentDB, full database, pub *keyspace.Publisher, g *globals) (pipeline.RestoreResult, store.Experiment, error) {
	e, err := db.RunningExperiment(ctx)
	if err != nil {
		return pipeline.RestoreResult{}, e, fmt.Errorf("promote: %w", err)
	}
	res, err := pipeline.Restore(ctx, pipeline.RestoreDeps{Artifacts: full, Registry: full, Publisher: pub, Logger: g.logger},
		model.Version(e.Challenger), 0, fmt.Sprintf("experiment %d promoted version %d", e.ID, e.Challenger))
	if err != nil {
		return res, e, fmt.Errorf("promote experiment %d: %w", e.ID, err)
	}
	if err := pub.EndExperiment(ctx); err != nil {
		return res, e, fmt.Errorf("experiment %d: version %d is current, but the routing is still in Redis (run batch experiment stop): %w", e.ID, e.Challenger, err)
	}
	if e, err = db.EndExperiment(ctx, e.ID, store.ExperimentPromoted); err != nil {
		return res, e, fmt.Errorf("experiment %d: version %d is current, but the registry still says running (run batch experiment stop): %w", e.ID, e.Challenger, err)
	}
	return res, e, nil
}

// statusReport is `batch experiment status -o json`.
type statusReport struct {
	Experiment store.Experiment  `json:"experiment"`
	Readout    experiment.Result `json:"readout"`
	// Routing says whether Redis routes users by this experiment now
	// ("ok"), by none ("missing": serve is not running it) or by another.
	Routing string `json:"routing"`
}

func experimentStatusCommand(g *globals) *cli.Command {
	var (
		output string
		id     int64
	)
	return &cli.Command{
		Name:  "status",
		Usage: "the running (or --id, or the last) experiment's readout: users exposed and converted per arm, rates with 95% intervals, the sequential test's difference interval, p-value and verdict, and the planned sample size",
		Flags: []cli.Flag{
			outputFlag("SETLIST_EXPERIMENT_OUTPUT", "", &output),
			&cli.Int64Flag{Name: "id", Usage: "experiment to read out (default: the running one, else the last)", EnvVars: []string{"SETLIST_EXPERIMENT_ID"}, Destination: &id},
		},
		Action: func(c *cli.Context) error {
			return g.withExperiments(c, false, func(db experimentDB, _ database, pub *keyspace.Publisher) error {
				rep, err := experimentStatus(c.Context, db, pub, id)
				if err != nil {
					return err
				}
				if output == "json" {
					enc := json.NewEncoder(c.App.Writer)
					enc.SetIndent("", "  ")
					return enc.Encode(rep)
				}
				return printExperiment(c.App.Writer, rep)
			})
		},
	}
}

func experimentStatus(ctx context.Context, db experimentDB, pub *keyspace.Publisher, id int64) (statusReport, error) {
	list, err := db.Experiments(ctx, 1000)
	if err != nil {
		return statusReport{}, err
	}
	var e *store.Experiment
	for i := range list {
		// Without --id the newest: the running one if any runs (only the
		// newest can).
		if id == 0 || list[i].ID == id {
			e = &list[i]
			break
		}
	}
	if e == nil {
		if id != 0 {
			return statusReport{}, fmt.Errorf("experiment %d: %w", id, setlist.ErrNotFound)
		}
		return statusReport{}, fmt.Errorf("no experiment was ever started (batch experiment start): %w", setlist.ErrNotFound)
	}
	control, challenger, err := db.ExperimentCounts(ctx, e.ID)
	if err != nil {
		return statusReport{}, err
	}
	rep := statusReport{Experiment: *e, Readout: experiment.Test(e.Design(), control, challenger), Routing: "n/a"}
	if e.Status == store.ExperimentRunning {
		r, ok, err := pub.Experiment(ctx)
		switch {
		case err != nil:
			rep.Routing = "unknown: " + err.Error()
		case !ok:
			rep.Routing = "missing"
		case r != e.Routing():
			rep.Routing = fmt.Sprintf("another (experiment %d)", r.ID)
		default:
			rep.Routing = "ok"
		}
	}
	return rep, nil
}

func printExperiment(w io.Writer, rep statusReport) error {
	e, r := rep.Experiment, rep.Readout
	fmt.Fprintf(w, "experiment %d %q: %s, started %s", e.ID, e.Name, e.Status, e.StartedAt.UTC().Format("2006-01-02 15:04:05Z"))
	if e.EndedAt != nil {
		fmt.Fprintf(w, ", ended %s", e.EndedAt.UTC().Format("2006-01-02 15:04:05Z"))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  control: the current version (v%d at the start); challenger: v%d for %.1f%% of users\n", e.Control, e.Challenger, 100*e.Share)
	if e.Status == store.ExperimentRunning && rep.Routing != "ok" {
		fmt.Fprintf(w, "  WARNING: Redis routing is %s: serve is not running this experiment (batch experiment stop, then start again)\n", rep.Routing)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "arm\tusers exposed\tliked a song\trate\t95% interval\t")
	fmt.Fprintf(tw, "control\t%d\t%d\t%.4f\t[%.4f, %.4f]\t\n", r.Control.Units, r.Control.Converted, r.ControlRate, r.ControlCI.Low, r.ControlCI.High)
	fmt.Fprintf(tw, "challenger\t%d\t%d\t%.4f\t[%.4f, %.4f]\t\n", r.Challenger.Units, r.Challenger.Converted, r.ChallengerRate, r.ChallengerCI.Low, r.ChallengerCI.High)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "  difference (challenger - control): %+.4f, always-valid %.0f%% interval [%+.4f, %+.4f]\n", r.Diff, 100*(1-r.Alpha), r.DiffCI.Low, r.DiffCI.High)
	fmt.Fprintf(w, "  mSPRT likelihood ratio %.3g (threshold %.3g), always-valid p-value %.4f\n", r.LR, 1/r.Alpha, r.P)
	fmt.Fprintf(w, "  verdict: %s\n", r.Verdict)
	if r.PlannedUsers > 0 {
		fmt.Fprintf(w, "  planned sample (fixed-horizon z-test, alpha %.3g, power 0.8, difference %.3g at control's rate): %d users; exposed so far %d\n",
			r.Alpha, e.MDE, r.PlannedUsers, r.Control.Units+r.Challenger.Units)
	}
	return nil
}
