package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/store"
)

// AddExposure upserts serve's exposure counts in one transaction: answers
// are added (a replica's count since its last flush), users raised to the
// value given (the shared HyperLogLog's count), see store.Exposure.
func (db *DB) AddExposure(ctx context.Context, rows []store.Exposure) error {
	if len(rows) == 0 {
		return nil
	}
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, r := range rows {
			b.Queue(`INSERT INTO exposure (day, version, source, arm, answers, users) VALUES ($1::date, $2, $3, $4, $5, $6)
				ON CONFLICT (version, day, source, arm) DO UPDATE SET
					answers = exposure.answers + EXCLUDED.answers, users = GREATEST(exposure.users, EXCLUDED.users)`,
				r.Day, r.Version, string(r.Source), string(r.Arm), r.Answers, r.Users)
		}
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return classify(fmt.Sprintf("add %d exposure rows", len(rows)), err)
	}
	return nil
}

// Exposure returns the exposure rows of days since since (UTC).
func (db *DB) Exposure(ctx context.Context, since time.Time) ([]store.Exposure, error) {
	rows, err := db.Pool.Query(ctx, `SELECT to_char(day, 'YYYY-MM-DD'), version, source, arm, answers, users
		FROM exposure WHERE day >= $1::date`, store.Day(since))
	if err != nil {
		return nil, classify("read exposure", err)
	}
	var (
		out         []store.Exposure
		e           store.Exposure
		source, arm string
	)
	_, err = pgx.ForEachRow(rows, []any{&e.Day, &e.Version, &source, &arm, &e.Answers, &e.Users}, func() error {
		e.Source, e.Arm = setlist.Source(source), setlist.Arm(arm)
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, classify("read exposure", err)
	}
	return out, nil
}

// OnlineMetrics computes the online metrics of every version, source, arm
// and UTC day since since: the attributed likes and dislikes of shown songs
// (created since, by the partial index reactions_shown) joined with the
// exposure rows (store.MergeOnline).
func (db *DB) OnlineMetrics(ctx context.Context, since time.Time) ([]store.OnlineMetric, error) {
	exposure, err := db.Exposure(ctx, since)
	if err != nil {
		return nil, err
	}
	rows, err := db.Pool.Query(ctx, `SELECT to_char((created_at AT TIME ZONE 'UTC')::date, 'YYYY-MM-DD'), shown_version, shown_source, shown_arm,
			count(*) FILTER (WHERE kind = 'like'), count(*) FILTER (WHERE kind = 'dislike'),
			coalesce(sum(1.0 / shown_position) FILTER (WHERE kind = 'like'), 0)::float8
		FROM reactions
		WHERE shown_position IS NOT NULL AND shown_version IS NOT NULL AND created_at >= ($1::date)::timestamp AT TIME ZONE 'UTC'
		GROUP BY 1, 2, 3, 4`, store.Day(since))
	if err != nil {
		return nil, classify("read shown opinions", err)
	}
	var (
		opinions    []store.ShownOpinions
		o           store.ShownOpinions
		source, arm string
	)
	_, err = pgx.ForEachRow(rows, []any{&o.Day, &o.Version, &source, &arm, &o.Likes, &o.Dislikes, &o.RR}, func() error {
		o.Source, o.Arm = setlist.Source(source), setlist.Arm(arm)
		opinions = append(opinions, o)
		return nil
	})
	if err != nil {
		return nil, classify("read shown opinions", err)
	}
	return store.MergeOnline(exposure, opinions), nil
}
