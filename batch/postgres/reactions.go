package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/batch/store"
)

// UserReactions returns the user's reactions for fold-in, at most limit of
// them (limit ≤ 0: all) in store.FoldInOrder: one primary key range scan (the
// user's id is resolved inside the statement). Only when that finds nothing
// does a second query tell an unknown user (ErrNotFound) from one without
// reactions, so the common case is one round trip. Rows are scanned into
// plain values, not pointers: at 200 reactions the decoding is most of the
// cost.
func (db *DB) UserReactions(ctx context.Context, id setlist.UserID, limit int) ([]setlist.Reaction, error) {
	var lim *int64 // NULL: no limit
	if limit > 0 {
		l := int64(limit)
		lim = &l
	}
	rows, err := db.Pool.Query(ctx, `SELECT song_id, kind, weight, updated_at FROM reactions
		WHERE user_id = (SELECT id FROM users WHERE external_id = $1)
		ORDER BY `+store.FoldInOrder+` LIMIT $2`, string(id), lim)
	if err != nil {
		return nil, classify(fmt.Sprintf("reactions of %q", id), err)
	}
	var (
		out     []setlist.Reaction
		song    int64
		kind    string
		weight  float32
		updated time.Time
	)
	_, err = pgx.ForEachRow(rows, []any{&song, &kind, &weight, &updated}, func() error {
		out = append(out, setlist.Reaction{User: id, Song: setlist.SongID(song), Kind: reactionKind(kind),
			Weight: float64(weight), UpdatedAt: updated})
		return nil
	})
	if err != nil {
		return nil, classify(fmt.Sprintf("reactions of %q", id), err)
	}
	if len(out) == 0 {
		if _, err := userIDOf(ctx, db.Pool, id); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ReactedSongs returns every song the user reacted to (any kind), or
// ErrNotFound for an unknown user: what a fold-in capped by UserReactions'
// limit must still exclude. Song ids only, from the primary key index.
func (db *DB) ReactedSongs(ctx context.Context, id setlist.UserID) ([]setlist.SongID, error) {
	rows, err := db.Pool.Query(ctx, `SELECT DISTINCT song_id FROM reactions
		WHERE user_id = (SELECT id FROM users WHERE external_id = $1)`, string(id))
	if err != nil {
		return nil, classify(fmt.Sprintf("reacted songs of %q", id), err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[setlist.SongID])
	if err != nil {
		return nil, classify(fmt.Sprintf("reacted songs of %q", id), err)
	}
	if len(out) == 0 {
		if _, err := userIDOf(ctx, db.Pool, id); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// reactionKind interns the three kinds so a history of hundreds of rows does
// not allocate a string per row.
func reactionKind(s string) setlist.ReactionKind {
	switch s {
	case "play":
		return setlist.Play
	case "like":
		return setlist.Like
	case "dislike":
		return setlist.Dislike
	}
	return setlist.ReactionKind(s)
}

// ReactionList returns the user's latest reactions with their songs, newest
// first, or ErrNotFound for an unknown user.
func (db *DB) ReactionList(ctx context.Context, id setlist.UserID, limit int) ([]store.ReactedSong, error) {
	if limit < 1 {
		return nil, fmt.Errorf("limit must be ≥ 1, got %d: %w", limit, setlist.ErrInvalid)
	}
	var out []store.ReactedSong
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		key, err := userIDOf(ctx, tx, id)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT s.id, s.artist, s.track, r.kind, r.weight, r.updated_at
			FROM reactions r JOIN songs s ON s.id = r.song_id
			WHERE r.user_id = $1 ORDER BY r.updated_at DESC, s.id LIMIT $2`, key, limit)
		if err != nil {
			return classify("list reactions", err)
		}
		var r store.ReactedSong
		var kind string
		var w float32
		_, err = pgx.ForEachRow(rows, []any{&r.Song.ID, &r.Song.Artist, &r.Song.Track, &kind, &w, &r.UpdatedAt}, func() error {
			r.Kind, r.Weight = setlist.ReactionKind(kind), float64(w)
			out = append(out, r)
			return nil
		})
		if err != nil {
			return classify("list reactions", err)
		}
		return nil
	})
	if err != nil {
		return nil, wrapTx(fmt.Sprintf("reactions of %q", id), err)
	}
	return out, nil
}

// React records a reaction in one transaction and returns it as stored.
//
//   - like and dislike are exclusive: recording one deletes the other on the
//     same song, so the latest opinion wins. Plays are kept either way.
//   - a play adds 1 to the user's play count of the song (weight).
//   - a repeated like or dislike only refreshes updated_at.
//
// It returns ErrNotFound for an unknown user and ErrInvalid naming the song
// for an unknown song (the song comes from the request body).
func (db *DB) React(ctx context.Context, id setlist.UserID, ref store.SongRef, kind setlist.ReactionKind) (setlist.Reaction, error) {
	if !kind.Valid() {
		return setlist.Reaction{}, fmt.Errorf("kind must be like, dislike or play, got %q: %w", kind, setlist.ErrInvalid)
	}
	if err := ref.Validate(); err != nil {
		return setlist.Reaction{}, err
	}
	out := setlist.Reaction{User: id, Kind: kind}
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		key, err := userIDOf(ctx, tx, id)
		if err != nil {
			return err
		}
		song, err := resolveSong(ctx, tx, ref)
		if err != nil {
			if errors.Is(err, setlist.ErrNotFound) {
				return fmt.Errorf("unknown song %s: %w", ref, setlist.ErrInvalid)
			}
			return err
		}
		out.Song = song
		switch kind {
		case setlist.Like, setlist.Dislike:
			other := setlist.Dislike
			if kind == setlist.Dislike {
				other = setlist.Like
			}
			if _, err := tx.Exec(ctx, `DELETE FROM reactions WHERE user_id = $1 AND song_id = $2 AND kind = $3`, key, song, string(other)); err != nil {
				return classify("remove opposite reaction", err)
			}
		}
		var w float32
		err = tx.QueryRow(ctx, `INSERT INTO reactions (user_id, song_id, kind, weight) VALUES ($1, $2, $3, 1)
			ON CONFLICT (user_id, song_id, kind) DO UPDATE SET
				weight = CASE WHEN EXCLUDED.kind = 'play' THEN reactions.weight + 1 ELSE 1 END,
				updated_at = now()
			RETURNING weight, updated_at`, key, song, string(kind)).Scan(&w, &out.UpdatedAt)
		if err != nil {
			return classify("record reaction", err)
		}
		out.Weight = float64(w)
		return nil
	})
	if err != nil {
		return setlist.Reaction{}, wrapTx(fmt.Sprintf("react %s to %s for %q", kind, ref, id), err)
	}
	return out, nil
}

// Unreact deletes one reaction and returns the database time of the delete
// (the user's history changed then). It returns ErrNotFound if the user, or
// that reaction, does not exist.
func (db *DB) Unreact(ctx context.Context, id setlist.UserID, song setlist.SongID, kind setlist.ReactionKind) (time.Time, error) {
	if !kind.Valid() {
		return time.Time{}, fmt.Errorf("kind must be like, dislike or play, got %q: %w", kind, setlist.ErrInvalid)
	}
	var at time.Time
	err := db.Pool.QueryRow(ctx, `DELETE FROM reactions r USING users u
		WHERE u.external_id = $1 AND r.user_id = u.id AND r.song_id = $2 AND r.kind = $3
		RETURNING now()`, string(id), song, string(kind)).Scan(&at)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, fmt.Errorf("%s of song %d by %q: %w", kind, song, id, setlist.ErrNotFound)
	}
	if err != nil {
		return time.Time{}, classify("delete reaction", err)
	}
	return at, nil
}
