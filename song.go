package setlist

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// SongRef names a song the way an API caller may: by id, or by its unique
// (artist, track) pair. Exactly one form must be set.
type SongRef struct {
	ID     SongID `json:"song_id,omitempty"`
	Artist string `json:"artist,omitempty"`
	Track  string `json:"track,omitempty"`
}

// String names the reference in error messages the way the caller wrote it.
func (r SongRef) String() string {
	if r.ID != 0 {
		return fmt.Sprintf("song_id %d", r.ID)
	}
	return fmt.Sprintf("%q by %q", r.Track, r.Artist)
}

// Validate checks that exactly one form is set.
func (r SongRef) Validate() error {
	byName := r.Artist != "" || r.Track != ""
	switch {
	case r.ID != 0 && byName:
		return fmt.Errorf("give song_id or artist and track, not both: %w", ErrInvalid)
	case r.ID < 0:
		return fmt.Errorf("song_id must be positive, got %d: %w", r.ID, ErrInvalid)
	case r.ID == 0 && (r.Artist == "" || r.Track == ""):
		return fmt.Errorf("give song_id, or both artist and track: %w", ErrInvalid)
	case !validText(r.Artist) || !validText(r.Track):
		return fmt.Errorf("artist and track must be valid UTF-8 without NUL: %w", ErrInvalid)
	}
	return nil
}

// validText reports whether PostgreSQL text can hold s (valid UTF-8, no NUL),
// so a lookup by such a name is a 400 instead of a failed query.
func validText(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// Catalog limits (issue 22): what one song's metadata may hold, so a
// request or an import row cannot bloat the catalog, and tags stay short
// words that fit a query parameter (tags=rock,explicit) without escaping.
const (
	MaxSongNameLen   = 1024 // bytes of an artist or track name given to CreateSong or the catalog import
	MaxTags          = 16   // tags per song
	MaxTagLen        = 32   // bytes per tag
	MaxExternalIDLen = 64   // bytes of an external id (an ISRC is 12)
)

// TagRule states the tag rule in words, for errors and the page.
const TagRule = "lowercase ASCII letters and digits, and - _ & + . inside, 1 to 32 bytes; at most 16 tags"

// EarliestRelease is the earliest release date the catalog accepts; the
// latest is a year from today (a release may be scheduled).
var EarliestRelease = Date{time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)}

// CatalogSong is a song with its catalog metadata (issue 22): whether it may
// be recommended, its tags (genre, "explicit", …), its release day and the
// customer's own id for it. Unavailable songs keep their reactions (they are
// still training signal) but are never recommended.
type CatalogSong struct {
	Song
	Available bool     `json:"available"`
	Tags      []string `json:"tags"`     // sorted, never nil
	Released  *Date    `json:"released"` // nil: unknown
	// ExternalID is the customer's own unique id (e.g. an ISRC), "" if none.
	ExternalID string    `json:"external_id,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
}

// NewSong is a song to add to the catalog. Available nil means true.
type NewSong struct {
	Artist     string
	Track      string
	Available  *bool
	Tags       []string
	Released   *Date
	ExternalID string
}

// Normalize checks every field by its API name, and returns the song to
// store: names trimmed, tags normalised (NormalizeTags), availability
// defaulted to true.
func (n NewSong) Normalize(now time.Time) (NewSong, error) {
	var err error
	if n.Artist, err = songName("artist", n.Artist); err != nil {
		return NewSong{}, err
	}
	if n.Track, err = songName("track", n.Track); err != nil {
		return NewSong{}, err
	}
	if n.Available == nil {
		yes := true
		n.Available = &yes
	}
	if n.Tags, err = NormalizeTags(n.Tags); err != nil {
		return NewSong{}, err
	}
	if n.Released != nil {
		if err := n.Released.ValidRelease(now); err != nil {
			return NewSong{}, err
		}
	}
	if err := ValidateExternalID(n.ExternalID); err != nil {
		return NewSong{}, err
	}
	return n, nil
}

// songName trims an artist or track name and checks what both backends can
// store and the catalog accepts.
func songName(field, s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", fmt.Errorf("%s is required: %w", field, ErrInvalid)
	case !validText(s):
		return "", fmt.Errorf("%s must be valid UTF-8 without NUL: %w", field, ErrInvalid)
	case len(s) > MaxSongNameLen:
		return "", fmt.Errorf("%s is longer than %d bytes: %w", field, MaxSongNameLen, ErrInvalid)
	}
	return s, nil
}

// SongPatch changes some of a song's catalog metadata; a nil field is left
// as it is. Artist and track are the song's identity and cannot change.
// Released pointing at the zero Date clears the release day; ExternalID
// pointing at "" clears the external id.
type SongPatch struct {
	Available  *bool
	Tags       *[]string
	Released   *Date
	ExternalID *string
}

// Empty reports whether the patch changes nothing.
func (p SongPatch) Empty() bool {
	return p.Available == nil && p.Tags == nil && p.Released == nil && p.ExternalID == nil
}

// Normalize checks every field set by its API name and returns the patch
// with its tags normalised.
func (p SongPatch) Normalize(now time.Time) (SongPatch, error) {
	if p.Tags != nil {
		tags, err := NormalizeTags(*p.Tags)
		if err != nil {
			return SongPatch{}, err
		}
		p.Tags = &tags
	}
	if p.Released != nil && !p.Released.IsZero() {
		if err := p.Released.ValidRelease(now); err != nil {
			return SongPatch{}, err
		}
	}
	if p.ExternalID != nil {
		if err := ValidateExternalID(*p.ExternalID); err != nil {
			return SongPatch{}, err
		}
	}
	return p, nil
}

// Apply returns s changed by p (p already normalised).
func (p SongPatch) Apply(s CatalogSong) CatalogSong {
	if p.Available != nil {
		s.Available = *p.Available
	}
	if p.Tags != nil {
		s.Tags = slices.Clone(*p.Tags)
	}
	if p.Released != nil {
		s.Released = nil
		if !p.Released.IsZero() {
			d := *p.Released
			s.Released = &d
		}
	}
	if p.ExternalID != nil {
		s.ExternalID = *p.ExternalID
	}
	return s
}

// NormalizeTags applies the tag rule (TagRule) to tags and returns them
// lowercased (ASCII), without duplicates, sorted: the form both backends
// store, so a filter compares bytes. Never nil.
func NormalizeTags(tags []string) ([]string, error) {
	out := make([]string, 0, len(tags))
	for i, t := range tags {
		t = strings.ToLower(strings.TrimSpace(t))
		if err := ValidateTag(t); err != nil {
			return nil, fmt.Errorf("tags[%d]: %w", i, err)
		}
		out = append(out, t)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > MaxTags {
		return nil, fmt.Errorf("tags: at most %d, got %d: %w", MaxTags, len(out), ErrInvalid)
	}
	return out, nil
}

// ValidateTag checks one tag, already lowercased, against TagRule.
func ValidateTag(t string) error {
	if t == "" || len(t) > MaxTagLen {
		return fmt.Errorf("tag %q must be 1 to %d bytes: %w", truncateRunes(t, 40), MaxTagLen, ErrInvalid)
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		inner := strings.IndexByte("-_&+.", c) >= 0 && i > 0 && i < len(t)-1
		if !alnum && !inner {
			return fmt.Errorf("tag %q: %s: %w", truncateRunes(t, 40), TagRule, ErrInvalid)
		}
	}
	return nil
}

// ValidateExternalID checks an external id: "" (none), or 1 to
// MaxExternalIDLen visible ASCII characters (no spaces), so it is safe in a
// URL, a CSV cell and a log line.
func ValidateExternalID(id string) error {
	if len(id) > MaxExternalIDLen {
		return fmt.Errorf("external_id is longer than %d bytes: %w", MaxExternalIDLen, ErrInvalid)
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return fmt.Errorf("external_id %q must be visible ASCII without spaces: %w", truncateRunes(id, 40), ErrInvalid)
		}
	}
	return nil
}

// Date is a calendar day, held as UTC midnight and written YYYY-MM-DD.
type Date struct{ time.Time }

// DateLayout is how a Date is written in JSON, query parameters and CSV.
const DateLayout = "2006-01-02"

// ParseDate reads a YYYY-MM-DD day.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(DateLayout, s)
	if err != nil {
		return Date{}, fmt.Errorf("date %q is not YYYY-MM-DD: %w", truncateRunes(s, 40), ErrInvalid)
	}
	return Date{t}, nil
}

// DateOf is the UTC day of t.
func DateOf(t time.Time) Date {
	y, m, d := t.UTC().Date()
	return Date{time.Date(y, m, d, 0, 0, 0, 0, time.UTC)}
}

func (d Date) String() string { return d.Format(DateLayout) }

// MarshalJSON writes "YYYY-MM-DD".
func (d Date) MarshalJSON() ([]byte, error) { return []byte(`"` + d.String() + `"`), nil }

// UnmarshalJSON reads "YYYY-MM-DD".
func (d *Date) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("date must be a string YYYY-MM-DD: %w", ErrInvalid)
	}
	p, err := ParseDate(s)
	if err != nil {
		return err
	}
	*d = p
	return nil
}

// ValidRelease checks that d is a plausible release day: from
// EarliestRelease to a year after now.
func (d Date) ValidRelease(now time.Time) error {
	latest := DateOf(now).AddDate(1, 0, 0)
	if d.Before(EarliestRelease.Time) || d.After(latest) {
		return fmt.Errorf("released %s must be between %s and %s: %w", d, EarliestRelease, latest.Format(DateLayout), ErrInvalid)
	}
	return nil
}

// truncateRunes cuts s to at most n bytes at a rune boundary for messages.
func truncateRunes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
