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

// UserReactions returns the user's reactions for fold-in, at most limit of
// them (limit ≤ 0: all) in store.FoldInOrder, or ErrNotFound for an unknown
// user.
func (db *DB) UserReactions(ctx context.Context, id setlist.UserID, limit int) ([]setlist.Reaction, error) {
	var out []setlist.Reaction
	err := inTx(ctx, db.r, nil, func(tx *sql.Tx) error {
		key, err := userIDOf(ctx, tx, id)
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT song_id, kind, weight, updated_at FROM reactions WHERE user_id = ?
			ORDER BY `+store.FoldInOrder+` LIMIT ?`, key, sqlLimit(limit))
		if err != nil {
			return classify("list reactions", err)
		}
		defer rows.Close()
		for rows.Next() {
			var (
				song    int64
				kind    string
				weight  float64
				updated int64
			)
			if err := rows.Scan(&song, &kind, &weight, &updated); err != nil {
				return classify("list reactions", err)
			}
			out = append(out, setlist.Reaction{User: id, Song: setlist.SongID(song), Kind: reactionKind(kind),
				Weight: weight, UpdatedAt: fromMicros(updated)})
		}
		return rows.Err()
	})
	if err != nil {
		return nil, wrapTx(fmt.Sprintf("reactions of %q", id), err)
	}
	return out, nil
}

// ReactedSongs returns every song the user reacted to (any kind), or
// ErrNotFound for an unknown user.
func (db *DB) ReactedSongs(ctx context.Context, id setlist.UserID) ([]setlist.SongID, error) {
	var out []setlist.SongID
	err := inTx(ctx, db.r, nil, func(tx *sql.Tx) error {
		key, err := userIDOf(ctx, tx, id)
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT DISTINCT song_id FROM reactions WHERE user_id = ?`, key)
		if err != nil {
			return classify("list reacted songs", err)
		}
		defer rows.Close()
		for rows.Next() {
			var song int64
			if err := rows.Scan(&song); err != nil {
				return classify("list reacted songs", err)
			}
			out = append(out, setlist.SongID(song))
		}
		return rows.Err()
	})
	if err != nil {
		return nil, wrapTx(fmt.Sprintf("reacted songs of %q", id), err)
	}
	return out, nil
}

// reactionKind interns the three kinds.
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
	err := inTx(ctx, db.r, nil, func(tx *sql.Tx) error {
		key, err := userIDOf(ctx, tx, id)
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT s.id, s.artist, s.track, r.kind, r.weight, r.updated_at
			FROM reactions r JOIN songs s ON s.id = r.song_id
			WHERE r.user_id = ? ORDER BY r.updated_at DESC, s.id LIMIT ?`, key, limit)
		if err != nil {
			return classify("list reactions", err)
		}
		defer rows.Close()
		for rows.Next() {
			var r store.ReactedSong
			var kind string
			var updated int64
			if err := rows.Scan(&r.Song.ID, &r.Song.Artist, &r.Song.Track, &kind, &r.Weight, &updated); err != nil {
				return classify("list reactions", err)
			}
			r.Kind, r.UpdatedAt = reactionKind(kind), fromMicros(updated)
			out = append(out, r)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, wrapTx(fmt.Sprintf("reactions of %q", id), err)
	}
	return out, nil
}

// React records a reaction in one transaction and returns it as stored, with
// the postgres backend's rules: like and dislike exclude each other (the
// latest wins), a play adds 1 to the play count, a repeated like or dislike
// only refreshes updated_at. ErrNotFound for an unknown user, ErrInvalid for
// an unknown song.
func (db *DB) React(ctx context.Context, id setlist.UserID, ref setlist.SongRef, kind setlist.ReactionKind) (setlist.Reaction, error) {
	r, _, err := db.ReactAttributed(ctx, id, ref, kind, nil)
	return r, err
}

// ReactAttributed is React storing a like's or dislike's attribution against
// shown in the same statement, with the postgres backend's rules (see
// postgres.DB.ReactAttributed).
func (db *DB) ReactAttributed(ctx context.Context, id setlist.UserID, ref setlist.SongRef, kind setlist.ReactionKind, shown *store.Shown) (setlist.Reaction, *store.Outcome, error) {
	if !kind.Valid() {
		return setlist.Reaction{}, nil, fmt.Errorf("kind must be like, dislike or play, got %q: %w", kind, setlist.ErrInvalid)
	}
	if err := ref.Validate(); err != nil {
		return setlist.Reaction{}, nil, err
	}
	out := setlist.Reaction{User: id, Kind: kind}
	var outcome *store.Outcome
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
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
		now := micros(time.Now())
		var updated int64
		if kind == setlist.Play {
			err = tx.QueryRowContext(ctx, `INSERT INTO reactions (user_id, song_id, kind, weight, created_at, updated_at) VALUES (?1, ?2, 'play', 1, ?3, ?3)
				ON CONFLICT (user_id, song_id, kind) DO UPDATE SET weight = reactions.weight + 1, updated_at = ?3
				RETURNING weight, updated_at`, key, int64(song), now).Scan(&out.Weight, &updated)
		} else {
			a := store.OutcomeColumnsOf(shown, song)
			var stored store.OutcomeColumns
			err = tx.QueryRowContext(ctx, `INSERT INTO reactions (user_id, song_id, kind, weight, created_at, updated_at,
					shown_version, shown_arm, shown_source, shown_position)
				VALUES (?1, ?2, ?3, 1, ?4, ?4, ?5, ?6, ?7, ?8)
				ON CONFLICT (user_id, song_id) WHERE kind IN ('like', 'dislike') DO UPDATE SET
					kind = excluded.kind, weight = 1, updated_at = ?4,
					created_at = CASE WHEN reactions.kind = excluded.kind THEN reactions.created_at ELSE ?4 END,
					shown_version = CASE WHEN reactions.kind = excluded.kind THEN reactions.shown_version ELSE excluded.shown_version END,
					shown_arm = CASE WHEN reactions.kind = excluded.kind THEN reactions.shown_arm ELSE excluded.shown_arm END,
					shown_source = CASE WHEN reactions.kind = excluded.kind THEN reactions.shown_source ELSE excluded.shown_source END,
					shown_position = CASE WHEN reactions.kind = excluded.kind THEN reactions.shown_position ELSE excluded.shown_position END
				RETURNING weight, updated_at, shown_version, shown_arm, shown_source, shown_position`,
				key, int64(song), string(kind), now, a.Version, a.Arm, a.Source, a.Position).
				Scan(&out.Weight, &updated, &stored.Version, &stored.Arm, &stored.Source, &stored.Position)
			outcome = stored.Outcome()
		}
		if err != nil {
			return classify("record reaction", err)
		}
		if out.Seq, err = nextSeq(ctx, tx, id); err != nil {
			return err
		}
		out.UpdatedAt = fromMicros(updated)
		return nil
	})
	if err != nil {
		return setlist.Reaction{}, nil, wrapTx(fmt.Sprintf("react %s to %s for %q", kind, ref, id), err)
	}
	return out, outcome, nil
}

// Unreact deletes one reaction and returns the write's reaction sequence
// number (see store.SeqBase). It returns ErrNotFound if the user, or that
// reaction, does not exist.
func (db *DB) Unreact(ctx context.Context, id setlist.UserID, song setlist.SongID, kind setlist.ReactionKind) (int64, error) {
	if !kind.Valid() {
		return 0, fmt.Errorf("kind must be like, dislike or play, got %q: %w", kind, setlist.ErrInvalid)
	}
	var seq int64
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM reactions
			WHERE user_id = (SELECT id FROM users WHERE external_id = ?) AND song_id = ? AND kind = ?`, string(id), int64(song), string(kind))
		if err != nil {
			return classify("delete reaction", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%s of song %d by %q: %w", kind, song, id, setlist.ErrNotFound)
		}
		seq, err = nextSeq(ctx, tx, id)
		return err
	})
	if err != nil {
		return 0, wrapTx("delete reaction", err)
	}
	return seq, nil
}

// nextSeq takes the write's reaction sequence number (see store.SeqBase)
// in the write's transaction: SQLite's single writer orders them. The
// write is then marked (store.MarkWrite) before it commits.
func nextSeq(ctx context.Context, tx *sql.Tx, u setlist.UserID) (int64, error) {
	var seq int64
	if err := tx.QueryRowContext(ctx, `UPDATE reaction_seq SET n = n + 1 RETURNING n`).Scan(&seq); err != nil {
		return 0, classify("number the reaction", err)
	}
	return seq, store.MarkWrite(ctx, u, seq)
}

// ReactionSeq returns the last reaction sequence number taken (SeqBase when
// none was): a write numbered above it is newer than anything read now.
func (db *DB) ReactionSeq(ctx context.Context) (int64, error) {
	var seq int64
	if err := db.r.QueryRowContext(ctx, `SELECT n FROM reaction_seq`).Scan(&seq); err != nil {
		return 0, classify("read the reaction sequence", err)
	}
	return seq, nil
}

// sqlLimit is LIMIT's argument for limit ≤ 0 meaning "all" (SQLite reads a
// negative LIMIT as none).
func sqlLimit(limit int) int {
	if limit <= 0 {
		return -1
	}
	return limit
}
