package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/store"
)

// StartRefresh records a running refresh of version and returns its id.
func (db *DB) StartRefresh(ctx context.Context, version int64) (int64, error) {
	var id int64
	err := db.Pool.QueryRow(ctx, `INSERT INTO model_refreshes (version) VALUES ($1) RETURNING id`, version).Scan(&id)
	if err != nil {
		return 0, classify("start refresh", err)
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
	tag, err := db.Pool.Exec(ctx, `UPDATE model_refreshes SET status = $2, songs_added = $3, users_updated = $4,
		songs = $5, reason = $6, finished_at = now() WHERE id = $1`,
		id, string(end.Status), len(end.Songs), end.UsersUpdated, b, end.Reason)
	if err != nil {
		return classify(fmt.Sprintf("finish refresh %d", id), err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("finish refresh %d: %w", id, setlist.ErrNotFound)
	}
	return nil
}

// LastRefresh is the newest refresh of version (any status), or
// ErrNotFound.
func (db *DB) LastRefresh(ctx context.Context, version int64) (store.Refresh, error) {
	var (
		r      store.Refresh
		status string
		songs  []byte
	)
	err := db.Pool.QueryRow(ctx, `SELECT id, version, status, songs_added, users_updated, songs, reason, started_at, finished_at
		FROM model_refreshes WHERE version = $1 ORDER BY id DESC LIMIT 1`, version).
		Scan(&r.ID, &r.Version, &status, &r.SongsAdded, &r.UsersUpdated, &songs, &r.Reason, &r.StartedAt, &r.FinishedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, fmt.Errorf("refresh of version %d: %w", version, setlist.ErrNotFound)
	}
	if err != nil {
		return r, classify("last refresh", err)
	}
	r.Status = store.RefreshStatus(status)
	if err := json.Unmarshal(songs, &r.Songs); err != nil {
		return r, fmt.Errorf("refresh %d: songs: %w", r.ID, err)
	}
	return r, nil
}

// SongsReactedSince lists the songs with a reaction row created at or
// after since (index reactions_created_song): a refresh's candidates.
func (db *DB) SongsReactedSince(ctx context.Context, since time.Time) ([]setlist.SongID, error) {
	rows, err := db.Pool.Query(ctx, `SELECT DISTINCT song_id FROM reactions WHERE created_at >= $1 ORDER BY song_id`, since)
	if err != nil {
		return nil, classify("songs reacted since", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[setlist.SongID])
	if err != nil {
		return nil, classify("songs reacted since", err)
	}
	return ids, nil
}

// SongReactions returns every reaction to the given songs, with the
// reacting user's external id, ordered by song then user.
func (db *DB) SongReactions(ctx context.Context, songs []setlist.SongID) ([]setlist.Reaction, error) {
	if len(songs) == 0 {
		return nil, nil
	}
	rows, err := db.Pool.Query(ctx, `SELECT u.external_id, r.song_id, r.kind, r.weight, r.updated_at
		FROM reactions r JOIN users u ON u.id = r.user_id
		WHERE r.song_id = ANY($1) ORDER BY r.song_id, u.external_id, r.kind`, songs)
	if err != nil {
		return nil, classify("song reactions", err)
	}
	defer rows.Close()
	var out []setlist.Reaction
	for rows.Next() {
		var (
			r    setlist.Reaction
			user string
			kind string
		)
		if err := rows.Scan(&user, &r.Song, &kind, &r.Weight, &r.UpdatedAt); err != nil {
			return nil, classify("song reactions", err)
		}
		r.User, r.Kind = setlist.UserID(user), setlist.ReactionKind(kind)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, classify("song reactions", err)
	}
	return out, nil
}
