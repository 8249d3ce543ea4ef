package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/store"
)

// querier is what both a pool and a transaction offer.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// CreateUser inserts the user and a like for each song in u.Likes in one
// transaction. It returns ErrConflict if the id is taken and ErrInvalid naming
// the first like whose song does not exist; nothing is written then.
func (db *DB) CreateUser(ctx context.Context, u setlist.NewUser) (setlist.User, error) {
	if err := u.Validate(); err != nil {
		return setlist.User{}, err
	}
	now := time.Now()
	out := setlist.User{ID: u.ID, DisplayName: u.DisplayName, CreatedAt: fromMicros(micros(now))}
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO users (external_id, display_name, created_at) VALUES (?, ?, ?)
			ON CONFLICT (external_id) DO NOTHING`, string(u.ID), u.DisplayName, micros(now))
		if err != nil {
			return classify("insert user", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("user %q: %w", u.ID, setlist.ErrConflict)
		}
		id, err := res.LastInsertId()
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
			if _, err := tx.ExecContext(ctx, `INSERT INTO reactions (user_id, song_id, kind, weight, created_at, updated_at)
				VALUES (?, ?, 'like', 1, ?, ?) ON CONFLICT DO NOTHING`, id, song, micros(now), micros(now)); err != nil {
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

// User returns one user, or ErrNotFound.
func (db *DB) User(ctx context.Context, id setlist.UserID) (setlist.User, error) {
	u := setlist.User{ID: id}
	var created int64
	err := db.r.QueryRowContext(ctx, `SELECT display_name, created_at FROM users WHERE external_id = ?`, string(id)).
		Scan(&u.DisplayName, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return setlist.User{}, fmt.Errorf("user %q: %w", id, setlist.ErrNotFound)
	}
	if err != nil {
		return setlist.User{}, classify(fmt.Sprintf("user %q", id), err)
	}
	u.CreatedAt = fromMicros(created)
	return u, nil
}

// SearchUsers returns users matching q in the order and with the cursors of
// the postgres backend: an id prefix (byte order) for queries under three
// characters, else a substring of "id display name", prefix matches first.
// SQLite's LIKE folds ASCII case only, where PostgreSQL's ILIKE folds every
// letter; the playground's data is what it is, so that difference is
// accepted.
func (db *DB) SearchUsers(ctx context.Context, q store.UserQuery) (store.UserPage, error) {
	if q.Limit < 1 {
		return store.UserPage{}, fmt.Errorf("limit must be ≥ 1, got %d: %w", q.Limit, setlist.ErrInvalid)
	}
	rank, after, err := store.DecodeCursor(q.Cursor)
	if err != nil {
		return store.UserPage{}, err
	}
	var rows *sql.Rows
	switch {
	case utf8.RuneCountInString(q.Query) < 3:
		if rank > 0 {
			return store.UserPage{}, nil
		}
		lo, hi := q.Query, store.PrefixEnd(q.Query)
		rows, err = db.r.QueryContext(ctx, `SELECT 0, external_id, display_name, created_at FROM users
			WHERE external_id >= ?1 AND (?2 = '' OR external_id < ?2) AND (?3 = '' OR external_id > ?3)
			ORDER BY external_id LIMIT ?4`, lo, hi, after, q.Limit+1)
	default:
		lit := escapeLike(q.Query)
		rows, err = db.r.QueryContext(ctx, `SELECT * FROM (
				SELECT CASE WHEN external_id LIKE ?1 || '%' ESCAPE '\' OR display_name LIKE ?1 || '%' ESCAPE '\' THEN 0 ELSE 1 END AS rank,
				       external_id, display_name, created_at
				FROM users WHERE (external_id || ' ' || display_name) LIKE '%' || ?1 || '%' ESCAPE '\') m
			WHERE rank > ?2 OR (rank = ?2 AND (?3 = '' OR external_id > ?3))
			ORDER BY rank, external_id LIMIT ?4`, lit, rank, after, q.Limit+1)
	}
	if err != nil {
		return store.UserPage{}, classify("search users", err)
	}
	defer rows.Close()
	var page store.UserPage
	for rows.Next() {
		var r int
		var u setlist.User
		var created int64
		if err := rows.Scan(&r, &u.ID, &u.DisplayName, &created); err != nil {
			return store.UserPage{}, classify("search users", err)
		}
		if len(page.Users) == q.Limit {
			page.Next = store.EncodeCursor(rank, page.Users[len(page.Users)-1].ID)
			break
		}
		u.CreatedAt = fromMicros(created)
		rank = r
		page.Users = append(page.Users, u)
	}
	if err := rows.Err(); err != nil {
		return store.UserPage{}, classify("search users", err)
	}
	return page, nil
}

// escapeLike makes s match literally inside a LIKE pattern with ESCAPE '\'.
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// userIDOf resolves an external id to the internal key.
func userIDOf(ctx context.Context, q querier, id setlist.UserID) (int64, error) {
	var key int64
	err := q.QueryRowContext(ctx, `SELECT id FROM users WHERE external_id = ?`, string(id)).Scan(&key)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("user %q: %w", id, setlist.ErrNotFound)
	}
	if err != nil {
		return 0, classify(fmt.Sprintf("user %q", id), err)
	}
	return key, nil
}

// NameUsers gives every user without a display name the one name returns
// for their id (called in id order; "" leaves a user unnamed), in one
// transaction, and returns how many it named (see the postgres backend).
func (db *DB) NameUsers(ctx context.Context, name func(setlist.UserID) string) (int64, error) {
	var named int64
	err := db.writeTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT external_id FROM users WHERE display_name = '' ORDER BY external_id`)
		if err != nil {
			return classify("list unnamed users", err)
		}
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return classify("list unnamed users", err)
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return classify("list unnamed users", err)
		}
		keep, names, err := store.NamesFor(ids, name)
		if err != nil {
			return err
		}
		for i, id := range keep {
			res, err := tx.ExecContext(ctx, `UPDATE users SET display_name = ? WHERE external_id = ?`, names[i], id)
			if err != nil {
				return classify("name users", err)
			}
			k, _ := res.RowsAffected()
			named += k
		}
		return nil
	})
	if err != nil {
		return 0, wrapTx("name users", err)
	}
	return named, nil
}
