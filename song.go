package setlist

import (
	"fmt"
	"strings"
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
	if err := CheckSongNameLength("artist", r.Artist); err != nil {
		return err
	}
	return CheckSongNameLength("track", r.Track)
}

// MaxSongNameBytes bounds an artist or a track name, in bytes of UTF-8.
// songs' UNIQUE (artist, track) btree holds both in one index row, and
// PostgreSQL refuses an index row over about 2,700 bytes with an error that
// names no input; two names of at most 1,000 bytes always fit. Real names are
// far shorter (the longest classical titles are a few hundred bytes).
const MaxSongNameBytes = 1000

// CheckSongNameLength refuses an artist or track name (field says which)
// longer than MaxSongNameBytes, with a message that says so and by how much.
func CheckSongNameLength(field, name string) error {
	if len(name) > MaxSongNameBytes {
		return fmt.Errorf("%s is %d bytes, at most %d allowed: %w", field, len(name), MaxSongNameBytes, ErrInvalid)
	}
	return nil
}

// validText reports whether PostgreSQL text can hold s (valid UTF-8, no NUL),
// so a lookup by such a name is a 400 instead of a failed query.
func validText(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}
