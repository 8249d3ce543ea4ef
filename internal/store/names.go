package store

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/setlist/setlist"
)

// ValidDisplayName checks a generated display name (NameUsers) against what
// both backends store: valid UTF-8 without NUL, at most setlist.MaxDisplayNameLen
// bytes.
func ValidDisplayName(s string) error {
	if !utf8.ValidString(s) || len(s) > setlist.MaxDisplayNameLen || strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("display_name must be valid UTF-8 without NUL of at most %d bytes: %w", setlist.MaxDisplayNameLen, setlist.ErrInvalid)
	}
	return nil
}

// NamesFor asks name for the display name of each id, in order, and returns
// the ids to name with their checked names ("" skips an id): the part of
// NameUsers both backends share.
func NamesFor(ids []string, name func(setlist.UserID) string) (named, names []string, err error) {
	for _, id := range ids {
		n := name(setlist.UserID(id))
		if n == "" {
			continue
		}
		if err := ValidDisplayName(n); err != nil {
			return nil, nil, fmt.Errorf("name for %q: %w", id, err)
		}
		named, names = append(named, id), append(names, n)
	}
	return named, names, nil
}
