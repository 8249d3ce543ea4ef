package pipeline

import (
	"context"
	"fmt"
	"strings"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/als"
	"github.com/setlist/setlist/internal/artifact"
	"github.com/setlist/setlist/internal/feedback"
	"github.com/setlist/setlist/internal/model"
	"github.com/setlist/setlist/internal/store"
)

// Resolver finds (or, with create, inserts) an imported model's users and
// songs in the system of record, in one transaction; both backends have it.
type Resolver interface {
	ResolveIDs(ctx context.Context, users []setlist.UserID, songs []store.SongKey, create bool) (store.Resolved, error)
}

// maxNamed is how many unknown users or songs an import error names.
const maxNamed = 5

// ImportModel publishes factors trained elsewhere (implicit's format, read
// by artifact.ReadImplicit) as a new version, recorded in the registry with
// source "imported" and the file's parameters. Users and songs the database
// does not know are refused with an error naming them, or created when
// createMissing. Unless cfg.Force, the quality gate judges it as
// evaluateImport measures it. Every user's list is then the imported user
// factors against the imported item factors, excluding the songs the
// database has them react to, so the version answers exactly as the model
// did where it was trained.
func ImportModel(ctx context.Context, cfg Config, deps Deps, ids Resolver, fm *artifact.Foreign, createMissing bool) (*Result, error) {
	cfg.Scheme = fm.Scheme
	if fm.K > 0 && cfg.K == 0 {
		cfg.K = fm.K
	}
	if cfg.DryRun || cfg.StageOnly {
		return nil, fmt.Errorf("import-model publishes: dry run and stage-only are train options: %w", setlist.ErrInvalid)
	}
	return start(ctx, cfg, deps, func(r *run, ctx context.Context) error { return r.importModel(ctx, ids, fm, createMissing) })
}

func (r *run) importModel(ctx context.Context, ids Resolver, fm *artifact.Foreign, createMissing bool) error {
	cfg, res := r.cfg, r.res
	res.Params = RunParams{ALS: fm.Params, Scheme: fm.Scheme, K: cfg.K, Source: artifact.SourceImported, Eval: EvalHoldout}
	if cfg.Force {
		res.Params.Eval = ""
	}
	var resolved store.Resolved
	err := r.phase("resolve", func() error {
		var err error
		resolved, err = ids.ResolveIDs(ctx, fm.Users, fm.Items, createMissing)
		if err != nil {
			return err
		}
		return unknownError(resolved)
	})
	if err != nil {
		return err
	}
	tr, err := r.snapshot(ctx)
	if err != nil {
		return err
	}
	var all *feedback.CSR // the database's matrix, as batch train evaluates on it
	if !cfg.Force {
		all = feedback.NewCSR(len(tr.Users), len(tr.Songs), tr.Entries)
	}
	m := modelMatrix(tr, fm.Users, resolved.Songs)
	res.Counts.Users, res.Counts.Songs, res.Counts.Reactions, res.Counts.NNZ = len(fm.Users), len(fm.Items), tr.Reactions, m.NNZ()
	tr.Entries = nil
	side := (&als.Model{Params: fm.Params, Users: len(fm.Users), Items: len(fm.Items), Factors: fm.Params.Factors,
		ItemFactors: fm.ItemFactors, ItemWeights: fm.ItemWeights}).ItemSide()

	catalog := model.NewCatalog(resolved.Songs)
	pop, err := popularWithheld(m, cfg.Popular, catalog.Indexes(tr.Unavailable))
	if err != nil {
		return err
	}
	popular := catalog.Recs(pop)
	res.Counts.Popular = len(popular)
	meta := model.Meta{Version: res.Version, TrainedAt: r.deps.Now().UTC(), SnapshotAt: tr.SnapshotAt, SnapshotSeq: tr.SnapshotSeq, Params: fm.Params,
		Scheme: cfg.Scheme, K: cfg.K, Items: catalog.Len(), Unavailable: tr.Unavailable}
	a, err := artifact.NewALS(meta, artifact.SourceImported, catalog, side, popular, fm.Users, fm.UserFactors, m)
	if err != nil {
		return err
	}
	var lists [][]feedback.Scored
	err = r.phase("topk", func() error {
		var err error
		lists, err = a.Lists(ctx, cfg.Threads)
		return err
	})
	if err != nil {
		return err
	}
	if cfg.Force {
		res.Gate = GateDecision{Publish: true, Forced: true, Reason: "imported with --force: not evaluated"}
	} else {
		in, err := r.evaluateImport(ctx, all, side, m)
		if err != nil {
			return err
		}
		// The holdout judges the parameters and the item factors; the
		// lists judge the imported user factors, which nothing else
		// evaluates.
		in.Lists = CheckLists(lists, m, cfg.K, catalog.Indexes(tr.Unavailable))
		res.Gate = Gate(in)
	}
	if !res.Gate.Publish {
		return &RejectedError{RunID: res.RunID, Reason: res.Gate.Reason}
	}
	if res.Gate.Forced {
		res.Reason = res.Gate.Reason
	}
	a.Meta.Metrics = res.Metrics // measured after the artifact was assembled
	if err := r.phase("publish", func() error {
		return r.publish(ctx, func() (*artifact.Artifact, error) { return a, nil }, lists)
	}); err != nil {
		return err
	}
	r.cleanup(ctx)
	return nil
}

// unknownError names the users and songs the database does not know.
func unknownError(res store.Resolved) error {
	if len(res.MissingUsers)+len(res.MissingSongs) == 0 {
		return nil
	}
	var parts []string
	if n := len(res.MissingUsers); n > 0 {
		names := make([]string, 0, maxNamed)
		for _, u := range res.MissingUsers[:min(n, maxNamed)] {
			names = append(names, fmt.Sprintf("%q", u))
		}
		parts = append(parts, fmt.Sprintf("%d users unknown to the database (%s%s)", n, strings.Join(names, ", "), more(n)))
	}
	if n := len(res.MissingSongs); n > 0 {
		names := make([]string, 0, maxNamed)
		for _, s := range res.MissingSongs[:min(n, maxNamed)] {
			names = append(names, s.String())
		}
		parts = append(parts, fmt.Sprintf("%d songs unknown to the database (%s%s)", n, strings.Join(names, ", "), more(n)))
	}
	return fmt.Errorf("%s; import their reactions first or pass --create-missing: %w", strings.Join(parts, " and "), setlist.ErrInvalid)
}

func more(n int) string {
	if n > maxNamed {
		return fmt.Sprintf(", and %d more", n-maxNamed)
	}
	return ""
}

// modelMatrix maps the snapshot's reactions into the imported model's rows
// and columns; reactions of users or songs the model lacks are dropped.
func modelMatrix(tr *model.Training, users []setlist.UserID, songs []setlist.SongID) *feedback.CSR {
	row := make(map[setlist.UserID]int32, len(users))
	for i, u := range users {
		row[u] = int32(i)
	}
	col := make(map[setlist.SongID]int32, len(songs))
	for i, s := range songs {
		col[s] = int32(i)
	}
	userRow := make([]int32, len(tr.Users))
	for i, u := range tr.Users {
		userRow[i] = -1
		if r, ok := row[u]; ok {
			userRow[i] = r
		}
	}
	songCol := make([]int32, len(tr.Songs))
	for i, s := range tr.Songs {
		songCol[i] = -1
		if c, ok := col[s]; ok {
			songCol[i] = c
		}
	}
	entries := make([]feedback.Entry, 0, len(tr.Entries))
	for _, e := range tr.Entries {
		if r, c := userRow[e.Row], songCol[e.Col]; r >= 0 && c >= 0 {
			entries = append(entries, feedback.Entry{Row: r, Col: c, Value: e.Value})
		}
	}
	return feedback.NewCSR(len(users), len(songs), entries)
}

// evaluateImport measures an imported model twice. Its imported factors
// cannot be scored honestly on a holdout of this database: they were
// trained on data that may hold the held-out reactions (an export of a
// published version always does: 0.28 against the 0.04 it was trained to
// on the sample), and a figure that high would become the bar no retrain
// reaches. So the gate's figure (EvalHoldout) is the file's parameters
// fit on the training split of the database's reactions and scored on
// the held-out ones, exactly as batch train measures its candidates: it
// can be held to the published figure and be the next one's bar. The
// factors themselves are judged by folding the holdout users in from the
// imported item factors (FoldInCheck): only against popularity.
func (r *run) evaluateImport(ctx context.Context, all *feedback.CSR, side *als.ItemSide, m *feedback.CSR) (GateInput, error) {
	cfg := r.cfg
	train, test := r.split(all)
	p := r.res.Params.ALS
	p.Threads, p.Seed = cfg.Threads, cfg.Seed
	metrics, baseline, err := r.evaluate(ctx, &alsFamily{r: r, params: p}, train, test)
	if err != nil {
		return GateInput{}, err
	}
	var foldIn, foldInBase feedback.Metrics
	err = r.phase("fold-in", func() error {
		var err error
		foldIn, foldInBase, err = evaluateFoldIn(ctx, side, m, cfg)
		return err
	})
	if err != nil {
		return GateInput{}, err
	}
	r.res.Metrics["imported_fold_in_ndcg_at_5"] = foldIn.NDCG
	r.res.Metrics["imported_fold_in_baseline_ndcg_at_5"] = foldInBase.NDCG
	r.deps.Logger.Info("evaluated the imported factors", "users", foldIn.Users, "fold_in_ndcg_at_5", foldIn.NDCG,
		"baseline_ndcg_at_5", foldInBase.NDCG)
	in := r.gateInput(ctx, metrics, baseline)
	in.FoldIn = &FoldInCheck{NDCG: foldIn.NDCG, BaselineNDCG: foldInBase.NDCG}
	return in, nil
}

// evaluateFoldIn scores item factors trained elsewhere: each evaluated
// user's vector is folded in from their training split (as serve folds in
// a new user) and ranked against their held-out songs.
func evaluateFoldIn(ctx context.Context, side *als.ItemSide, m *feedback.CSR, cfg Config) (feedback.Metrics, feedback.Metrics, error) {
	train, test := feedback.SplitHoldout(m, cfg.HoldoutFraction, cfg.Seed)
	if cfg.EvalUsers > 0 {
		test = sampleRows(test, cfg.EvalUsers, cfg.Seed)
	}
	k := side.Factors
	users := make([]float32, m.Rows*k)
	for u := 0; u < m.Rows; u++ {
		if test.Indptr[u+1] == test.Indptr[u] {
			continue
		}
		if err := ctx.Err(); err != nil {
			return feedback.Metrics{}, feedback.Metrics{}, err
		}
		cols, vals := train.Row(u)
		v, err := side.FoldIn(cols, vals)
		if err != nil {
			return feedback.Metrics{}, feedback.Metrics{}, fmt.Errorf("fold in user row %d: %w", u, err)
		}
		copy(users[u*k:], v)
	}
	metrics, err := als.Evaluate(ctx, users, side, train, test, evalK, cfg.Threads)
	if err != nil {
		return feedback.Metrics{}, feedback.Metrics{}, err
	}
	return metrics, feedback.PopularityBaseline(train, test, evalK), nil
}
