package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/setlist/setlist"
)

// RunStatus is where a model run stands in its life.
type RunStatus string

// The run statuses. A run is created running and ends in exactly one of the
// others; rolled_back marks a published run that a rollback replaced.
const (
	RunRunning    RunStatus = "running"
	RunPublished  RunStatus = "published"
	RunRejected   RunStatus = "rejected"
	RunFailed     RunStatus = "failed"
	RunRolledBack RunStatus = "rolled_back"
)

// Run is one row of the model registry. Params, Metrics, Counts and Timings
// are JSON objects whose shape belongs to the pipeline; the registry only
// stores them.
type Run struct {
	ID          int64           `json:"id"`
	Status      RunStatus       `json:"status"`
	Params      json.RawMessage `json:"params"`
	Metrics     json.RawMessage `json:"metrics"`
	Counts      json.RawMessage `json:"counts"`
	Timings     json.RawMessage `json:"timings"`
	Version     *int64          `json:"version,omitempty"`
	Reason      string          `json:"reason,omitempty"`
	Notes       string          `json:"notes,omitempty"`
	SnapshotAt  *time.Time      `json:"snapshot_at,omitempty"`
	StartedAt   time.Time       `json:"started_at"`
	FinishedAt  *time.Time      `json:"finished_at,omitempty"`
	PublishedAt *time.Time      `json:"published_at,omitempty"`
}

// RunUpdate is what a run records when it ends (or along the way). Nil
// fields are left as they are.
type RunUpdate struct {
	Status     RunStatus
	Params     any
	Metrics    any
	Counts     any
	Timings    any
	Version    *int64
	Reason     string
	Notes      string
	SnapshotAt *time.Time
}

const runColumns = `id, status, params, metrics, counts, timings, version, reason, notes,
	snapshot_at, started_at, finished_at, published_at`

// StartRun records a new running run and returns its id, which is also the
// model version the run publishes under.
func (db *DB) StartRun(ctx context.Context, notes string) (int64, error) {
	var id int64
	err := db.Pool.QueryRow(ctx, `INSERT INTO model_runs (status, notes) VALUES ('running', $1) RETURNING id`, notes).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("start run: %w", err)
	}
	return id, nil
}

// UpdateRun writes u onto run id. A terminal status also sets finished_at,
// and published sets published_at.
func (db *DB) UpdateRun(ctx context.Context, id int64, u RunUpdate) error {
	enc := func(v any) ([]byte, error) {
		if v == nil {
			return nil, nil
		}
		return json.Marshal(v)
	}
	var cols [4][]byte
	for i, v := range []any{u.Params, u.Metrics, u.Counts, u.Timings} {
		b, err := enc(v)
		if err != nil {
			return fmt.Errorf("update run %d: encode: %w", id, err)
		}
		cols[i] = b
	}
	var status *string
	if u.Status != "" {
		s := string(u.Status)
		status = &s
	}
	tag, err := db.Pool.Exec(ctx, `UPDATE model_runs SET
		status       = COALESCE($2, status),
		params       = COALESCE($3::jsonb, params),
		metrics      = COALESCE($4::jsonb, metrics),
		counts       = COALESCE($5::jsonb, counts),
		timings      = COALESCE($6::jsonb, timings),
		version      = COALESCE($7, version),
		reason       = CASE WHEN $8 = '' THEN reason ELSE $8 END,
		notes        = CASE WHEN $9 = '' THEN notes ELSE $9 END,
		snapshot_at  = COALESCE($10, snapshot_at),
		finished_at  = CASE WHEN $2 IN ('published', 'rejected', 'failed') THEN now() ELSE finished_at END,
		published_at = CASE WHEN $2 = 'published' THEN now() ELSE published_at END
		WHERE id = $1`,
		id, status, cols[0], cols[1], cols[2], cols[3], u.Version, u.Reason, u.Notes, u.SnapshotAt)
	if err != nil {
		return fmt.Errorf("update run %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("update run %d: %w", id, setlist.ErrNotFound)
	}
	return nil
}

// Run returns one run.
func (db *DB) Run(ctx context.Context, id int64) (Run, error) {
	rows, err := db.Pool.Query(ctx, `SELECT `+runColumns+` FROM model_runs WHERE id = $1`, id)
	if err != nil {
		return Run{}, fmt.Errorf("run %d: %w", id, err)
	}
	r, err := pgx.CollectExactlyOneRow(rows, scanRun)
	if errors.Is(err, pgx.ErrNoRows) {
		return Run{}, fmt.Errorf("run %d: %w", id, setlist.ErrNotFound)
	}
	if err != nil {
		return Run{}, fmt.Errorf("run %d: %w", id, err)
	}
	return r, nil
}

// Runs returns the latest runs, newest first.
func (db *DB) Runs(ctx context.Context, limit int) ([]Run, error) {
	rows, err := db.Pool.Query(ctx, `SELECT `+runColumns+` FROM model_runs ORDER BY id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	runs, err := pgx.CollectRows(rows, scanRun)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return runs, nil
}

// LastPublished returns the newest run that is currently or was last
// published (status published), or ErrNotFound when none is.
func (db *DB) LastPublished(ctx context.Context) (Run, error) {
	rows, err := db.Pool.Query(ctx, `SELECT `+runColumns+` FROM model_runs
		WHERE status = 'published' ORDER BY id DESC LIMIT 1`)
	if err != nil {
		return Run{}, fmt.Errorf("last published run: %w", err)
	}
	r, err := pgx.CollectExactlyOneRow(rows, scanRun)
	if errors.Is(err, pgx.ErrNoRows) {
		return Run{}, fmt.Errorf("last published run: %w", setlist.ErrNotFound)
	}
	if err != nil {
		return Run{}, fmt.Errorf("last published run: %w", err)
	}
	return r, nil
}

func scanRun(row pgx.CollectableRow) (Run, error) {
	var r Run
	var status string
	err := row.Scan(&r.ID, &status, &r.Params, &r.Metrics, &r.Counts, &r.Timings, &r.Version,
		&r.Reason, &r.Notes, &r.SnapshotAt, &r.StartedAt, &r.FinishedAt, &r.PublishedAt)
	r.Status = RunStatus(status)
	return r, err
}
