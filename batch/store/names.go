package store

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/setlist/setlist"
)

// ValidDisplayName checks a generated display name (NameUsers) against what
// both backends store: valid UTF-8 without NUL, at most MaxDisplayNameLen
// bytes.
func ValidDisplayName(s string) error {
	if !utf8.ValidString(s) || len(s) > MaxDisplayNameLen || strings.IndexByte(s, 0) >= 0 {
		return fmt.Errorf("display_name must be valid UTF-8 without NUL of at most %d bytes: %w", MaxDisplayNameLen, setlist.ErrInvalid)
	}
	return nil
}
