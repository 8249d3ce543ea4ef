package command

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/model"
	"github.com/setlist/setlist/internal/pipeline"
	"github.com/setlist/setlist/internal/store"
)

func runsCommand(g *globals) *cli.Command {
	var (
		limit      int
		trials     int64
		output     string
		onlineDays int
	)
	return &cli.Command{
		Name:  "runs",
		Usage: "list the model registry: every train and tune run, newest first (--trials RUN: one run's tuning trials)",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "limit", Usage: "runs to list", EnvVars: []string{"SETLIST_RUNS_LIMIT"}, Value: 20, Destination: &limit},
			&cli.Int64Flag{Name: "trials", Usage: "show the tuning trials of this run instead of the list", EnvVars: []string{"SETLIST_RUNS_TRIALS"}, Destination: &trials},
			&cli.IntFlag{Name: "online-days", Usage: "UTC days (today included) of online metrics shown next to the offline ones", EnvVars: []string{"SETLIST_RUNS_ONLINE_DAYS"}, Value: 7, Destination: &onlineDays},
			outputFlag("SETLIST_RUNS_OUTPUT", " (with --trials)", &output),
		},
		Action: func(c *cli.Context) error {
			if c.IsSet("trials") && trials < 1 {
				return fmt.Errorf("--trials must name a run id (≥ 1), got %d", trials)
			}
			b, err := g.open(c.Context)
			if err != nil {
				return err
			}
			defer b.Close(g)
			db := b.db
			if c.IsSet("trials") {
				return printRunTrials(c.Context, c.App.Writer, db, trials, output)
			}
			runs, err := db.Runs(c.Context, limit)
			if err != nil {
				return err
			}
			if onlineDays < 1 {
				return fmt.Errorf("--online-days must be ≥ 1, got %d", onlineDays)
			}
			daily, err := db.OnlineMetrics(c.Context, time.Now().UTC().AddDate(0, 0, 1-onlineDays))
			if err != nil {
				return err
			}
			return printRuns(c.App.Writer, runs, daily, onlineDays)
		},
	}
}

// printRuns writes runs as an aligned table: each run's offline metrics
// and, for a version that was served in the last days, its online ones
// (store.OnlineMetric, summed over days, sources and arms: users are
// user-days), then the online metrics per source and arm.
func printRuns(w io.Writer, runs []store.Run, daily []store.OnlineMetric, days int) error {
	if len(runs) == 0 {
		_, err := fmt.Fprintln(w, "no runs recorded")
		return err
	}
	online := map[int64]store.OnlineMetric{}
	for _, m := range store.VersionOnline(daily) {
		online[m.Version] = m
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tSTATUS\tSTARTED\tSECONDS\tUSERS\tNDCG@5\tPOPULAR NDCG@5\tSHOWN USERS\tLIKES/USER\tDISLIKES/USER\tMRR\tFAMILY\tPARAMS\tREASON")
	for _, r := range runs {
		var m map[string]float64
		var c pipeline.Counts
		var p pipeline.RunParams
		var t map[string]float64
		_ = json.Unmarshal(r.Metrics, &m)
		_ = json.Unmarshal(r.Counts, &c)
		_ = json.Unmarshal(r.Params, &p)
		_ = json.Unmarshal(r.Timings, &t)
		params, family := "-", model.FamilyALS
		if p.Family != "" {
			family = p.Family
		}
		switch {
		case family == model.FamilyEASE && p.EASE != nil:
			params = fmt.Sprintf("%s λ=%.3g %s", p.Source, p.EASE.Lambda, p.EASE.Weighting)
		case p.ALS.Factors > 0:
			params = fmt.Sprintf("%s f=%d it=%d λ=%.3g α=%.3g %s", p.Source, p.ALS.Factors, p.ALS.Iterations, p.ALS.Regularization, p.ALS.Alpha, p.ALS.Weighting)
		default:
			family = "-"
		}
		metric := func(k string) string {
			if v, ok := m[k]; ok {
				return fmt.Sprintf("%.4f", v)
			}
			return "-"
		}
		secs := "-"
		if v, ok := t["total"]; ok {
			secs = fmt.Sprintf("%.1f", v)
		}
		reason := r.Reason
		if len(reason) > 80 {
			reason = reason[:77] + "..."
		}
		shown, pos, neg, mrr := "-", "-", "-", "-"
		if o, ok := online[r.ID]; ok {
			shown = fmt.Sprint(o.Users)
			pos, neg, mrr = fmt.Sprintf("%.4f", o.PositiveRate), fmt.Sprintf("%.4f", o.NegativeRate), fmt.Sprintf("%.4f", o.MRR)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Status, r.StartedAt.Local().Format(time.DateTime),
			secs, c.Users, metric("ndcg_at_5"), metric("baseline_ndcg_at_5"), shown, pos, neg, mrr, family, params, strings.ReplaceAll(reason, "\n", " "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	totals := store.TotalOnline(daily)
	if len(totals) == 0 {
		return nil
	}
	fmt.Fprintf(w, "\nonline metrics of the last %d days (UTC), per version, source and arm (users are user-days):\n", days)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tSOURCE\tARM\tANSWERS\tUSERS\tLIKES\tDISLIKES\tLIKES/USER\tDISLIKES/USER\tMRR")
	for _, o := range totals {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%d\t%d\t%.4f\t%.4f\t%.4f\n", o.Version, o.Source, o.Arm, o.Answers, o.Users,
			o.Likes, o.Dislikes, o.PositiveRate, o.NegativeRate, o.MRR)
	}
	return tw.Flush()
}

// printRunTrials prints the search run id recorded, with the summary its
// params carry.
func printRunTrials(ctx context.Context, w io.Writer, db database, id int64, output string) error {
	r, err := db.Run(ctx, id)
	if err != nil {
		return err
	}
	trials, err := db.TuningTrials(ctx, id)
	if err != nil {
		return err
	}
	var p pipeline.RunParams
	_ = json.Unmarshal(r.Params, &p)
	s := p.Tuning
	if s != nil && s.Run != id {
		s = nil // inherited from another run's search: not this run's trials
	}
	if len(trials) == 0 && output == "table" {
		msg := fmt.Sprintf("run %d did not tune", id)
		if p.Tuning != nil && p.Tuning.Run != id {
			msg += fmt.Sprintf("; its parameters come from the search of run %d (batch runs --trials %d)", p.Tuning.Run, p.Tuning.Run)
		}
		_, err := fmt.Fprintln(w, msg)
		return err
	}
	return printSearch(w, output, id, s, trials)
}

// outputFlag is the --output (-o) flag of the commands that print a table
// or JSON, refused at parse time unless it is one of the two.
func outputFlag(envVar, usage string, dest *string) *cli.StringFlag {
	return &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "table or json" + usage, EnvVars: []string{envVar},
		Value: "table", Destination: dest,
		Action: func(_ *cli.Context, v string) error {
			if v != "table" && v != "json" {
				return fmt.Errorf("--output must be table or json, got %q: %w", v, setlist.ErrInvalid)
			}
			return nil
		}}
}
