package pgtest

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/postgres"
)

// Fixtures for tests elsewhere (serve's) that need rows without going
// through the CSV import; the SQL stays in the postgres package tree.

// InsertSongs inserts n songs named "Artist {first+i}" / "Track {first+i}" and
// returns their ids in order.
func InsertSongs(ctx context.Context, db *postgres.DB, first, n int) ([]setlist.SongID, error) {
	rows := make([][]any, n)
	for i := range rows {
		rows[i] = []any{fmt.Sprintf("Artist %d", first+i), fmt.Sprintf("Track %d", first+i)}
	}
	if _, err := db.Pool.CopyFrom(ctx, pgx.Identifier{"songs"}, []string{"artist", "track"}, pgx.CopyFromRows(rows)); err != nil {
		return nil, fmt.Errorf("insert songs: %w", err)
	}
	r, err := db.Pool.Query(ctx, `SELECT id FROM songs WHERE artist = ANY($1) ORDER BY id`, artists(first, n))
	if err != nil {
		return nil, fmt.Errorf("read song ids: %w", err)
	}
	ids, err := pgx.CollectRows(r, pgx.RowTo[setlist.SongID])
	if err != nil {
		return nil, fmt.Errorf("read song ids: %w", err)
	}
	return ids, nil
}

func artists(first, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("Artist %d", first+i)
	}
	return out
}

// InsertUsers inserts users with the given ids (display name "Name of {id}").
func InsertUsers(ctx context.Context, db *postgres.DB, ids []setlist.UserID) error {
	rows := make([][]any, len(ids))
	for i, id := range ids {
		rows[i] = []any{string(id), "Name of " + string(id)}
	}
	if _, err := db.Pool.CopyFrom(ctx, pgx.Identifier{"users"}, []string{"external_id", "display_name"}, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("insert users: %w", err)
	}
	return nil
}

// InsertReactions inserts reactions (no two with the same user, song and
// kind), dated a day ago so they are older than any model published now.
func InsertReactions(ctx context.Context, db *postgres.DB, rs []setlist.Reaction) error {
	rows := make([][]any, len(rs))
	for i, r := range rs {
		rows[i] = []any{string(r.User), int64(r.Song), string(r.Kind), float32(r.Weight)}
	}
	return pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE fr (external_id TEXT, song_id BIGINT, kind TEXT, weight REAL) ON COMMIT DROP`); err != nil {
			return err
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"fr"}, []string{"external_id", "song_id", "kind", "weight"}, pgx.CopyFromRows(rows)); err != nil {
			return fmt.Errorf("copy reactions: %w", err)
		}
		_, err := tx.Exec(ctx, `INSERT INTO reactions (user_id, song_id, kind, weight, created_at, updated_at)
			SELECT u.id, fr.song_id, fr.kind, fr.weight, now() - interval '1 day', now() - interval '1 day'
			FROM fr JOIN users u ON u.external_id = fr.external_id
			ON CONFLICT DO NOTHING`)
		return err
	})
}
