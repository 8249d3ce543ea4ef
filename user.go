package setlist

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
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
	ID          UserID
	DisplayName string
	Likes       []SongRef
}

// Validate reports the first invalid field by its API name.
func (u NewUser) Validate() error {
	if err := u.ID.Validate(); err != nil {
		return err
	}
	if err := ValidateDisplayName(u.DisplayName); err != nil {
		return err
	}
	if len(u.Likes) > MaxLikes {
		return fmt.Errorf("likes: at most %d songs, got %d: %w", MaxLikes, len(u.Likes), ErrInvalid)
	}
	for i, l := range u.Likes {
		if err := l.Validate(); err != nil {
			return fmt.Errorf("likes[%d]: %w", i, err)
		}
	}
	return nil
}

// Validate checks that id already obeys the user id rule (see
// ParseUserID): for ids that come from storage or were normalised before.
func (id UserID) Validate() error {
	n, err := ParseUserID(string(id))
	if err != nil {
		return err
	}
	if n != id {
		return fmt.Errorf("user_id %q is not in Unicode normal form C (NFC): %w", string(id), ErrInvalid)
	}
	return nil
}

// UserIDRule states the user id rule in words, for errors and the sign-up
// form (the page shows it; a test checks the page's pattern against
// ParseUserID).
const UserIDRule = "Letters, digits, punctuation, symbols and inner spaces, up to 128 bytes; no invisible characters, no mixing of scripts (Latin may go with Chinese, Japanese or Korean), no id made only of look-alikes of ASCII (Cyrillic “Сара” for “Capa”)."

// UserIDPattern is UserIDRule as an HTML pattern attribute (JavaScript's
// "v" flag, whole value): what the sign-up form checks before the server
// does. Normalisation, the mixed-script and the look-alike rules need code, so the server's
// check (ParseUserID) is the authority; TestUserIDPatternMatchesRule checks the
// two agree on every case of the rule's table.
const UserIDPattern = `[\p{L}\p{M}\p{N}\p{P}\p{S}](?:[\p{L}\p{M}\p{N}\p{P}\p{S} ]{0,126}[\p{L}\p{M}\p{N}\p{P}\p{S}])?`

// ParseUserID applies the user id rule to s and returns the id to store and look
// up: the one rule of the API (bodies and paths) and the CSV import.
//
//   - s must be valid UTF-8 (a body's "a\xff" is refused, not stored as
//     "a\uFFFD"), and U+FFFD itself is refused: it only comes from damage.
//   - It is normalised to NFC, so "café" typed as e + combining acute is the
//     same id as with é. Compatibility forms (fullwidth "Ａ", ligatures,
//     superscripts) are refused with the form to use, rather than silently
//     folded: NFKC would change ids people already have.
//   - Letters, marks, digits, punctuation, symbols and U+0020 are allowed;
//     control and format characters (zero-width space and joiners, bidi
//     controls, soft hyphen, BOM), other spaces (NBSP, ideographic space),
//     line separators, private-use and unassigned code points are refused:
//     each makes an id that looks like another. So are the other
//     default-ignorable code points (variation selectors, U+034F, the
//     Hangul fillers, U+17B4), letters and marks by category that render
//     as nothing, and the Braille script, whose U+2800 shows as a space
//     (ident.go: Unicode's own properties, not a list of code points).
//   - No space first or last (" ana" would look like "ana").
//   - Scripts are mixed only as UTS #39's "highly restrictive" level
//     allows (Latin with Han, Hiragana, Katakana, Bopomofo or Hangul), so a
//     Cyrillic "а", a Greek "ο" or an Armenian "օ" cannot pass for a Latin
//     letter inside a Latin name.
//   - An id outside printable ASCII that looks wholly like an ASCII one by
//     UTS #39's confusables (Cyrillic "Сара" as "Capa", "ɑdmin" with a
//     Latin alpha) is refused, naming each look-alike; one character that
//     looks like no ASCII one, an accent included, lets it pass (ident.go
//     says why this line).
//   - At most MaxUserIDLen bytes after normalisation.
func ParseUserID(s string) (UserID, error) {
	bad := userIDError
	if s == "" {
		return bad("must not be empty")
	}
	if printableASCII(s) {
		// The common case, and the import's hot path (a per-rune NFKC check
		// costs microseconds a row): printable ASCII is its own NFC and
		// NFKC, every such character is a letter, digit, punctuation, symbol
		// or the space, and its only letters are Latin. So only the length
		// and the outer spaces can be wrong; TestParseUserIDASCII checks this
		// against the full path below.
		if len(s) > MaxUserIDLen {
			return bad("must be at most %d bytes, got %d", MaxUserIDLen, len(s))
		}
		if s[0] == ' ' || s[len(s)-1] == ' ' {
			return bad("must not start or end with a space")
		}
		return UserID(s), nil
	}
	return parseUserIDFull(s)
}

// userIDError is ParseUserID's refusal of an id, matching ErrInvalid.
func userIDError(format string, args ...any) (UserID, error) {
	return "", fmt.Errorf("user_id "+format+": %w", append(args, ErrInvalid)...)
}

// printableASCII reports whether s holds only U+0020 to U+007E.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// parseUserIDFull is ParseUserID for any non-empty s.
func parseUserIDFull(s string) (UserID, error) {
	bad := userIDError
	if !utf8.ValidString(s) {
		return bad("must be valid UTF-8")
	}
	n := norm.NFC.String(s)
	if len(n) > MaxUserIDLen {
		return bad("must be at most %d bytes, got %d", MaxUserIDLen, len(n))
	}
	if n[0] == ' ' || n[len(n)-1] == ' ' {
		return bad("must not start or end with a space")
	}
	for _, r := range n {
		if !allowedIDRune(r) || invisible(r) {
			return bad("must not contain %U (%s)", r, runeKind(r))
		}
		if k := norm.NFKC.String(string(r)); k != string(r) {
			return bad("must not contain the compatibility character %q (%U); write %q", string(r), r, k)
		}
		if sc := scriptOf(r); slices.Contains(excludedScripts, sc) {
			return bad("must not contain %U (the %s script, which identifiers leave out: UAX #31)", r, sc)
		}
	}
	if mixed := mixedScripts(n); mixed != nil {
		return bad("must not mix the %s scripts (look-alikes such as Cyrillic \"а\" or Armenian \"օ\" for Latin \"a\" and \"o\"); Latin may go only with Han, Hiragana, Katakana, Bopomofo or Hangul",
			strings.Join(mixed, " and "))
	}
	if ascii, imitations, ok := asciiLookalike(n); ok {
		parts := make([]string, len(imitations))
		for i, im := range imitations {
			sc := scriptOf(im.r)
			if sc == "" {
				sc = "no script"
			}
			parts[i] = fmt.Sprintf("%q (%U, %s) imitates %q", string(im.r), im.r, sc, im.ascii)
		}
		return bad("looks like the ASCII id %q, so could pass for another user (UTS #39 confusables): %s; use at least one character that looks like no ASCII one",
			ascii, strings.Join(parts, ", "))
	}
	return UserID(n), nil
}

// allowedIDRune: the visible categories and the plain space.
func allowedIDRune(r rune) bool {
	if r == ' ' {
		return true
	}
	if r == utf8.RuneError {
		return false
	}
	return unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S)
}

// runeKind names why a refused rune is refused, for the error.
func runeKind(r rune) string {
	switch {
	case r == utf8.RuneError:
		return "the replacement character, a sign of damaged text"
	case unicode.Is(unicode.Cc, r):
		return "a control character"
	case unicode.Is(unicode.Cf, r):
		return "an invisible format character"
	case invisible(r):
		return "a default-ignorable character, which renders as nothing"
	case unicode.Is(unicode.Zs, r), unicode.Is(unicode.Zl, r), unicode.Is(unicode.Zp, r):
		return "a space other than U+0020"
	case unicode.Is(unicode.Co, r):
		return "a private-use character"
	}
	return "an unassigned code point"
}
