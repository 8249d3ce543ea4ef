package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/store"
)

// ResolveIDs looks up an imported model's users (by external id) and songs
// (by artist and track) in one transaction. With create, the missing ones
// are inserted in the same transaction, so either all exist afterwards or
// nothing was written; without it nothing is written and the missing ones
// are reported.
func (db *DB) ResolveIDs(ctx context.Context, users []setlist.UserID, songs []store.SongKey, create bool) (store.Resolved, error) {
	var res store.Resolved
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		now := micros(time.Now())
		for _, u := range users {
			var id int64
			err := tx.QueryRowContext(ctx, `SELECT id FROM users WHERE external_id = ?`, string(u)).Scan(&id)
			switch {
			case errors.Is(err, sql.ErrNoRows) && create:
				if _, err := tx.ExecContext(ctx, `INSERT INTO users (external_id, created_at) VALUES (?, ?)`, string(u), now); err != nil {
					return classify("create user", err)
				}
			case errors.Is(err, sql.ErrNoRows):
				res.MissingUsers = append(res.MissingUsers, u)
			case err != nil:
				return classify("find user", err)
			}
		}
		res.Songs = make([]setlist.SongID, len(songs))
		for i, s := range songs {
			var id int64
			err := tx.QueryRowContext(ctx, `SELECT id FROM songs WHERE artist = ? AND track = ?`, s.Artist, s.Track).Scan(&id)
			switch {
			case errors.Is(err, sql.ErrNoRows) && create:
				r, err := tx.ExecContext(ctx, `INSERT INTO songs (artist, track, created_at) VALUES (?, ?, ?)`, s.Artist, s.Track, now)
				if err != nil {
					return classify("create song", err)
				}
				if id, err = r.LastInsertId(); err != nil {
					return classify("create song", err)
				}
			case errors.Is(err, sql.ErrNoRows):
				res.MissingSongs = append(res.MissingSongs, s)
				continue
			case err != nil:
				return classify("find song", err)
			}
			res.Songs[i] = setlist.SongID(id)
		}
		return nil
	})
	if err != nil {
		return store.Resolved{}, wrapTx(fmt.Sprintf("resolve %d users and %d songs", len(users), len(songs)), err)
	}
	return res, nil
}
