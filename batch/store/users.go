// Package store holds the types every storage backend shares (PostgreSQL
// and the embedded SQLite one): what callers pass in and get back, their
// validation, and the CSV import's parser. Keeping them here lets the
// consumers' interfaces (api.DB, pipeline.Registry, ...) name one type
// whichever backend the wiring picks.
package store

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

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
	// PostgreSQL text cannot hold NUL: reject it here as bad input rather
	// than fail the INSERT with a 500.
	if !utf8.ValidString(u.DisplayName) || len(u.DisplayName) > MaxDisplayNameLen || strings.IndexByte(u.DisplayName, 0) >= 0 {
		return fmt.Errorf("display_name must be valid UTF-8 without NUL of at most %d bytes: %w", MaxDisplayNameLen, setlist.ErrInvalid)
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

// PrefixEnd is the smallest string greater than every string starting with
// p in byte order, or "" when there is none (empty p, or all 0xff bytes).
func PrefixEnd(p string) string {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1])
		}
	}
	return ""
}

// EncodeCursor and DecodeCursor read and write a user search cursor, the
// same for every backend. The cursor is "rank:id", base64url-encoded so callers treat it as opaque
// and ids with any characters survive a query string.
func EncodeCursor(rank int, after setlist.UserID) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(rank) + ":" + string(after)))
}

func DecodeCursor(c string) (int, string, error) {
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
