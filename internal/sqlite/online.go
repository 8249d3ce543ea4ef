package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/store"
)

// AddExposure upserts serve's exposure counts in one transaction, with the
// postgres backend's rules (answers added, users raised; see
// store.Exposure).
func (db *DB) AddExposure(ctx context.Context, rows []store.Exposure) error {
	if len(rows) == 0 {
		return nil
	}
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		for _, r := range rows {
			_, err := tx.ExecContext(ctx, `INSERT INTO exposure (day, version, source, arm, answers, users) VALUES (?, ?, ?, ?, ?, ?)
				ON CONFLICT (version, day, source, arm) DO UPDATE SET
					answers = exposure.answers + excluded.answers, users = max(exposure.users, excluded.users)`,
				r.Day, r.Version, string(r.Source), string(r.Arm), r.Answers, r.Users)
			if err != nil {
				return classify("upsert exposure", err)
			}
		}
		return nil
	})
	if err != nil {
		return wrapTx(fmt.Sprintf("add %d exposure rows", len(rows)), err)
	}
	return nil
}

// Exposure returns the exposure rows of days since since (UTC).
func (db *DB) Exposure(ctx context.Context, since time.Time) ([]store.Exposure, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT day, version, source, arm, answers, users FROM exposure WHERE day >= ?`, store.Day(since))
	if err != nil {
		return nil, classify("read exposure", err)
	}
	defer rows.Close()
	var out []store.Exposure
	for rows.Next() {
		var (
			e           store.Exposure
			source, arm string
		)
		if err := rows.Scan(&e.Day, &e.Version, &source, &arm, &e.Answers, &e.Users); err != nil {
			return nil, classify("read exposure", err)
		}
		e.Source, e.Arm = setlist.Source(source), setlist.Arm(arm)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, classify("read exposure", err)
	}
	return out, nil
}

// OnlineMetrics computes the online metrics of every version, source, arm
// and UTC day since since, as the postgres backend does.
func (db *DB) OnlineMetrics(ctx context.Context, since time.Time) ([]store.OnlineMetric, error) {
	exposure, err := db.Exposure(ctx, since)
	if err != nil {
		return nil, err
	}
	day, _ := time.Parse(store.DayLayout, store.Day(since))
	rows, err := db.r.QueryContext(ctx, `SELECT date(created_at / 1000000, 'unixepoch'), shown_version, shown_source, shown_arm,
			sum(kind = 'like'), sum(kind = 'dislike'), coalesce(sum(CASE WHEN kind = 'like' THEN 1.0 / shown_position END), 0)
		FROM reactions
		WHERE shown_position IS NOT NULL AND shown_version IS NOT NULL AND created_at >= ?
		GROUP BY 1, 2, 3, 4`, micros(day))
	if err != nil {
		return nil, classify("read shown opinions", err)
	}
	defer rows.Close()
	var opinions []store.ShownOpinions
	for rows.Next() {
		var (
			o           store.ShownOpinions
			source, arm string
		)
		if err := rows.Scan(&o.Day, &o.Version, &source, &arm, &o.Likes, &o.Dislikes, &o.RR); err != nil {
			return nil, classify("read shown opinions", err)
		}
		o.Source, o.Arm = setlist.Source(source), setlist.Arm(arm)
		opinions = append(opinions, o)
	}
	if err := rows.Err(); err != nil {
		return nil, classify("read shown opinions", err)
	}
	return store.MergeOnline(exposure, opinions), nil
}
