package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/store"
)

// version is TEXT in the schema (a Redis key fragment) but always a run id, so
// it is cast to the Go side's int64 in both directions.
const runColumns = `id, status, params, metrics, counts, timings, version::bigint, reason, notes,
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
func (db *DB) UpdateRun(ctx context.Context, id int64, u store.RunUpdate) error {
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
	if u.Trials != nil {
		if err := store.ValidateTrials(u.Trials); err != nil {
			return fmt.Errorf("update run %d: %w", id, err)
		}
	}
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE model_runs SET
		status       = COALESCE($2, status),
		params       = COALESCE($3::jsonb, params),
		metrics      = COALESCE($4::jsonb, metrics),
		counts       = COALESCE($5::jsonb, counts),
		timings      = COALESCE($6::jsonb, timings),
		version      = COALESCE($7::bigint::text, version),
		reason       = CASE WHEN $8 = '' THEN reason ELSE $8 END,
		notes        = CASE WHEN $9 = '' THEN notes ELSE $9 END,
		snapshot_at  = COALESCE($10, snapshot_at),
		finished_at  = CASE WHEN $2 IN ('published', 'tuned', 'rejected', 'failed') THEN now() ELSE finished_at END,
		published_at = CASE WHEN $2 = 'published' THEN now() ELSE published_at END
		WHERE id = $1`,
			id, status, cols[0], cols[1], cols[2], cols[3], u.Version, u.Reason, u.Notes, u.SnapshotAt)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return setlist.ErrNotFound
		}
		if u.Trials == nil {
			return nil
		}
		return replaceTrials(ctx, tx, id, u.Trials)
	})
	if err != nil {
		return fmt.Errorf("update run %d: %w", id, err)
	}
	return nil
}

// replaceTrials makes trials the run's whole recorded search.
func replaceTrials(ctx context.Context, tx pgx.Tx, id int64, trials []store.TuningTrial) error {
	if _, err := tx.Exec(ctx, `DELETE FROM tuning_trials WHERE run_id = $1`, id); err != nil {
		return fmt.Errorf("replace trials: %w", err)
	}
	rows := make([][]any, len(trials))
	for i, t := range trials {
		rows[i] = []any{id, t.Number, t.Rung, t.Split, store.JSONObject(t.Params), t.Iterations, t.UserFraction,
			store.JSONObject(t.Metrics), t.Seconds, t.Pruned, t.Promoted, t.Incumbent}
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"tuning_trials"}, trialColumns, pgx.CopyFromRows(rows))
	if err != nil {
		return fmt.Errorf("insert %d trials: %w", len(trials), err)
	}
	return nil
}

// trialColumns are tuning_trials' columns in replaceTrials' row order.
var trialColumns = []string{"run_id", "number", "rung", "split", "params", "iterations", "user_fraction",
	"metrics", "seconds", "pruned", "promoted", "incumbent"}

// TuningTrials returns run id's recorded search in order of trial number,
// rung and split: empty for a run that did not tune, ErrNotFound for no
// such run.
func (db *DB) TuningTrials(ctx context.Context, id int64) ([]store.TuningTrial, error) {
	rows, err := db.Pool.Query(ctx, `SELECT r.id, t.run_id IS NOT NULL, t.number, t.rung, t.split, t.params, t.iterations,
			t.user_fraction, t.metrics, t.seconds, t.pruned, t.promoted, t.incumbent
		FROM model_runs r LEFT JOIN tuning_trials t ON t.run_id = r.id
		WHERE r.id = $1 ORDER BY t.number, t.rung, t.split`, id)
	if err != nil {
		return nil, fmt.Errorf("trials of run %d: %w", id, err)
	}
	defer rows.Close()
	found := false
	trials := []store.TuningTrial{}
	for rows.Next() {
		found = true
		var (
			t                       store.TuningTrial
			has                     bool
			number, rung, split, it *int32
			frac, secs              *float64
			params, metrics         []byte
			pruned, promoted, inc   *bool
		)
		if err := rows.Scan(&t.RunID, &has, &number, &rung, &split, &params, &it, &frac, &metrics, &secs, &pruned, &promoted, &inc); err != nil {
			return nil, fmt.Errorf("trials of run %d: %w", id, err)
		}
		if !has {
			continue
		}
		t.Number, t.Rung, t.Split, t.Iterations = int(*number), int(*rung), int(*split), int(*it)
		t.UserFraction, t.Seconds = *frac, *secs
		t.Params, t.Metrics = params, metrics
		t.Pruned, t.Promoted, t.Incumbent = *pruned, *promoted, *inc
		trials = append(trials, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("trials of run %d: %w", id, err)
	}
	if !found {
		return nil, fmt.Errorf("trials of run %d: %w", id, setlist.ErrNotFound)
	}
	return trials, nil
}

// Run returns one run.
func (db *DB) Run(ctx context.Context, id int64) (store.Run, error) {
	rows, err := db.Pool.Query(ctx, `SELECT `+runColumns+` FROM model_runs WHERE id = $1`, id)
	if err != nil {
		return store.Run{}, fmt.Errorf("run %d: %w", id, err)
	}
	r, err := pgx.CollectExactlyOneRow(rows, scanRun)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Run{}, fmt.Errorf("run %d: %w", id, setlist.ErrNotFound)
	}
	if err != nil {
		return store.Run{}, fmt.Errorf("run %d: %w", id, err)
	}
	return r, nil
}

// Runs returns the latest runs, newest first.
func (db *DB) Runs(ctx context.Context, limit int) ([]store.Run, error) {
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

// LastPublished returns the run most recently made live (status published,
// latest published_at: a rollback --to an older version republishes it
// past newer ones), or ErrNotFound when none is.
func (db *DB) LastPublished(ctx context.Context) (store.Run, error) {
	return db.lastRun(ctx, "last published run", `status = 'published' ORDER BY published_at DESC, id DESC`)
}

// LastTuned returns the newest run that was a search alone (status tuned),
// or ErrNotFound when none is: the parameters a train starts from when they
// are newer than the last published run's.
func (db *DB) LastTuned(ctx context.Context) (store.Run, error) {
	return db.lastRun(ctx, "last tuned run", `status = 'tuned' ORDER BY id DESC`)
}

// lastRun returns the first run that where (a condition and an order, no
// caller input) selects, or ErrNotFound.
func (db *DB) lastRun(ctx context.Context, what, where string) (store.Run, error) {
	rows, err := db.Pool.Query(ctx, `SELECT `+runColumns+` FROM model_runs WHERE `+where+` LIMIT 1`)
	if err != nil {
		return store.Run{}, fmt.Errorf("%s: %w", what, err)
	}
	r, err := pgx.CollectExactlyOneRow(rows, scanRun)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Run{}, fmt.Errorf("%s: %w", what, setlist.ErrNotFound)
	}
	if err != nil {
		return store.Run{}, fmt.Errorf("%s: %w", what, err)
	}
	return r, nil
}

func scanRun(row pgx.CollectableRow) (store.Run, error) {
	var r store.Run
	var status string
	err := row.Scan(&r.ID, &status, &r.Params, &r.Metrics, &r.Counts, &r.Timings, &r.Version,
		&r.Reason, &r.Notes, &r.SnapshotAt, &r.StartedAt, &r.FinishedAt, &r.PublishedAt)
	r.Status = store.RunStatus(status)
	return r, err
}

// RecordRollback marks run rolledBack as rolled_back with reason and run
// restored as published again, in one transaction so the registry never
// shows two published runs or none.
func (db *DB) RecordRollback(ctx context.Context, rolledBack, restored int64, reason string) error {
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE model_runs SET status = 'rolled_back', reason = $2 WHERE id = $1`, rolledBack, reason)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("run %d: %w", rolledBack, setlist.ErrNotFound)
		}
		tag, err = tx.Exec(ctx, `UPDATE model_runs SET status = 'published', published_at = now(),
			finished_at = COALESCE(finished_at, now()) WHERE id = $1`, restored)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("run %d: %w", restored, setlist.ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record rollback of run %d to run %d: %w", rolledBack, restored, err)
	}
	return nil
}

// trainLockID keys the session advisory lock a training run holds from its
// start to its publish, so two runs never publish at once. It differs from
// migrationLockID so a migration never waits on a training run.
const trainLockID = 0x5e71157002

// LockTraining takes the training lock on a dedicated connection (not from
// the pool: closing it is what guarantees release, even if the unlock
// statement fails) and returns the function that releases it. The
// connection's application_name names this process, so a second run can say
// who holds the lock. When the lock is taken and wait is false it returns an
// error wrapping setlist.ErrConflict at once; when wait is true it calls
// onWait with the holder and blocks until the lock is free or ctx ends.
func (db *DB) LockTraining(ctx context.Context, wait bool, onWait func(holder string)) (release func(), err error) {
	cfg := db.Pool.Config().ConnConfig.Copy()
	host, _ := os.Hostname()
	cfg.RuntimeParams["application_name"] = fmt.Sprintf("setlist batch train pid %d on %s", os.Getpid(), host)
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("training lock: connect: %w: %w", setlist.ErrUnavailable, err)
	}
	fail := func(err error) (func(), error) {
		closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
		return nil, err
	}
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, int64(trainLockID)).Scan(&ok); err != nil {
		return fail(fmt.Errorf("training lock: %w", err))
	}
	if !ok {
		holder := lockHolder(ctx, conn)
		if !wait {
			return fail(fmt.Errorf("another batch train holds the lock (%s): %w", holder, setlist.ErrConflict))
		}
		if onWait != nil {
			onWait(holder)
		}
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(trainLockID)); err != nil {
			return fail(fmt.Errorf("training lock: wait for %s: %w", holder, err))
		}
	}
	// Holding the lock proves no run is alive, so a row still "running"
	// belongs to a process that was killed (SIGKILL, OOM, node loss) before
	// it could record its outcome: mark it failed instead of leaving it
	// running forever. Best effort: a failure here must not stop training.
	_, _ = conn.Exec(ctx, `UPDATE model_runs SET status = 'failed', finished_at = now(),
		reason = 'interrupted: its process ended without recording an outcome (found by the next run)'
		WHERE status = 'running'`)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _ = conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, int64(trainLockID))
		_ = conn.Close(ctx)
	}, nil
}

// lockHolder describes the session holding the training lock, for messages.
func lockHolder(ctx context.Context, conn *pgx.Conn) string {
	var app string
	var pid int32
	var since time.Time
	err := conn.QueryRow(ctx, `SELECT a.application_name, a.pid, a.backend_start
		FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
		  AND l.classid = ($1::bigint >> 32)::oid AND l.objid = ($1::bigint & 4294967295)::oid
		  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		LIMIT 1`, int64(trainLockID)).Scan(&app, &pid, &since)
	if err != nil {
		return "holder unknown"
	}
	if app == "" {
		app = "unnamed client"
	}
	return fmt.Sprintf("%s, postgres backend %d, connected %s", app, pid, since.Format(time.RFC3339))
}
