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

	"github.com/setlist/setlist"
)

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
	// Only a valid id was ever issued: a NUL or invalid UTF-8 here would
	// reach the database and answer 500 (issue 24 item 10).
	if setlist.UserID(after).Validate() != nil {
		return 0, "", bad
	}
	return rank, after, nil
}
