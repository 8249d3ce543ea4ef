package postgres

import (
	"context"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/store"
)

// CreateUser inserts the user and a like for each song in u.Likes in one
// transaction. It returns ErrConflict if the id is taken and ErrInvalid naming
// the first like whose song does not exist; nothing is written then.
func (db *DB) CreateUser(ctx context.Context, u setlist.NewUser) (setlist.User, error) {
	if err := u.Validate(); err != nil {
		return setlist.User{}, err
	}
	out := setlist.User{ID: u.ID, DisplayName: u.DisplayName}
	err := db.reactionTx(ctx, func(tx pgx.Tx) error {
		var id int64
		err := tx.QueryRow(ctx, `INSERT INTO users (external_id, display_name) VALUES ($1, $2)
			ON CONFLICT (external_id) DO NOTHING RETURNING id, created_at`, string(u.ID), u.DisplayName).Scan(&id, &out.CreatedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("user %q: %w", u.ID, setlist.ErrConflict)
		}
		if err != nil {
			return classify("insert user", err)
		}
		for i, l := range u.Likes {
			song, err := resolveSong(ctx, tx, l)
			if errors.Is(err, setlist.ErrNotFound) {
				return fmt.Errorf("likes[%d]: unknown song %s: %w", i, l, setlist.ErrInvalid)
			}
			if err != nil {
				return fmt.Errorf("likes[%d]: %w", i, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO reactions (user_id, song_id, kind, weight) VALUES ($1, $2, 'like', 1)
				ON CONFLICT DO NOTHING`, id, song); err != nil {
				return classify(fmt.Sprintf("likes[%d]: insert", i), err)
			}
		}
		// A recreated id may have lists and fold-ins from its previous
		// life: the creation is numbered like a reaction so none is served.
		out.Seq, err = nextSeq(ctx, tx, u.ID)
		return err
	})
	if err != nil {
		return setlist.User{}, wrapTx("create user", err)
	}
	return out, nil
}

// wrapTx adds op to an error from a transaction, classifying errors that
// BeginFunc itself returns (begin or commit failing).
func wrapTx(op string, err error) error {
	if errors.Is(err, setlist.ErrInvalid) || errors.Is(err, setlist.ErrNotFound) ||
		errors.Is(err, setlist.ErrConflict) || errors.Is(err, setlist.ErrUnavailable) {
		return fmt.Errorf("%s: %w", op, err)
	}
	return classify(op, err)
}

// User returns one user, or ErrNotFound.
func (db *DB) User(ctx context.Context, id setlist.UserID) (setlist.User, error) {
	u := setlist.User{ID: id}
	err := db.Pool.QueryRow(ctx, `SELECT display_name, created_at FROM users WHERE external_id = $1`, string(id)).
		Scan(&u.DisplayName, &u.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return setlist.User{}, fmt.Errorf("user %q: %w", id, setlist.ErrNotFound)
	}
	if err != nil {
		return setlist.User{}, classify(fmt.Sprintf("user %q", id), err)
	}
	return u, nil
}

// SearchUsers returns users matching q in a stable order: matches whose id
// or display name starts with the query first, then other substring matches,
// each by id in byte order. Pages are keyset-paginated by (rank, id), so a
// page costs the same however deep it is and inserts never shift it.
//
// Ordering and cursors use the text_pattern_ops operators (~<~, ~>~) so the
// users_external_id_prefix index serves both the prefix range and the order
// under any database collation.
func (db *DB) SearchUsers(ctx context.Context, q store.UserQuery) (store.UserPage, error) {
	if q.Limit < 1 {
		return store.UserPage{}, fmt.Errorf("limit must be ≥ 1, got %d: %w", q.Limit, setlist.ErrInvalid)
	}
	rank, after, err := store.DecodeCursor(q.Cursor)
	if err != nil {
		return store.UserPage{}, err
	}
	var rows pgx.Rows
	switch {
	case utf8.RuneCountInString(q.Query) < 3:
		// Everyone (empty query) or an id prefix: one index range scan.
		lo, hi := q.Query, store.PrefixEnd(q.Query)
		if rank > 0 {
			return store.UserPage{}, nil
		}
		rows, err = db.Pool.Query(ctx, `SELECT 0, external_id, display_name, created_at FROM users
			WHERE external_id ~>=~ $1 AND ($2 = '' OR external_id ~<~ $2) AND ($3 = '' OR external_id ~>~ $3)
			ORDER BY external_id USING ~<~ LIMIT $4`, lo, hi, after, q.Limit+1)
	default:
		lit := escapeLike(q.Query)
		rows, err = db.Pool.Query(ctx, `SELECT * FROM (
				SELECT CASE WHEN external_id ILIKE $1 || '%' OR display_name ILIKE $1 || '%' THEN 0 ELSE 1 END AS rank,
				       external_id, display_name, created_at
				FROM users WHERE (external_id || ' ' || display_name) ILIKE '%' || $1 || '%') m
			WHERE rank > $2 OR (rank = $2 AND ($3 = '' OR external_id ~>~ $3))
			ORDER BY rank, external_id USING ~<~ LIMIT $4`, lit, rank, after, q.Limit+1)
	}
	if err != nil {
		return store.UserPage{}, classify("search users", err)
	}
	var page store.UserPage
	var lastRank int
	var u setlist.User
	_, err = pgx.ForEachRow(rows, []any{&lastRank, &u.ID, &u.DisplayName, &u.CreatedAt}, func() error {
		if len(page.Users) == q.Limit {
			prev := page.Users[len(page.Users)-1]
			page.Next = store.EncodeCursor(rank, prev.ID)
			return nil
		}
		rank = lastRank
		page.Users = append(page.Users, u)
		return nil
	})
	if err != nil {
		return store.UserPage{}, classify("search users", err)
	}
	return page, nil
}

// userIDOf resolves an external id to the internal key inside tx.
func userIDOf(ctx context.Context, q querier, id setlist.UserID) (int64, error) {
	var key int64
	err := q.QueryRow(ctx, `SELECT id FROM users WHERE external_id = $1`, string(id)).Scan(&key)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("user %q: %w", id, setlist.ErrNotFound)
	}
	if err != nil {
		return 0, classify(fmt.Sprintf("user %q", id), err)
	}
	return key, nil
}

// NameUsers gives every user without a display name the one name returns
// for their id (called in id order; "" leaves a user unnamed), in one
// transaction, and returns how many it named. It is how demo data with
// opaque ids (the playground's sample) gets readable names; users who
// chose a name keep it.
func (db *DB) NameUsers(ctx context.Context, name func(setlist.UserID) string) (int64, error) {
	var named int64
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT external_id FROM users WHERE display_name = '' ORDER BY external_id FOR UPDATE`)
		if err != nil {
			return classify("list unnamed users", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return classify("list unnamed users", err)
		}
		keep, names, err := store.NamesFor(ids, name)
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE users u SET display_name = v.name
			FROM unnest($1::text[], $2::text[]) AS v(id, name) WHERE u.external_id = v.id`, keep, names)
		if err != nil {
			return classify("name users", err)
		}
		named = tag.RowsAffected()
		return nil
	})
	if err != nil {
		return 0, wrapTx("name users", err)
	}
	return named, nil
}
