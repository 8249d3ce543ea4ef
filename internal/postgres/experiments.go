package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/experiment"
	"github.com/setlist/setlist/internal/store"
)

const experimentColumns = `id, name, control_version, challenger_version, share, salt, alpha, mde, status, started_at, ended_at`

func scanExperiment(row pgx.CollectableRow) (store.Experiment, error) {
	var e store.Experiment
	var status string
	err := row.Scan(&e.ID, &e.Name, &e.Control, &e.Challenger, &e.Share, &e.Salt, &e.Alpha, &e.MDE, &status, &e.StartedAt, &e.EndedAt)
	e.Status = store.ExperimentStatus(status)
	return e, err
}

// StartExperiment records a running experiment. A second one while one runs
// is refused with setlist.ErrConflict, by the partial unique index (so two
// racing starts cannot both succeed).
func (db *DB) StartExperiment(ctx context.Context, n store.NewExperiment) (store.Experiment, error) {
	if err := n.Validate(); err != nil {
		return store.Experiment{}, fmt.Errorf("start experiment: %w", err)
	}
	rows, _ := db.Pool.Query(ctx, `INSERT INTO experiments (name, control_version, challenger_version, share, salt, alpha, mde)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING `+experimentColumns,
		n.Name, n.Control, n.Challenger, n.Share, n.Salt, n.Alpha, n.MDE)
	e, err := pgx.CollectExactlyOneRow(rows, scanExperiment)
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "23505":
		return store.Experiment{}, fmt.Errorf("start experiment: another experiment is running (stop or promote it first): %w", setlist.ErrConflict)
	case errors.As(err, &pgErr) && pgErr.Code == "23503":
		return store.Experiment{}, fmt.Errorf("start experiment: version %d or %d is not a recorded run: %w", n.Control, n.Challenger, setlist.ErrNotFound)
	case err != nil:
		return store.Experiment{}, fmt.Errorf("start experiment: %w", classify("insert", err))
	}
	return e, nil
}

// RunningExperiment returns the running experiment, or setlist.ErrNotFound.
func (db *DB) RunningExperiment(ctx context.Context) (store.Experiment, error) {
	rows, _ := db.Pool.Query(ctx, `SELECT `+experimentColumns+` FROM experiments WHERE status = 'running'`)
	e, err := pgx.CollectExactlyOneRow(rows, scanExperiment)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Experiment{}, fmt.Errorf("running experiment: none: %w", setlist.ErrNotFound)
	}
	if err != nil {
		return store.Experiment{}, fmt.Errorf("running experiment: %w", classify("select", err))
	}
	return e, nil
}

// EndExperiment ends running experiment id as status (stopped or promoted)
// and returns it; setlist.ErrNotFound if it is not running.
func (db *DB) EndExperiment(ctx context.Context, id int64, status store.ExperimentStatus) (store.Experiment, error) {
	if err := status.CheckEnding(id); err != nil {
		return store.Experiment{}, err
	}
	rows, _ := db.Pool.Query(ctx, `UPDATE experiments SET status = $2, ended_at = now()
		WHERE id = $1 AND status = 'running' RETURNING `+experimentColumns, id, string(status))
	e, err := pgx.CollectExactlyOneRow(rows, scanExperiment)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Experiment{}, fmt.Errorf("end experiment %d: not running: %w", id, setlist.ErrNotFound)
	}
	if err != nil {
		return store.Experiment{}, fmt.Errorf("end experiment %d: %w", id, classify("update", err))
	}
	return e, nil
}

// Experiments returns at most limit experiments, the newest first.
func (db *DB) Experiments(ctx context.Context, limit int) ([]store.Experiment, error) {
	rows, _ := db.Pool.Query(ctx, `SELECT `+experimentColumns+` FROM experiments ORDER BY id DESC LIMIT $1`, max(limit, 1))
	es, err := pgx.CollectRows(rows, scanExperiment)
	if err != nil {
		return nil, fmt.Errorf("list experiments: %w", classify("select", err))
	}
	return es, nil
}

// RecordExposures records that users were answered in arms of experiment
// id, once per user (the first recorded exposure's time is kept); users
// the database does not know and experiments no longer running are
// skipped.
func (db *DB) RecordExposures(ctx context.Context, id int64, exps []store.ExperimentExposure) error {
	ext := make([]string, len(exps))
	arm := make([]string, len(exps))
	at := make([]time.Time, len(exps))
	for i, x := range exps {
		ext[i], arm[i], at[i] = string(x.User), string(x.Arm), x.At
	}
	_, err := db.Pool.Exec(ctx, `INSERT INTO experiment_exposures (experiment_id, user_id, arm, first_at)
		SELECT $1, u.id, x.arm, x.at FROM unnest($2::text[], $3::text[], $4::timestamptz[]) AS x (ext, arm, at)
		JOIN users u ON u.external_id = x.ext
		WHERE x.arm IN ('control', 'challenger') AND EXISTS (SELECT 1 FROM experiments WHERE id = $1 AND status = 'running')
		ON CONFLICT DO NOTHING`, id, ext, arm, at)
	if err != nil {
		return fmt.Errorf("record exposures of experiment %d: %w", id, classify("insert", err))
	}
	return nil
}

// ExperimentCounts reads experiment id's outcome per arm: the users it
// exposed, and those who liked a song they were shown in that arm
// (attributed by serve, migration 0006) at or after their first exposure
// and before it ended.
func (db *DB) ExperimentCounts(ctx context.Context, id int64) (control, challenger experiment.Counts, err error) {
	rows, _ := db.Pool.Query(ctx, `SELECT x.arm, count(*),
			count(*) FILTER (WHERE EXISTS (SELECT 1 FROM reactions r WHERE r.user_id = x.user_id AND r.kind = 'like'
				AND r.shown_arm = x.arm AND r.shown_position IS NOT NULL AND r.created_at >= x.first_at AND r.created_at < COALESCE(e.ended_at, 'infinity')))
		FROM experiment_exposures x JOIN experiments e ON e.id = x.experiment_id
		WHERE x.experiment_id = $1 GROUP BY x.arm`, id)
	var (
		arm     string
		n, conv int64
	)
	_, err = pgx.ForEachRow(rows, []any{&arm, &n, &conv}, func() error {
		c := experiment.Counts{Units: n, Converted: conv}
		if arm == string(setlist.ArmChallenger) {
			challenger = c
		} else {
			control = c
		}
		return nil
	})
	if err != nil {
		return control, challenger, fmt.Errorf("outcomes of experiment %d: %w", id, classify("select", err))
	}
	return control, challenger, nil
}
