package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/store"
)

// StartRefresh records a running refresh of version and returns its id.
func (db *DB) StartRefresh(ctx context.Context, version int64) (int64, error) {
	var id int64
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO model_refreshes (version, started_at) VALUES (?, ?) RETURNING id`,
			version, micros(time.Now())).Scan(&id)
	})
	if err != nil {
		return 0, wrapTx("start refresh", err)
	}
	return id, nil
}

// FinishRefresh records how refresh id ended.
func (db *DB) FinishRefresh(ctx context.Context, id int64, end store.RefreshEnd) error {
	songs := end.Songs
	if songs == nil {
		songs = []setlist.SongID{}
	}
	b, err := json.Marshal(songs)
	if err != nil {
		return fmt.Errorf("finish refresh %d: encode: %w", id, err)
	}
	err = db.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE model_refreshes SET status = ?, songs_added = ?, users_updated = ?,
			songs = ?, reason = ?, finished_at = ? WHERE id = ?`,
			string(end.Status), len(end.Songs), end.UsersUpdated, string(b), end.Reason, micros(time.Now()), id)
		if err != nil {
			return classify("finish refresh", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return setlist.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return wrapTx(fmt.Sprintf("finish refresh %d", id), err)
	}
	return nil
}

// LastRefresh is the newest refresh of version (any status), or
// ErrNotFound.
func (db *DB) LastRefresh(ctx context.Context, version int64) (store.Refresh, error) {
	var (
		r             store.Refresh
		status, songs string
		started       int64
		finished      sql.NullInt64
	)
	err := db.r.QueryRowContext(ctx, `SELECT id, version, status, songs_added, users_updated, songs, reason, started_at, finished_at
		FROM model_refreshes WHERE version = ? ORDER BY id DESC LIMIT 1`, version).
		Scan(&r.ID, &r.Version, &status, &r.SongsAdded, &r.UsersUpdated, &songs, &r.Reason, &started, &finished)
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("refresh of version %d: %w", version, setlist.ErrNotFound)
	}
	if err != nil {
		return r, classify("last refresh", err)
	}
	r.Status, r.StartedAt, r.FinishedAt = store.RefreshStatus(status), fromMicros(started), nullTime(finished)
	if err := json.Unmarshal([]byte(songs), &r.Songs); err != nil {
		return r, fmt.Errorf("refresh %d: songs: %w", r.ID, err)
	}
	return r, nil
}

// SongsReactedSince lists the songs with a reaction row created at or
// after since: a refresh's candidates.
func (db *DB) SongsReactedSince(ctx context.Context, since time.Time) ([]setlist.SongID, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT DISTINCT song_id FROM reactions WHERE created_at >= ? ORDER BY song_id`, micros(since))
	if err != nil {
		return nil, classify("songs reacted since", err)
	}
	defer rows.Close()
	var out []setlist.SongID
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, classify("songs reacted since", err)
		}
		out = append(out, setlist.SongID(id))
	}
	if err := rows.Err(); err != nil {
		return nil, classify("songs reacted since", err)
	}
	return out, nil
}

// SongReactions returns every reaction to the given songs, with the
// reacting user's external id, ordered by song then user.
func (db *DB) SongReactions(ctx context.Context, songs []setlist.SongID) ([]setlist.Reaction, error) {
	var out []setlist.Reaction
	const chunk = 500 // bound the statement's parameters
	for lo := 0; lo < len(songs); lo += chunk {
		part := songs[lo:min(lo+chunk, len(songs))]
		args := make([]any, len(part))
		for i, s := range part {
			args[i] = int64(s)
		}
		rows, err := db.r.QueryContext(ctx, `SELECT u.external_id, r.song_id, r.kind, r.weight, r.updated_at
			FROM reactions r JOIN users u ON u.id = r.user_id
			WHERE r.song_id IN (?`+strings.Repeat(", ?", len(part)-1)+`) ORDER BY r.song_id, u.external_id, r.kind`, args...)
		if err != nil {
			return nil, classify("song reactions", err)
		}
		for rows.Next() {
			var (
				user, kind    string
				song, updated int64
				weight        float64
			)
			if err := rows.Scan(&user, &song, &kind, &weight, &updated); err != nil {
				rows.Close()
				return nil, classify("song reactions", err)
			}
			out = append(out, setlist.Reaction{User: setlist.UserID(user), Song: setlist.SongID(song),
				Kind: reactionKind(kind), Weight: weight, UpdatedAt: fromMicros(updated)})
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, classify("song reactions", err)
		}
	}
	return out, nil
}
