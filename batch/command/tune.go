package command

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/als"
	"github.com/setlist/setlist/internal/pipeline"
	"github.com/setlist/setlist/internal/registry"
	"github.com/setlist/setlist/internal/store"
)

// DefaultTuneBudget is batch tune's budget when none is given: long enough
// for the multi-fidelity search to reach its model-based phase on a
// million-reaction catalogue, short enough for a weekly off-hours slot.
const DefaultTuneBudget = 10 * time.Minute

func tuneCommand(g *globals) *cli.Command {
	var (
		cfg      pipeline.Config
		output   string
		pushURL  string
		memLimit string
	)
	env := func(name string) []string { return []string{"SETLIST_TUNE_" + name} }
	return &cli.Command{
		Name:  "tune",
		Usage: "search for better training parameters within a budget, record the trials, publish nothing (the weekly CronJob's command)",
		Description: "Loads the reactions, holds out each user's validation share and runs the search on the rest: the\n" +
			"current parameters (the incumbent) first, then challengers until the budget is spent. The run is recorded\n" +
			"with status tuned and every trial (batch runs --trials RUN); the next batch train starts from its pick.\n" +
			"Exit codes: 0 recorded; 4 another run holds the lock; 1 any other failure.",
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "budget", Usage: "wall-clock time to search for (the search uses it up unless it reaches --trials)", EnvVars: env("BUDGET"), Value: DefaultTuneBudget, Destination: &cfg.TuneBudget},
			&cli.IntFlag{Name: "trials", Usage: "stop after this many trials even if budget is left (0: no cap)", EnvVars: env("TRIALS"), Destination: &cfg.TuneTrials},
			&cli.StringFlag{Name: "family", Usage: "als searches ALS's parameters only; auto (the default) also compares EASE (the closed-form item-item model) on the search's validation split when its catalog fits --memory-limit and the budget (the comparison shares the budget with the ALS search), and the next batch train --family auto trains the family chosen", EnvVars: env("FAMILY"), Value: pipeline.FamilyAuto, Destination: &cfg.Family},
			&cli.StringFlag{Name: "memory-limit", Usage: "memory EASE may use with --family auto, e.g. 16GiB (auto: 3/4 of the process's memory limit, else of the machine's memory)", EnvVars: env("MEMORY_LIMIT"), Value: "auto", Destination: &memLimit},
			&cli.IntFlag{Name: "threads", Usage: "worker threads (0: GOMAXPROCS)", EnvVars: env("THREADS"), Destination: &cfg.Threads},
			&cli.Int64Flag{Name: "seed", Usage: "seed of the validation split, the sampler and initial factors", EnvVars: env("SEED"), Value: pipeline.DefaultSeed, Destination: &cfg.Seed},
			&cli.BoolFlag{Name: "dry-run", Usage: "search and print the trials, but take no lock and record nothing", EnvVars: env("DRY_RUN"), Destination: &cfg.DryRun},
			&cli.BoolFlag{Name: "wait-lock", Usage: "wait for a running batch train or tune instead of exiting with code 4", EnvVars: env("WAIT_LOCK"), Destination: &cfg.WaitLock},
			outputFlag("SETLIST_TUNE_OUTPUT", "", &output),
			&cli.StringFlag{Name: "notes", Usage: "free text stored with the run", EnvVars: env("NOTES"), Destination: &cfg.Notes},
			&cli.StringFlag{Name: "pushgateway-url", Usage: "push the run's metrics to this Prometheus Pushgateway", EnvVars: []string{"SETLIST_PUSHGATEWAY_URL"}, Destination: &pushURL},
		},
		Action: func(c *cli.Context) error {
			cfg.TuneOnly = true
			var err error
			if cfg.MemoryLimit, err = memoryLimit(memLimit); err != nil {
				return fmt.Errorf("--memory-limit: %w: %w", setlist.ErrInvalid, err)
			}
			b, err := g.open(c.Context)
			if err != nil {
				return err
			}
			defer b.Close(g)
			reg := prometheus.NewRegistry()
			metrics := pipeline.NewTuneMetrics(reg)
			res, runErr := pipeline.Run(c.Context, cfg, pipeline.Deps{
				Source: b.db, Registry: b.db, Locker: b.db,
				Logger: g.logger, Metrics: metrics,
				Progress: progressFor(c.App.ErrWriter, g.logger),
			})
			if res != nil && res.Tuning != nil {
				// What was recorded is what is shown (batch runs --trials
				// prints the same); a dry run recorded nothing.
				trials, err := pipeline.TrialRecords(res.RunID, res.Tuning)
				if err == nil && !cfg.DryRun && runErr == nil {
					trials, err = b.db.TuningTrials(c.Context, res.RunID)
				}
				if err != nil {
					return errors.Join(runErr, err)
				}
				if err := printSearch(c.App.Writer, output, res.RunID, res.Params.Tuning, trials); err != nil {
					return errors.Join(runErr, err)
				}
			}
			if pushURL != "" && res != nil {
				ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Context), 10*time.Second)
				defer cancel()
				if err := pipeline.Push(ctx, pushURL, reg); err != nil {
					g.logger.Warn("metrics not pushed", "err", err)
				}
			}
			return runErr
		},
	}
}

// search is `batch tune --output json` and `batch runs --trials RUN
// --output json`: the run, its search's summary and every trial.
type search struct {
	Run     int64                   `json:"run"`
	Summary *registry.TuningSummary `json:"summary"`
	Trials  []registry.TrialView    `json:"trials"`
}

// printSearch writes a recorded search as a table (or JSON): one line per
// trial with its fidelity, parameters, validation NDCG@5 and the best so
// far, then the summary.
func printSearch(w io.Writer, output string, run int64, s *registry.TuningSummary, trials []store.TuningTrial) error {
	views := registry.ViewTrials(trials)
	if output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(search{Run: run, Summary: s, Trials: views})
	}
	if len(views) == 0 {
		_, err := fmt.Fprintf(w, "run %d recorded no tuning trials\n", run)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "TRIAL\tRUNG\tSPLIT\tITER\tUSERS\tFACTORS\tWEIGHTING\tλ\tα\tNDCG@5\tBEST\tSECONDS\t")
	for _, v := range views {
		var p als.Params
		_ = json.Unmarshal(v.Params, &p)
		best := "-"
		if v.BestSoFar != nil {
			best = fmt.Sprintf("%.4f", *v.BestSoFar)
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%.0f%%\t%d\t%s\t%.3g\t%.3g\t%.4f\t%s\t%.1f\t  %s\n",
			v.Number, v.Rung, v.Split, v.Iterations, 100*v.UserFraction, p.Factors, p.Weighting, p.Regularization, p.Alpha,
			v.NDCG, best, v.Seconds, trialState(v, s))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if s != nil {
		fmt.Fprintln(w, searchSummary(run, s))
	}
	return nil
}

// trialState is the trial's outcome in a word or two.
func trialState(v registry.TrialView, s *registry.TuningSummary) string {
	state := ""
	switch {
	case v.Incumbent:
		state = "incumbent"
	case v.Pruned:
		state = "pruned"
	case v.Promoted:
		state = "promoted"
	}
	if s != nil && s.BestTrial == v.Number {
		if state != "" {
			state += ", "
		}
		state += "picked"
	}
	return state
}

// searchSummary says in one line what the search chose and why it stopped.
func searchSummary(run int64, s *registry.TuningSummary) string {
	// The scores are means (als.TuneResult): the incumbent's over its
	// seeds, and a pick's over both validation splits, so no one row of
	// the table shows them; say so.
	pick := fmt.Sprintf("picked trial %d: NDCG@5 %.4f against the incumbent's %.4f, each the mean of its two validation splits (the incumbent's first over its seeds), not one row above; noise margin %.4f",
		s.BestTrial, s.BestScore, s.IncumbentScore, s.NoiseMargin)
	if s.KeptIncumbent {
		pick = fmt.Sprintf("kept the incumbent (trial %d, NDCG@5 %.4f, the mean over its seeds and validation splits, not one row above): no challenger beat it by more than the noise margin %.4f",
			s.BestTrial, s.IncumbentScore, s.NoiseMargin)
	}
	budget := "no budget"
	if s.BudgetSeconds > 0 {
		budget = fmt.Sprintf("%.0f%% of the %s budget", 100*s.UsedSeconds/s.BudgetSeconds, time.Duration(s.BudgetSeconds*float64(time.Second)).Round(time.Second))
	}
	where := fmt.Sprintf("run %d", run)
	if s.Run != run {
		where = fmt.Sprintf("run %d (the search of run %d)", run, s.Run)
	}
	return fmt.Sprintf("%s: %d trials (%d pruned) in %.1f s, %s; stopped: %s; %s",
		where, s.Trials, s.Pruned, s.UsedSeconds, budget, s.StopReason, pick)
}
