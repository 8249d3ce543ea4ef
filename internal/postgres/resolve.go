package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/store"
)

// ResolveIDs looks up an imported model's users (by external id) and songs
// (by artist and track) in one transaction. With create, the missing ones
// are inserted first, in the same transaction, so either all exist
// afterwards or nothing was written; without it nothing is written and the
// missing ones are reported.
func (db *DB) ResolveIDs(ctx context.Context, users []setlist.UserID, songs []store.SongKey, create bool) (store.Resolved, error) {
	var res store.Resolved
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = string(u)
	}
	artists, tracks := make([]string, len(songs)), make([]string, len(songs))
	for i, s := range songs {
		artists[i], tracks[i] = s.Artist, s.Track
	}
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		if create {
			if _, err := tx.Exec(ctx, `INSERT INTO users (external_id) SELECT unnest($1::text[])
				ON CONFLICT (external_id) DO NOTHING`, ids); err != nil {
				return classify("create users", err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO songs (artist, track) SELECT * FROM unnest($1::text[], $2::text[])
				ON CONFLICT (artist, track) DO NOTHING`, artists, tracks); err != nil {
				return classify("create songs", err)
			}
		}
		rows, _ := tx.Query(ctx, `SELECT k.ord FROM unnest($1::text[]) WITH ORDINALITY AS k(external_id, ord)
			WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.external_id = k.external_id) ORDER BY k.ord`, ids)
		missing, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return classify("find users", err)
		}
		for _, o := range missing {
			res.MissingUsers = append(res.MissingUsers, users[o-1])
		}
		res.Songs = make([]setlist.SongID, len(songs))
		rows, _ = tx.Query(ctx, `SELECT k.ord, s.id FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k(artist, track, ord)
			JOIN songs s ON s.artist = k.artist AND s.track = k.track`, artists, tracks)
		var ord, id int64
		if _, err := pgx.ForEachRow(rows, []any{&ord, &id}, func() error {
			res.Songs[ord-1] = setlist.SongID(id)
			return nil
		}); err != nil {
			return classify("find songs", err)
		}
		for i, id := range res.Songs {
			if id == 0 {
				res.MissingSongs = append(res.MissingSongs, songs[i])
			}
		}
		return nil
	})
	if err != nil {
		return store.Resolved{}, fmt.Errorf("resolve %d users and %d songs: %w", len(users), len(songs), err)
	}
	return res, nil
}
