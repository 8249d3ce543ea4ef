package store

import (
	"fmt"

	"github.com/setlist/setlist"
)

// ValidDisplayName checks a generated display name (NameUsers) by the API's
// rule (setlist.ValidateDisplayName).
func ValidDisplayName(s string) error { return setlist.ValidateDisplayName(s) }

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
