package setlist

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Look-alike identifiers and display names (issue 24 item 9), from
// Unicode's own data rather than a hand list of code points: the character
// properties of UAX #44 (PropList) and the scripts of UAX #24, as Go's
// unicode package carries them, applied the way UTS #39 (Unicode Security
// Mechanisms) and UAX #31 (identifiers) say.

// invisible reports whether r is a default-ignorable code point (UAX #44
// Default_Ignorable_Code_Point: format characters, variation selectors and
// the other ignorables such as U+034F COMBINING GRAPHEME JOINER, the Hangul
// fillers U+115F and U+3164 and the Khmer inherent vowels U+17B4/5): a
// renderer shows nothing for it, so an id holding one looks like the id
// without it. These are letters and marks by category (U+115F is Lo,
// U+FE0F Mn), which the category rule alone let through.
func invisible(r rune) bool {
	return unicode.In(r, unicode.Cf, unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector)
}

// excludedScripts are scripts UAX #31 (Table 4, Excluded Scripts) keeps out
// of identifiers that hold a character drawn blank: U+2800 BRAILLE PATTERN
// BLANK is a symbol by category and no default-ignorable, yet shows as a
// space.
var excludedScripts = []string{"Braille"}

// scriptTables is every script of UAX #24 but Common and Inherited (shared
// by all scripts, so they mix with any), the usual ones first.
var scriptTables = func() []scriptTable {
	first := []string{"Latin", "Greek", "Cyrillic", "Armenian", "Han", "Hiragana", "Katakana", "Hangul", "Arabic", "Hebrew"}
	var out []scriptTable
	for _, n := range first {
		out = append(out, scriptTable{n, unicode.Scripts[n]})
	}
	var rest []string
	for n := range unicode.Scripts {
		if !slices.Contains(first, n) && n != "Common" && n != "Inherited" {
			rest = append(rest, n)
		}
	}
	slices.Sort(rest)
	for _, n := range rest {
		out = append(out, scriptTable{n, unicode.Scripts[n]})
	}
	return out
}()

type scriptTable struct {
	name  string
	table *unicode.RangeTable
}

// scriptOf is r's script, "" for Common and Inherited (digits, most
// punctuation and symbols, combining marks).
func scriptOf(r rune) string {
	if r < utf8.RuneSelf {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' {
			return "Latin"
		}
		return ""
	}
	for _, s := range scriptTables {
		if unicode.Is(s.table, r) {
			return s.name
		}
	}
	return ""
}

// highlyRestrictive are the sets of scripts UTS #39 (section 5.2, Highly
// Restrictive) lets one identifier mix: Latin with the scripts written
// beside it in Chinese, Japanese and Korean. Any other mix is refused,
// which catches the look-alikes of Latin in Cyrillic, Greek, Armenian,
// Cherokee, Lisu and the rest without listing them.
var highlyRestrictive = [][]string{
	{"Latin", "Han", "Hiragana", "Katakana"},
	{"Latin", "Han", "Bopomofo"},
	{"Latin", "Han", "Hangul"},
}

// mixedScripts returns the scripts of s when they are not allowed together
// (nil when s is in one script, or in an allowed mix), in order of first
// appearance.
func mixedScripts(s string) []string {
	var seen []string
	for _, r := range s {
		if sc := scriptOf(r); sc != "" && !slices.Contains(seen, sc) {
			seen = append(seen, sc)
		}
	}
	if len(seen) < 2 {
		return nil
	}
	for _, allowed := range highlyRestrictive {
		ok := true
		for _, sc := range seen {
			ok = ok && slices.Contains(allowed, sc)
		}
		if ok {
			return nil
		}
	}
	return seen
}

// ValidateDisplayName checks a display name: valid UTF-8 of at most
// MaxDisplayNameLen bytes, and no control characters (NUL, which
// PostgreSQL cannot store, line breaks, tabs) and no bidirectional
// controls (UAX #44 Bidi_Control: RLO, PDF, the isolates, LRM/RLM, ALM),
// which reorder the text around them: "\u202Egnp.exe" shows as
// "exe.png". Letters of every script, emoji with their joiners and
// variation selectors, and symbols stay allowed: a display name is shown,
// not looked up.
func ValidateDisplayName(s string) error {
	if !utf8.ValidString(s) || len(s) > MaxDisplayNameLen {
		return fmt.Errorf("display_name must be valid UTF-8 of at most %d bytes: %w", MaxDisplayNameLen, ErrInvalid)
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return unicode.In(r, unicode.Cc, unicode.Bidi_Control) }); i >= 0 {
		r, _ := utf8.DecodeRuneInString(s[i:])
		kind := "a control character"
		switch {
		case r == 0:
			kind = "NUL, which the database cannot store"
		case unicode.Is(unicode.Bidi_Control, r):
			kind = "a bidirectional control, which reorders the text around it"
		}
		return fmt.Errorf("display_name must not contain %U (%s): %w", r, kind, ErrInvalid)
	}
	return nil
}

// Whole-script confusables (issue 24 item 9, UTS #39 section 4): the
// mixed-script rule cannot see an id written wholly in another script whose
// letters all look like Latin ones (Cyrillic "Сара" is "Capa", Armenian
// "ոսս" is "nuu", Greek "ΤΟΜ" is "TOM"), nor a Latin id spelt with
// non-ASCII look-alikes ("ɑdmin" with U+0251 LATIN SMALL LETTER ALPHA).
// UTS #39's skeleton maps every character to the prototype it cannot be
// told from; two strings are confusable when their skeletons are equal.
//
// The rule: an id outside printable ASCII is refused when its skeleton is
// that of a printable-ASCII string, that is when it could pass for an
// ASCII id, which is what most ids are and what an impersonator copies.
// Why this and not "no confusable of any Latin id": the skeletons of
// everyday non-Latin words often fall wholly into Latin letters once the
// Latin small capitals and accents count (Russian "Анна" is "Aʜʜa", Greek
// "Μαρία" is "Mapía"); refusing those would refuse real names wholesale to
// protect accented Latin ids nobody is likely to copy. So an id keeps
// passing as soon as one character, an accent included, looks like no
// ASCII character: Japanese, Chinese, Korean, Arabic, Hindi, Khmer names,
// "Анна", "Ωμέγα", "Μαρία", "café" all pass; ids made only of look-alikes
// ("Сара", "ΤΟΜ", "ոսս", Turkish "kız" with its dotless ı, "O’Brien" with
// a typographic apostrophe, "Cæsar", a lone Arabic alef "ا" or katakana
// "ノ") are refused, naming each character and the ASCII it imitates.
//
// The data is asciiLookalikes (lookalikes.go), generated by `go generate`
// from github.com/mtibben/confusables (BSD 3-clause; its licence and the
// data's header are in the file): the MA table of Unicode's
// confusables.txt 13.0.0 (2020-02-13) and Skeleton (NFD, map, NFD). A
// table and not the package, because the domain package imports nothing
// but the standard library and x/text (TestImportArrows), and because the
// 600-odd characters that look like ASCII are all the rule needs of the
// 6,300 mappings. Go 1.26's own tables are Unicode 15.0, so a character new
// in Unicode 14 or 15 has no mapping and counts as looking like nothing.
//
//go:generate go test -run TestLookalikeTable -update .

// imitation is one character of an id that looks like ASCII.
type imitation struct {
	r     rune
	ascii string // what it looks like, e.g. "C"; "ae" for "æ"
}

// asciiLookalike reports whether id (NFC, not printable ASCII) cannot be
// told from a printable-ASCII id by UTS #39's skeletons: every character
// outside ASCII looks like one or more ASCII characters. It returns that
// ASCII id and the imitating characters, each once. The skeleton maps
// character by character, so testing each character's skeleton is testing
// the id's (TestLookalikePerCharacter checks the one case where an ASCII
// skeleton could span characters, "º/₀" of "%", cannot arise).
func asciiLookalike(id string) (lookalike string, imitations []imitation, ok bool) {
	var b strings.Builder
	for _, r := range id {
		if r < utf8.RuneSelf {
			b.WriteRune(r)
			continue
		}
		a, ok := asciiLookalikes[r]
		if !ok {
			return "", nil, false
		}
		b.WriteString(a)
		if !slices.ContainsFunc(imitations, func(i imitation) bool { return i.r == r }) {
			imitations = append(imitations, imitation{r, a})
		}
	}
	return b.String(), imitations, len(imitations) > 0
}
