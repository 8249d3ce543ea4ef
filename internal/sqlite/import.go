package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/setlist/setlist/internal/store"
)

// Import loads a CSV of play counts with the postgres backend's semantics
// (see postgres.DB.Import and store.Rows): the file is a snapshot of counts,
// so importing it again sets the same weights and changes nothing; rows it
// lacks are left alone; repeated (user_id, artist, track) rows are summed;
// either the whole file lands, in one transaction, or nothing does.
//
// Unlike the postgres backend it sums the rows in memory before writing
// (memory grows with the distinct keys, not the rows): the embedded backend
// serves samples and playgrounds, not the 50M-row production file.
// opts.PerRowFKChecks does not apply; FKChecks is "per-row" (SQLite checks
// each row's foreign keys).
func (db *DB) Import(ctx context.Context, r io.Reader, opts store.ImportOptions) (store.ImportSummary, error) {
	start := time.Now()
	if opts.Source == "" {
		opts.Source = "input"
	}
	sum := store.ImportSummary{Source: opts.Source, FKChecks: "per-row"}
	src, err := store.NewRows(r, opts)
	if err != nil {
		return sum, err
	}
	type key struct{ user, artist, track string }
	plays := map[key]float64{}
	users := map[string]int64{}
	type song struct{ artist, track string }
	songs := map[song]int64{}
	for src.Next() {
		v, _ := src.Values()
		k := key{v[0].(string), v[1].(string), v[2].(string)}
		plays[k] += v[3].(float64)
		users[k.user] = 0
		songs[song{k.artist, k.track}] = 0
	}
	if err := src.Err(); err != nil {
		return sum, err
	}
	sum.Rows, sum.Skipped, sum.SkippedRows = src.Counts()

	fail := func(step string, err error) (store.ImportSummary, error) {
		return sum, classify(fmt.Sprintf("import %s: %s", opts.Source, step), err)
	}
	now := micros(time.Now())
	err = db.writeTx(ctx, func(tx *sql.Tx) error {
		src.Report("users")
		ids := slices.Sorted(mapKeys(users))
		for _, u := range ids {
			res, err := tx.ExecContext(ctx, `INSERT INTO users (external_id, created_at) VALUES (?, ?) ON CONFLICT (external_id) DO NOTHING`, u, now)
			if err != nil {
				return fmt.Errorf("insert users: %w", err)
			}
			n, _ := res.RowsAffected()
			sum.Users.Inserted += n
			var id int64
			if err := tx.QueryRowContext(ctx, `SELECT id FROM users WHERE external_id = ?`, u).Scan(&id); err != nil {
				return fmt.Errorf("map users: %w", err)
			}
			users[u] = id
		}
		sum.Users.Unchanged = int64(len(users)) - sum.Users.Inserted

		src.Report("songs")
		keys := slices.SortedFunc(mapKeys(songs), func(a, b song) int {
			return cmp.Or(cmp.Compare(a.artist, b.artist), cmp.Compare(a.track, b.track))
		})
		for _, s := range keys {
			res, err := tx.ExecContext(ctx, `INSERT INTO songs (artist, track, created_at) VALUES (?, ?, ?) ON CONFLICT (artist, track) DO NOTHING`, s.artist, s.track, now)
			if err != nil {
				return fmt.Errorf("insert songs: %w", err)
			}
			n, _ := res.RowsAffected()
			sum.Songs.Inserted += n
			var id int64
			if err := tx.QueryRowContext(ctx, `SELECT id FROM songs WHERE artist = ? AND track = ?`, s.artist, s.track).Scan(&id); err != nil {
				return fmt.Errorf("map songs: %w", err)
			}
			songs[s] = id
		}
		sum.Songs.Unchanged = int64(len(songs)) - sum.Songs.Inserted

		src.Report("reactions")
		// One (user, song) may be reached by several keys only if they are
		// equal, so each key is one reaction row.
		for k, total := range plays {
			u, s := users[k.user], songs[song{k.artist, k.track}]
			w := float64(float32(total)) // REAL in PostgreSQL: the same rounding
			var old float64
			err := tx.QueryRowContext(ctx, `SELECT weight FROM reactions WHERE user_id = ? AND song_id = ? AND kind = 'play'`, u, s).Scan(&old)
			switch {
			case err == sql.ErrNoRows:
				if _, err := tx.ExecContext(ctx, `INSERT INTO reactions (user_id, song_id, kind, weight, created_at, updated_at)
					VALUES (?, ?, 'play', ?, ?, ?)`, u, s, w, now, now); err != nil {
					return fmt.Errorf("insert reactions: %w", err)
				}
				sum.Reactions.Inserted++
			case err != nil:
				return fmt.Errorf("read reactions: %w", err)
			case old != w:
				if _, err := tx.ExecContext(ctx, `UPDATE reactions SET weight = ?, updated_at = ?
					WHERE user_id = ? AND song_id = ? AND kind = 'play'`, w, now, u, s); err != nil {
					return fmt.Errorf("update reactions: %w", err)
				}
				sum.Reactions.Updated++
			default:
				sum.Reactions.Unchanged++
			}
		}
		src.Report("commit")
		return nil
	})
	if err != nil {
		return fail("write", err)
	}
	sum.Duration = time.Since(start)
	return sum, nil
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
