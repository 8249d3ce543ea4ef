package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/store"
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
//   - like and dislike are exclusive (the partial unique index
//     reactions_one_opinion enforces it): recording one replaces the other
//     on the same song in one upsert, so the latest opinion wins. Plays are
//     kept either way.
//   - a play adds 1 to the user's play count of the song (weight).
//   - a repeated like or dislike only refreshes updated_at.
//
// The user's row is locked first (FOR NO KEY UPDATE: it does not block the
// foreign-key checks of other writers), so one user's writes run one after
// the other and take their locks in the same order; the reaction gets its
// sequence number last (see store.SeqBase). A serialization failure or
// deadlock is retried a few times, then answered ErrUnavailable.
//
// It returns ErrNotFound for an unknown user and ErrInvalid naming the song
// for an unknown song (the song comes from the request body).
func (db *DB) React(ctx context.Context, id setlist.UserID, ref setlist.SongRef, kind setlist.ReactionKind) (setlist.Reaction, error) {
	r, _, err := db.ReactAttributed(ctx, id, ref, kind, nil)
	return r, err
}

// ReactAttributed is React storing a like's or dislike's attribution against
// shown (what serve would show the user now; nil: not attributed) in the
// same statement, and returning the outcome stored (nil for a play or an
// unattributed row). A repeated like or dislike keeps the outcome of the
// first: the opinion was formed then; a like replacing a dislike (or the
// reverse) is a new opinion and takes the new outcome.
func (db *DB) ReactAttributed(ctx context.Context, id setlist.UserID, ref setlist.SongRef, kind setlist.ReactionKind, shown *store.Shown) (setlist.Reaction, *store.Outcome, error) {
	if !kind.Valid() {
		return setlist.Reaction{}, nil, fmt.Errorf("kind must be like, dislike or play, got %q: %w", kind, setlist.ErrInvalid)
	}
	if err := ref.Validate(); err != nil {
		return setlist.Reaction{}, nil, err
	}
	out := setlist.Reaction{User: id, Kind: kind}
	var outcome *store.Outcome
	err := db.reactionTx(ctx, func(tx pgx.Tx) error {
		key, err := lockUser(ctx, tx, id)
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
		var w float32
		if kind == setlist.Play {
			err = tx.QueryRow(ctx, `INSERT INTO reactions (user_id, song_id, kind, weight) VALUES ($1, $2, 'play', 1)
				ON CONFLICT (user_id, song_id, kind) DO UPDATE SET weight = reactions.weight + 1, updated_at = now()
				RETURNING weight, updated_at`, key, song).Scan(&w, &out.UpdatedAt)
		} else {
			a := store.OutcomeColumnsOf(shown, song)
			var stored store.OutcomeColumns
			err = tx.QueryRow(ctx, `INSERT INTO reactions (user_id, song_id, kind, weight, shown_version, shown_arm, shown_source, shown_position)
				VALUES ($1, $2, $3, 1, $4, $5, $6, $7)
				ON CONFLICT (user_id, song_id) WHERE kind IN ('like', 'dislike') DO UPDATE SET
					kind = EXCLUDED.kind, weight = 1, updated_at = now(),
					created_at = CASE WHEN reactions.kind = EXCLUDED.kind THEN reactions.created_at ELSE now() END,
					shown_version = CASE WHEN reactions.kind = EXCLUDED.kind THEN reactions.shown_version ELSE EXCLUDED.shown_version END,
					shown_arm = CASE WHEN reactions.kind = EXCLUDED.kind THEN reactions.shown_arm ELSE EXCLUDED.shown_arm END,
					shown_source = CASE WHEN reactions.kind = EXCLUDED.kind THEN reactions.shown_source ELSE EXCLUDED.shown_source END,
					shown_position = CASE WHEN reactions.kind = EXCLUDED.kind THEN reactions.shown_position ELSE EXCLUDED.shown_position END
				RETURNING weight, updated_at, shown_version, shown_arm, shown_source, shown_position`,
				key, song, string(kind), a.Version, a.Arm, a.Source, a.Position).
				Scan(&w, &out.UpdatedAt, &stored.Version, &stored.Arm, &stored.Source, &stored.Position)
			outcome = stored.Outcome()
		}
		if err != nil {
			return classify("record reaction", err)
		}
		out.Weight = float64(w)
		out.Seq, err = nextSeq(ctx, tx, id)
		return err
	})
	if err != nil {
		return setlist.Reaction{}, nil, wrapTx(fmt.Sprintf("react %s to %s for %q", kind, ref, id), err)
	}
	return out, outcome, nil
}

// lockUser resolves the user's internal id and locks the row against the
// user's other reaction writes until commit; ErrNotFound for an unknown user.
func lockUser(ctx context.Context, tx pgx.Tx, id setlist.UserID) (int64, error) {
	var key int64
	err := tx.QueryRow(ctx, `SELECT id FROM users WHERE external_id = $1 FOR NO KEY UPDATE`, string(id)).Scan(&key)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("user %q: %w", id, setlist.ErrNotFound)
	}
	if err != nil {
		return 0, classify(fmt.Sprintf("user %q", id), err)
	}
	return key, nil
}

// nextSeq takes the write's reaction sequence number under the shared side
// of store.SeqLock, then marks it (store.MarkWrite: serve's freshness mark
// in Redis, bounded by --redis-timeout) before the commit. It must be the
// transaction's last statement: the lock is held until commit, and a
// training snapshot waits for it, so the shorter the better, and a writer
// holding it never waits for anything else in PostgreSQL.
func nextSeq(ctx context.Context, tx pgx.Tx, u setlist.UserID) (int64, error) {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock_shared($1)`, store.SeqLock); err != nil {
		return 0, classify("fence the reaction", err)
	}
	var seq int64
	if err := tx.QueryRow(ctx, `SELECT nextval('reaction_seq')`).Scan(&seq); err != nil {
		return 0, classify("number the reaction", err)
	}
	return seq, store.MarkWrite(ctx, u, seq)
}

// ReactionSeq returns the last reaction sequence number taken (SeqBase when
// none was): a write numbered above it is newer than anything read now.
func (db *DB) ReactionSeq(ctx context.Context) (int64, error) {
	var seq int64
	err := db.Pool.QueryRow(ctx, `SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM reaction_seq`).Scan(&seq)
	if err != nil {
		return 0, classify("read the reaction sequence", err)
	}
	return seq, nil
}

// txRetries is how many times a reaction write is tried when PostgreSQL
// aborts it for a serialization failure or a deadlock.
const txRetries = 4

// reactionTx runs fn in a transaction, retrying it (with a short, growing,
// jittered pause) when PostgreSQL aborts it as a serialization failure
// (40001) or deadlock victim (40P01); when the tries run out the error is
// ErrUnavailable, which the API answers 503 with Retry-After.
func (db *DB) reactionTx(ctx context.Context, fn func(pgx.Tx) error) error {
	var err error
	for try := range txRetries {
		if try > 0 {
			pause := time.Duration(try*try)*5*time.Millisecond + time.Duration(rand.Int64N(int64(5*time.Millisecond)))
			select {
			case <-ctx.Done():
				return fmt.Errorf("retry after %w: %w: %w", err, setlist.ErrUnavailable, ctx.Err())
			case <-time.After(pause):
			}
		}
		err = pgx.BeginFunc(ctx, db.Pool, fn)
		if !retryable(err) {
			return err
		}
	}
	return fmt.Errorf("gave up after %d tries: %w: %w", txRetries, store.ErrContention, err)
}

// retryable tells a transaction PostgreSQL aborted only because of what ran
// beside it: running it again may succeed.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}

// Unreact deletes one reaction and returns the write's reaction sequence
// number (see store.SeqBase). It returns ErrNotFound if the user, or that
// reaction, does not exist.
func (db *DB) Unreact(ctx context.Context, id setlist.UserID, song setlist.SongID, kind setlist.ReactionKind) (int64, error) {
	if !kind.Valid() {
		return 0, fmt.Errorf("kind must be like, dislike or play, got %q: %w", kind, setlist.ErrInvalid)
	}
	var seq int64
	err := db.reactionTx(ctx, func(tx pgx.Tx) error {
		key, err := lockUser(ctx, tx, id)
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM reactions WHERE user_id = $1 AND song_id = $2 AND kind = $3`, key, song, string(kind))
		if err != nil {
			return classify("delete reaction", err)
		}
		if tag.RowsAffected() == 0 {
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
