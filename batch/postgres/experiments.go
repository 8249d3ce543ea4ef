package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/batch/store"
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
	if status != store.ExperimentStopped && status != store.ExperimentPromoted {
		return store.Experiment{}, fmt.Errorf("end experiment %d: status %q: %w", id, status, setlist.ErrInvalid)
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
