package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/store"
)

const runColumns = `id, status, params, metrics, counts, timings, version, reason, notes,
	snapshot_at, started_at, finished_at, published_at`

// StartRun records a new running run and returns its id, which is also the
// model version the run publishes under.
func (db *DB) StartRun(ctx context.Context, notes string) (int64, error) {
	var id int64
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO model_runs (status, notes, started_at) VALUES ('running', ?, ?) RETURNING id`,
			notes, micros(time.Now())).Scan(&id)
	})
	if err != nil {
		return 0, wrapTx("start run", err)
	}
	return id, nil
}

// UpdateRun writes u onto run id. A terminal status also sets finished_at,
// and published sets published_at.
func (db *DB) UpdateRun(ctx context.Context, id int64, u store.RunUpdate) error {
	var cols [4]any
	for i, v := range []any{u.Params, u.Metrics, u.Counts, u.Timings} {
		if v == nil {
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("update run %d: encode: %w", id, err)
		}
		cols[i] = string(b)
	}
	var status, snapshot any
	if u.Status != "" {
		status = string(u.Status)
	}
	if u.SnapshotAt != nil {
		snapshot = micros(*u.SnapshotAt)
	}
	var version any
	if u.Version != nil {
		version = *u.Version
	}
	if u.Trials != nil {
		if err := store.ValidateTrials(u.Trials); err != nil {
			return fmt.Errorf("update run %d: %w", id, err)
		}
	}
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE model_runs SET
			status       = COALESCE(?2, status),
			params       = COALESCE(?3, params),
			metrics      = COALESCE(?4, metrics),
			counts       = COALESCE(?5, counts),
			timings      = COALESCE(?6, timings),
			version      = COALESCE(?7, version),
			reason       = CASE WHEN ?8 = '' THEN reason ELSE ?8 END,
			notes        = CASE WHEN ?9 = '' THEN notes ELSE ?9 END,
			snapshot_at  = COALESCE(?10, snapshot_at),
			finished_at  = CASE WHEN ?2 IN ('published', 'tuned', 'rejected', 'failed') THEN ?11 ELSE finished_at END,
			published_at = CASE WHEN ?2 = 'published' THEN ?11 ELSE published_at END
			WHERE id = ?1`,
			id, status, cols[0], cols[1], cols[2], cols[3], version, u.Reason, u.Notes, snapshot, micros(time.Now()))
		if err != nil {
			return classify("update", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return setlist.ErrNotFound
		}
		if u.Trials == nil {
			return nil
		}
		return replaceTrials(ctx, tx, id, u.Trials)
	})
	if err != nil {
		return wrapTx(fmt.Sprintf("update run %d", id), err)
	}
	return nil
}

// replaceTrials makes trials the run's whole recorded search.
func replaceTrials(ctx context.Context, tx *sql.Tx, id int64, trials []store.TuningTrial) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM tuning_trials WHERE run_id = ?`, id); err != nil {
		return classify("replace trials", err)
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO tuning_trials (run_id, number, rung, split, params, iterations,
		user_fraction, metrics, seconds, pruned, promoted, incumbent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return classify("replace trials", err)
	}
	defer stmt.Close()
	for _, t := range trials {
		_, err := stmt.ExecContext(ctx, id, t.Number, t.Rung, t.Split, store.JSONObject(t.Params), t.Iterations,
			t.UserFraction, store.JSONObject(t.Metrics), t.Seconds, t.Pruned, t.Promoted, t.Incumbent)
		if err != nil {
			return classify(fmt.Sprintf("insert trial %d rung %d split %d", t.Number, t.Rung, t.Split), err)
		}
	}
	return nil
}

// TuningTrials returns run id's recorded search in order of trial number,
// rung and split: empty for a run that did not tune, ErrNotFound for no
// such run. One read transaction, so the run and its trials agree.
func (db *DB) TuningTrials(ctx context.Context, id int64) ([]store.TuningTrial, error) {
	tx, err := db.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, classify(fmt.Sprintf("trials of run %d", id), err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	var one int
	if err := tx.QueryRowContext(ctx, `SELECT 1 FROM model_runs WHERE id = ?`, id).Scan(&one); errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("trials of run %d: %w", id, setlist.ErrNotFound)
	} else if err != nil {
		return nil, classify(fmt.Sprintf("trials of run %d", id), err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT run_id, number, rung, split, params, iterations, user_fraction,
		metrics, seconds, pruned, promoted, incumbent FROM tuning_trials WHERE run_id = ? ORDER BY number, rung, split`, id)
	if err != nil {
		return nil, classify(fmt.Sprintf("trials of run %d", id), err)
	}
	defer rows.Close()
	trials := []store.TuningTrial{}
	for rows.Next() {
		var t store.TuningTrial
		var params, metrics string
		if err := rows.Scan(&t.RunID, &t.Number, &t.Rung, &t.Split, &params, &t.Iterations, &t.UserFraction,
			&metrics, &t.Seconds, &t.Pruned, &t.Promoted, &t.Incumbent); err != nil {
			return nil, classify(fmt.Sprintf("trials of run %d", id), err)
		}
		t.Params, t.Metrics = json.RawMessage(params), json.RawMessage(metrics)
		trials = append(trials, t)
	}
	if err := rows.Err(); err != nil {
		return nil, classify(fmt.Sprintf("trials of run %d", id), err)
	}
	return trials, nil
}

// LastTuned returns the newest run with status tuned (a search alone), or
// ErrNotFound when none is.
func (db *DB) LastTuned(ctx context.Context) (store.Run, error) {
	return db.lastRun(ctx, "last tuned run", `status = 'tuned' ORDER BY id DESC`)
}

// Run returns one run, or ErrNotFound.
func (db *DB) Run(ctx context.Context, id int64) (store.Run, error) {
	r, err := scanRun(db.r.QueryRowContext(ctx, `SELECT `+runColumns+` FROM model_runs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Run{}, fmt.Errorf("run %d: %w", id, setlist.ErrNotFound)
	}
	if err != nil {
		return store.Run{}, classify(fmt.Sprintf("run %d", id), err)
	}
	return r, nil
}

// Runs returns the latest runs, newest first.
func (db *DB) Runs(ctx context.Context, limit int) ([]store.Run, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+runColumns+` FROM model_runs ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, classify("list runs", err)
	}
	defer rows.Close()
	var runs []store.Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, classify("list runs", err)
		}
		runs = append(runs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, classify("list runs", err)
	}
	return runs, nil
}

// LastPublished returns the run most recently made live (status published,
// latest published_at: a rollback --to an older version republishes it
// past newer ones), or ErrNotFound when none is.
func (db *DB) LastPublished(ctx context.Context) (store.Run, error) {
	return db.lastRun(ctx, "last published run", `status = 'published' ORDER BY published_at DESC, id DESC`)
}

// lastRun returns the first run that where (a condition and an order, no
// caller input) selects, or ErrNotFound.
func (db *DB) lastRun(ctx context.Context, what, where string) (store.Run, error) {
	r, err := scanRun(db.r.QueryRowContext(ctx, `SELECT `+runColumns+` FROM model_runs WHERE `+where+` LIMIT 1`))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Run{}, fmt.Errorf("%s: %w", what, setlist.ErrNotFound)
	}
	if err != nil {
		return store.Run{}, classify(what, err)
	}
	return r, nil
}

type scanner interface{ Scan(dest ...any) error }

func scanRun(row scanner) (store.Run, error) {
	var (
		r                                store.Run
		status                           string
		params, metrics, counts, timings string
		version                          sql.NullInt64
		snapshot, finished, published    sql.NullInt64
		started                          int64
	)
	err := row.Scan(&r.ID, &status, &params, &metrics, &counts, &timings, &version,
		&r.Reason, &r.Notes, &snapshot, &started, &finished, &published)
	if err != nil {
		return store.Run{}, err
	}
	r.Status = store.RunStatus(status)
	r.Params, r.Metrics, r.Counts, r.Timings = json.RawMessage(params), json.RawMessage(metrics), json.RawMessage(counts), json.RawMessage(timings)
	if version.Valid {
		v := version.Int64
		r.Version = &v
	}
	r.SnapshotAt, r.FinishedAt, r.PublishedAt = nullTime(snapshot), nullTime(finished), nullTime(published)
	r.StartedAt = fromMicros(started)
	return r, nil
}

// RecordRollback marks run rolledBack as rolled_back with reason and run
// restored as published again, in one transaction.
func (db *DB) RecordRollback(ctx context.Context, rolledBack, restored int64, reason string) error {
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE model_runs SET status = 'rolled_back', reason = ? WHERE id = ?`, reason, rolledBack)
		if err != nil {
			return classify("update", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("run %d: %w", rolledBack, setlist.ErrNotFound)
		}
		now := micros(time.Now())
		res, err = tx.ExecContext(ctx, `UPDATE model_runs SET status = 'published', published_at = ?,
			finished_at = COALESCE(finished_at, ?) WHERE id = ?`, now, now, restored)
		if err != nil {
			return classify("update", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("run %d: %w", restored, setlist.ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return wrapTx(fmt.Sprintf("record rollback of run %d to run %d", rolledBack, restored), err)
	}
	return nil
}
