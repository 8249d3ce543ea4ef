package setlist_test

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/setlist/setlist"
)

// userIDCases is the user id rule as a table (issue 18 item 10): the 13
// look-alikes of "café" the red team made, and the plain cases around them.
// want is the stored id, "" when refused; code marks refusals only the
// server's code makes (normal forms, mixed scripts, byte length), which the
// page's pattern cannot express.
var userIDCases = []struct {
	name, in, want string
	code           bool
}{
	{"ascii", "ana_01.b-c", "ana_01.b-c", false},
	{"letters of any script and inner spaces", "zoë 日本", "zoë 日本", false},
	{"symbols and punctuation", "a+b@c#d!", "a+b@c#d!", false},
	{"NFC café", "caf\u00e9", "caf\u00e9", false},
	{"NFD café is the same id", "cafe\u0301", "caf\u00e9", false},
	{"Cyrillic alone", "саша", "саша", false},
	{"Greek alone", "σοφία", "σοφία", false},
	{"empty", "", "", false},
	{"leading space", " café", "", false},
	{"trailing space", "café ", "", false},
	{"NBSP", "caf\u00a0é", "", false},
	{"ideographic space", "caf\u3000é", "", false},
	{"zero-width space", "caf\u200bé", "", false},
	{"zero-width joiner", "caf\u200dé", "", false},
	{"zero-width non-joiner", "caf\u200cé", "", false},
	{"BOM", "\ufeffcafé", "", false},
	{"soft hyphen", "ca\u00adfé", "", false},
	{"bidi override", "caf\u202eé", "", false},
	{"bidi isolate", "\u2066café\u2069", "", false},
	{"left-to-right mark", "café\u200e", "", false},
	{"control", "caf\té", "", false},
	{"DEL", "café\x7f", "", false},
	{"NUL", "caf\x00é", "", false},
	{"line separator", "caf\u2028é", "", false},
	{"private use", "caf\ue000é", "", false},
	{"replacement character", "caf\ufffd", "", true},
	{"invalid UTF-8", "caf\xff", "", true},
	{"fullwidth letters", "\uff43\uff41\uff46\u00e9", "", true},
	{"ligature", "\ufb01ne", "", true},
	{"Cyrillic а in a Latin name", "c\u0430fé", "", true},
	{"Greek ο in a Latin name", "caf\u03bf", "", true},
	{"too long", strings.Repeat("é", 65), "", true},
	// Issue 24 item 9: invisible letters and marks (default-ignorable by
	// Unicode's properties, though L or M by category), the Braille blank,
	// and scripts mixed beyond UTS #39's highly restrictive level.
	{"Braille pattern blank", "ana\u2800", "", true},
	{"Braille pattern blank alone", "\u2800", "", true},
	{"variation selector 16", "ana\ufe0f", "", true},
	{"combining grapheme joiner", "an\u034fa", "", true},
	{"Hangul choseong filler", "\u115fana", "", true},
	{"Hangul filler", "ana\u3164", "", true},
	{"Khmer inherent vowel", "ana\u17b4", "", true},
	{"Mongolian free variation selector", "ana\u180b", "", true},
	{"Armenian օ in a Latin name", "g\u0585\u0585gle", "", true},
	{"Armenian alone", "Արամ", "Արամ", false},
	{"Cherokee Ꭺ in a Latin name", "\u13aana", "", true},
	{"Cyrillic with Greek", "саша σοφία", "", true},
	{"Latin with Japanese", "tanaka 田中 たなか タナカ", "tanaka 田中 たなか タナカ", false},
	{"Latin with Korean", "kim 김 金", "kim 김 金", false},
	{"Latin with Chinese and Bopomofo", "li 李 ㄌㄧ", "li 李 ㄌㄧ", false},
	{"Hiragana with Hangul", "あ김", "", true},
	{"symbols are of no script", "ana ☕ 2", "ana ☕ 2", false},
	{"Khmer alone", "សុខា", "សុខា", false},
	{"longest", strings.Repeat("a", 128), strings.Repeat("a", 128), false},
	// Issue 24 item 9, what remained: ids wholly of look-alikes of ASCII
	// (UTS #39 confusables; TestUserIDLookalikes has the reasons).
	{"Cyrillic look-alike of Latin", "Сара", "", true},
	{"Armenian look-alike of Latin", "ոսս", "", true},
	{"Greek look-alike of Latin", "ΑΒΕ", "", true},
	{"Latin alpha for a", "\u0251dmin", "", true},
	{"Cyrillic with a letter of its own", "Анна", "Анна", false},
	{"Greek word", "Ωμέγα", "Ωμέγα", false},
}

func TestUserIDRule(t *testing.T) {
	for _, tc := range userIDCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := setlist.ParseUserID(tc.in)
			if tc.want == "" {
				if err == nil || !errors.Is(err, setlist.ErrInvalid) {
					t.Fatalf("UserID(%q) = %q, %v; want ErrInvalid", tc.in, got, err)
				}
				if !strings.HasPrefix(err.Error(), "user_id ") {
					t.Errorf("error %q does not name the field", err)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("UserID(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("the normalised id %q does not validate: %v", got, err)
			}
		})
	}
	if err := setlist.UserID("cafe\u0301").Validate(); err == nil {
		t.Error("Validate accepted an id not in NFC")
	}
}

// TestUserIDPatternMatchesRule: the sign-up form's pattern (UserIDPattern,
// which web/static/index.html carries; web's test checks that) agrees with
// the server's rule on every case the pattern can express, and never
// refuses an id the server accepts.
func TestUserIDPatternMatchesRule(t *testing.T) {
	re := regexp.MustCompile(`^(?:` + setlist.UserIDPattern + `)$`)
	for _, tc := range userIDCases {
		in := tc.in
		if tc.want != "" {
			in = tc.want // the page normalises to NFC before it checks
		}
		page := re.MatchString(in)
		switch {
		case tc.want != "" && !page:
			t.Errorf("%s: the page refuses %q, which the server accepts", tc.name, in)
		case tc.want == "" && !tc.code && page:
			t.Errorf("%s: the page accepts %q, which the server refuses", tc.name, in)
		}
	}
}

// TestDisplayNameRule (issue 24 item 9): a display name may hold any
// script, emoji with their joiners and variation selectors, and symbols;
// never a bidirectional control (which reorders what it is shown beside:
// "\u202egnp.exe" reads "exe.png") nor a control character.
func TestDisplayNameRule(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		ok       bool
	}{
		{"plain", "Ana María", true},
		{"Arabic", "صوفيا", true},
		{"Hebrew and Latin", "דני Dan", true},
		{"emoji with a variation selector", "I \u2764\ufe0f jazz", true},
		{"emoji joined", "\U0001F468\u200d\U0001F469\u200d\U0001F467 family", true},
		{"empty", "", true},
		{"right-to-left override", "\u202egnp.exe", false},
		{"pop directional formatting", "a\u202cb", false},
		{"left-to-right embedding", "\u202aab", false},
		{"isolates", "a\u2066b\u2069", false},
		{"right-to-left mark", "a\u200fb", false},
		{"Arabic letter mark", "a\u061cb", false},
		{"line break", "a\nb", false},
		{"tab", "a\tb", false},
		{"NUL", "a\x00b", false},
		{"invalid UTF-8", "a\xffb", false},
		{"too long", strings.Repeat("a", setlist.MaxDisplayNameLen+1), false},
	} {
		err := setlist.ValidateDisplayName(tc.in)
		if tc.ok != (err == nil) || (err != nil && (!errors.Is(err, setlist.ErrInvalid) || !strings.HasPrefix(err.Error(), "display_name "))) {
			t.Errorf("%s: ValidateDisplayName(%q) = %v, want ok %v", tc.name, tc.in, err, tc.ok)
		}
		if err := (setlist.NewUser{ID: "ana", DisplayName: tc.in}).Validate(); tc.ok != (err == nil) {
			t.Errorf("%s: NewUser with display name %q: %v, want ok %v", tc.name, tc.in, err, tc.ok)
		}
	}
}

// TestUserIDLookalikes (issue 24 item 9): an id outside ASCII that looks
// wholly like an ASCII one by UTS #39's confusables is refused, naming each
// character, its script and the ASCII it imitates; real names in other
// scripts pass as soon as one character (an accent included) looks like no
// ASCII one.
func TestUserIDLookalikes(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		// lookalike is the ASCII id the error names, "" when accepted;
		// imitates are fragments the error must hold, one per character.
		lookalike string
		imitates  []string
	}{
		{"Japanese", "田中 さくら", "", nil},
		{"Katakana", "タナカ", "", nil},
		{"Chinese", "李小龍", "", nil},
		{"Korean", "김민준", "", nil},
		{"Arabic", "محمد علي", "", nil},
		{"Hebrew", "דני", "", nil},
		{"Hindi", "प्रिया", "", nil},
		{"Thai", "สมชาย", "", nil},
		{"Khmer", "សុខា", "", nil},
		{"Russian with letters of its own", "Ирина", "", nil},
		{"Russian Анна: н reads as small capital ʜ, not ASCII", "Анна", "", nil},
		{"Greek with an accent", "Μαρία", "", nil},
		{"Greek Ωμέγα", "Ωμέγα", "", nil},
		{"Greek σοφία", "σοφία", "", nil},
		{"Armenian", "Արամ", "", nil},
		{"Armenian հելլօ: ե and լ look like no ASCII letter", "հելլօ", "", nil},
		{"Latin with accents", "Ingrid Bergmän", "", nil},
		{"Turkish with ş", "Işık", "", nil},
		{"German ß", "Straße", "", nil},
		{"Latin with Japanese", "tanaka 田中", "", nil},
		{"emoji", "ana ☕ 2", "", nil},

		{"Cyrillic соре", "соре", "cope", []string{`"с" (U+0441, Cyrillic) imitates "c"`, `"о" (U+043E, Cyrillic) imitates "o"`, `"р" (U+0440, Cyrillic) imitates "p"`, `"е" (U+0435, Cyrillic) imitates "e"`}},
		{"Cyrillic Сара", "Сара", "Capa", []string{`"С" (U+0421, Cyrillic) imitates "C"`, `"а" (U+0430, Cyrillic) imitates "a"`, `"р" (U+0440, Cyrillic) imitates "p"`}},
		{"Cyrillic with ASCII digits", "хор 2", "xop 2", []string{`"х" (U+0445, Cyrillic) imitates "x"`, `"о" (U+043E, Cyrillic) imitates "o"`, `"р" (U+0440, Cyrillic) imitates "p"`}},
		{"Greek capitals", "ΑΒΕ", "ABE", []string{`"Α" (U+0391, Greek) imitates "A"`, `"Β" (U+0392, Greek) imitates "B"`, `"Ε" (U+0395, Greek) imitates "E"`}},
		{"Greek iota as capital I", "ΙΟ", "IO", []string{`"Ι" (U+0399, Greek) imitates "I"`, `"Ο" (U+039F, Greek) imitates "O"`}},
		{"Armenian ոսս", "ոսս", "nuu", []string{`"ո" (U+0578, Armenian) imitates "n"`, `"ս" (U+057D, Armenian) imitates "u"`}},
		{"Cherokee", "ᎪᏴ", "AB", []string{`"Ꭺ" (U+13AA, Cherokee) imitates "A"`, `"Ᏼ" (U+13F4, Cherokee) imitates "B"`}},
		{"Latin alpha", "\u0251dmin", "admin", []string{`"ɑ" (U+0251, Latin) imitates "a"`}},
		{"Turkish dotless i alone", "kız", "kiz", []string{`"ı" (U+0131, Latin) imitates "i"`}},
		{"ligature-like æ", "Cæsar", "Caesar", []string{`"æ" (U+00E6, Latin) imitates "ae"`}},
		{"typographic apostrophe", "O\u2019Brien", "O'Brien", []string{`"’" (U+2019, no script) imitates "'"`}},
		{"en dash", "ana\u2013b", "ana-b", []string{`"–" (U+2013, no script) imitates "-"`}},
		{"Arabic alef alone", "ا", "l", []string{`"ا" (U+0627, Arabic) imitates "l"`}},
		{"Arabic-Indic digits", "١٠", "1.", []string{`"١" (U+0661, Arabic) imitates "1"`, `"٠" (U+0660, Arabic) imitates "."`}},
		{"katakana no alone", "ノ", "/", []string{`"ノ" (U+30CE, Katakana) imitates "/"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := setlist.ParseUserID(tc.in)
			if tc.lookalike == "" {
				if err != nil || string(got) != tc.in {
					t.Fatalf("ParseUserID(%q) = %q, %v; want it accepted", tc.in, got, err)
				}
				return
			}
			if !errors.Is(err, setlist.ErrInvalid) {
				t.Fatalf("ParseUserID(%q) = %q, %v; want ErrInvalid", tc.in, got, err)
			}
			msg := err.Error()
			if want := fmt.Sprintf("user_id looks like the ASCII id %q", tc.lookalike); !strings.HasPrefix(msg, want) {
				t.Errorf("error %q does not start %q", msg, want)
			}
			for _, f := range tc.imitates {
				if !strings.Contains(msg, f) {
					t.Errorf("error %q does not say %s", msg, f)
				}
			}
			if n := strings.Count(msg, " imitates "); n != len(tc.imitates) {
				t.Errorf("error %q names %d characters, want %d", msg, n, len(tc.imitates))
			}
		})
	}
}
