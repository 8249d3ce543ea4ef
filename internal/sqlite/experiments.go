package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	sqlitedrv "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/experiment"
	"github.com/setlist/setlist/internal/store"
)

const experimentColumns = `id, name, control_version, challenger_version, share, salt, alpha, mde, status, started_at, ended_at`

func scanExperiment(row scanner) (store.Experiment, error) {
	var (
		e       store.Experiment
		status  string
		started int64
		ended   sql.NullInt64
	)
	err := row.Scan(&e.ID, &e.Name, &e.Control, &e.Challenger, &e.Share, &e.Salt, &e.Alpha, &e.MDE, &status, &started, &ended)
	e.Status, e.StartedAt, e.EndedAt = store.ExperimentStatus(status), fromMicros(started), nullTime(ended)
	return e, err
}

// StartExperiment records a running experiment. A second one while one runs
// is refused with setlist.ErrConflict, by the partial unique index.
func (db *DB) StartExperiment(ctx context.Context, n store.NewExperiment) (store.Experiment, error) {
	if err := n.Validate(); err != nil {
		return store.Experiment{}, fmt.Errorf("start experiment: %w", err)
	}
	var e store.Experiment
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		var err error
		e, err = scanExperiment(tx.QueryRowContext(ctx, `INSERT INTO experiments
			(name, control_version, challenger_version, share, salt, alpha, mde, started_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING `+experimentColumns,
			n.Name, n.Control, n.Challenger, n.Share, n.Salt, n.Alpha, n.MDE, micros(time.Now())))
		var se *sqlitedrv.Error
		switch {
		case isUnique(err):
			return fmt.Errorf("another experiment is running (stop or promote it first): %w", setlist.ErrConflict)
		case errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return fmt.Errorf("version %d or %d is not a recorded run: %w", n.Control, n.Challenger, setlist.ErrNotFound)
		case err != nil:
			return classify("insert", err)
		}
		return nil
	})
	if err != nil {
		return store.Experiment{}, wrapTx("start experiment", err)
	}
	return e, nil
}

// RunningExperiment returns the running experiment, or setlist.ErrNotFound.
func (db *DB) RunningExperiment(ctx context.Context) (store.Experiment, error) {
	e, err := scanExperiment(db.r.QueryRowContext(ctx, `SELECT `+experimentColumns+` FROM experiments WHERE status = 'running'`))
	if errors.Is(err, sql.ErrNoRows) {
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
	var e store.Experiment
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		var err error
		e, err = scanExperiment(tx.QueryRowContext(ctx, `UPDATE experiments SET status = ?, ended_at = ?
			WHERE id = ? AND status = 'running' RETURNING `+experimentColumns, string(status), micros(time.Now()), id))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("not running: %w", setlist.ErrNotFound)
		}
		if err != nil {
			return classify("update", err)
		}
		return nil
	})
	if err != nil {
		return store.Experiment{}, wrapTx(fmt.Sprintf("end experiment %d", id), err)
	}
	return e, nil
}

// Experiments returns at most limit experiments, the newest first.
func (db *DB) Experiments(ctx context.Context, limit int) ([]store.Experiment, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+experimentColumns+` FROM experiments ORDER BY id DESC LIMIT ?`, max(limit, 1))
	if err != nil {
		return nil, fmt.Errorf("list experiments: %w", classify("select", err))
	}
	defer rows.Close()
	var es []store.Experiment
	for rows.Next() {
		e, err := scanExperiment(rows)
		if err != nil {
			return nil, fmt.Errorf("list experiments: %w", classify("scan", err))
		}
		es = append(es, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list experiments: %w", classify("select", err))
	}
	return es, nil
}

// RecordExposures records that users were answered in arms of experiment
// id, once per user (the first recorded exposure's time is kept); users
// the database does not know and experiments no longer running are
// skipped.
func (db *DB) RecordExposures(ctx context.Context, id int64, exps []store.ExperimentExposure) error {
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		var running int
		err := tx.QueryRowContext(ctx, `SELECT count(*) FROM experiments WHERE id = ? AND status = 'running'`, id).Scan(&running)
		if err != nil || running == 0 {
			return err
		}
		stmt, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO experiment_exposures (experiment_id, user_id, arm, first_at)
			SELECT ?, id, ?, ? FROM users WHERE external_id = ?`)
		if err != nil {
			return classify("prepare", err)
		}
		defer stmt.Close()
		for _, x := range exps {
			if x.Arm != setlist.ArmControl && x.Arm != setlist.ArmChallenger {
				continue
			}
			if _, err := stmt.ExecContext(ctx, id, string(x.Arm), micros(x.At), string(x.User)); err != nil {
				return classify("insert", err)
			}
		}
		return nil
	})
	if err != nil {
		return wrapTx(fmt.Sprintf("record exposures of experiment %d", id), err)
	}
	return nil
}

// ExperimentCounts reads experiment id's outcome per arm: the users it
// exposed, and those who liked a song they were shown in that arm
// (attributed by serve, migration 0006) at or after their first exposure
// and before it ended.
func (db *DB) ExperimentCounts(ctx context.Context, id int64) (control, challenger experiment.Counts, err error) {
	rows, err := db.r.QueryContext(ctx, `SELECT x.arm, count(*),
			count(*) FILTER (WHERE EXISTS (SELECT 1 FROM reactions r WHERE r.user_id = x.user_id AND r.kind = 'like'
				AND r.shown_arm = x.arm AND r.shown_position IS NOT NULL AND r.created_at >= x.first_at AND (e.ended_at IS NULL OR r.created_at < e.ended_at)))
		FROM experiment_exposures x JOIN experiments e ON e.id = x.experiment_id
		WHERE x.experiment_id = ? GROUP BY x.arm`, id)
	if err != nil {
		return control, challenger, fmt.Errorf("outcomes of experiment %d: %w", id, classify("select", err))
	}
	defer rows.Close()
	for rows.Next() {
		var (
			arm     string
			n, conv int64
		)
		if err := rows.Scan(&arm, &n, &conv); err != nil {
			return control, challenger, fmt.Errorf("outcomes of experiment %d: %w", id, classify("scan", err))
		}
		c := experiment.Counts{Units: n, Converted: conv}
		if arm == string(setlist.ArmChallenger) {
			challenger = c
		} else {
			control = c
		}
	}
	if err := rows.Err(); err != nil {
		return control, challenger, fmt.Errorf("outcomes of experiment %d: %w", id, classify("select", err))
	}
	return control, challenger, nil
}
