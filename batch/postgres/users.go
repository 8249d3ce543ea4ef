package postgres

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/setlist/setlist"
)

// Limits on what a caller may store, so one request cannot bloat the tables.
const (
	MaxUserIDLen      = 128
	MaxDisplayNameLen = 200
	MaxLikes          = 500
)

// NewUser is a registration: the user and the songs they like to start with,
// so their first recommendations are already personal (fold-in).
type NewUser struct {
	ID          setlist.UserID
	DisplayName string
	Likes       []SongRef
}

// Validate reports the first invalid field by its API name.
func (u NewUser) Validate() error {
	if err := ValidateUserID(u.ID); err != nil {
		return err
	}
	if !utf8.ValidString(u.DisplayName) || len(u.DisplayName) > MaxDisplayNameLen {
		return fmt.Errorf("display_name must be valid UTF-8 of at most %d bytes: %w", MaxDisplayNameLen, setlist.ErrInvalid)
	}
	if len(u.Likes) > MaxLikes {
		return fmt.Errorf("likes: at most %d songs, got %d: %w", MaxLikes, len(u.Likes), setlist.ErrInvalid)
	}
	for i, l := range u.Likes {
		if err := l.Validate(); err != nil {
			return fmt.Errorf("likes[%d]: %w", i, err)
		}
	}
	return nil
}

// ValidateUserID checks an external id: non-empty, printable UTF-8, bounded.
func ValidateUserID(id setlist.UserID) error {
	s := string(id)
	if s == "" || len(s) > MaxUserIDLen || !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("user_id must be 1 to %d bytes of printable UTF-8: %w", MaxUserIDLen, setlist.ErrInvalid)
	}
	return nil
}

// CreateUser inserts the user and a like for each song in u.Likes in one
// transaction. It returns ErrConflict if the id is taken and ErrInvalid naming
// the first like whose song does not exist; nothing is written then.
func (db *DB) CreateUser(ctx context.Context, u NewUser) (setlist.User, error) {
	if err := u.Validate(); err != nil {
		return setlist.User{}, err
	}
	out := setlist.User{ID: u.ID, DisplayName: u.DisplayName}
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
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
		return nil
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

// UserQuery selects a page of users.
type UserQuery struct {
	// Query matches a prefix of the external id, or (from three characters
	// on, where the trigram index applies) a case-insensitive substring of
	// the id or the display name. Empty lists everyone.
	Query string
	Limit int
	// Cursor is the opaque Next of the previous page; empty starts over.
	Cursor string
}

// UserPage is one page of users and the cursor of the next ("" at the end).
type UserPage struct {
	Users []setlist.User
	Next  string
}

// SearchUsers returns users matching q in a stable order: matches whose id
// or display name starts with the query first, then other substring matches,
// each by id in byte order. Pages are keyset-paginated by (rank, id), so a
// page costs the same however deep it is and inserts never shift it.
//
// Ordering and cursors use the text_pattern_ops operators (~<~, ~>~) so the
// users_external_id_prefix index serves both the prefix range and the order
// under any database collation.
func (db *DB) SearchUsers(ctx context.Context, q UserQuery) (UserPage, error) {
	if q.Limit < 1 {
		return UserPage{}, fmt.Errorf("limit must be ≥ 1, got %d: %w", q.Limit, setlist.ErrInvalid)
	}
	rank, after, err := decodeCursor(q.Cursor)
	if err != nil {
		return UserPage{}, err
	}
	var rows pgx.Rows
	switch {
	case utf8.RuneCountInString(q.Query) < 3:
		// Everyone (empty query) or an id prefix: one index range scan.
		lo, hi := q.Query, prefixEnd(q.Query)
		if rank > 0 {
			return UserPage{}, nil
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
		return UserPage{}, classify("search users", err)
	}
	var page UserPage
	var lastRank int
	var u setlist.User
	_, err = pgx.ForEachRow(rows, []any{&lastRank, &u.ID, &u.DisplayName, &u.CreatedAt}, func() error {
		if len(page.Users) == q.Limit {
			prev := page.Users[len(page.Users)-1]
			page.Next = encodeCursor(rank, prev.ID)
			return nil
		}
		rank = lastRank
		page.Users = append(page.Users, u)
		return nil
	})
	if err != nil {
		return UserPage{}, classify("search users", err)
	}
	return page, nil
}

// prefixEnd is the smallest string greater than every string starting with
// p in byte order, or "" when there is none (empty p, or all 0xff bytes).
func prefixEnd(p string) string {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1])
		}
	}
	return ""
}

// The cursor is "rank:id", base64url-encoded so callers treat it as opaque
// and ids with any characters survive a query string.
func encodeCursor(rank int, after setlist.UserID) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(rank) + ":" + string(after)))
}

func decodeCursor(c string) (int, string, error) {
	if c == "" {
		return 0, "", nil
	}
	bad := fmt.Errorf("cursor %q is not one this server issued: %w", c, setlist.ErrInvalid)
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, "", bad
	}
	r, after, ok := strings.Cut(string(b), ":")
	rank, err := strconv.Atoi(r)
	if !ok || err != nil || rank < 0 || rank > 1 || after == "" {
		return 0, "", bad
	}
	return rank, after, nil
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
