// Package setlist holds the domain shared by the batch and serve binaries:
// its types and the rules every way in applies to them (the user id rule, a
// registration, a song reference). It imports only the standard library and
// golang.org/x/text's Unicode tables, so that every other package can depend
// on it without pulling in a database or HTTP stack.
package setlist

import "time"

// UserID is the external, human-facing identifier of a user (the user_id
// column of an imported CSV, or the id chosen at registration). Internal
// database keys never leave the storage layer.
type UserID string

// SongID is the stable database identifier of a song. It is exposed in the API
// because (artist, track) pairs are long and need escaping in URLs.
type SongID int64

// ReactionKind says what a user did with a song.
type ReactionKind string

// The reaction kinds. A play carries a count as its weight; like and dislike
// are explicit signals whose weight is fixed by the model's weighting scheme.
const (
	Play    ReactionKind = "play"
	Like    ReactionKind = "like"
	Dislike ReactionKind = "dislike"
)

// Valid reports whether k is one of the known kinds.
func (k ReactionKind) Valid() bool {
	return k == Play || k == Like || k == Dislike
}

// User is a listener.
type User struct {
	ID          UserID    `json:"user_id"`
	DisplayName string    `json:"display_name"`
	CreatedAt   time.Time `json:"created_at"`
	// Seq is the creation's reaction sequence number (see store.SeqBase):
	// serve's freshness mark, not part of the API.
	Seq int64 `json:"-"`
}

// Song is one catalog entry, unique by (Artist, Track).
type Song struct {
	ID     SongID `json:"song_id"`
	Artist string `json:"artist"`
	Track  string `json:"track"`
}

// Reaction is one user's signal on one song. There is at most one reaction per
// (user, song, kind); Weight is the play count for plays and 1 otherwise.
type Reaction struct {
	User      UserID       `json:"user_id"`
	Song      SongID       `json:"song_id"`
	Kind      ReactionKind `json:"kind"`
	Weight    float64      `json:"weight"`
	UpdatedAt time.Time    `json:"updated_at"`
	// Seq is the write's reaction sequence number (see store.SeqBase),
	// set by React: serve's freshness mark, not part of the API.
	Seq int64 `json:"-"`
}

// Source says where a served recommendation list came from.
type Source string

// The recommendation sources, most personal first.
const (
	SourceBatch   Source = "batch"   // precomputed by the last published batch run
	SourceFoldIn  Source = "fold-in" // solved on demand from the user's reactions
	SourcePopular Source = "popular" // the user has no usable reactions
)

// Arm says which side of an online experiment a user is on. A user is in
// exactly one arm of the running experiment; with none running every user is
// in ArmNone and is served the current version.
type Arm string

// The experiment arms.
const (
	ArmNone       Arm = "none"       // no experiment runs
	ArmControl    Arm = "control"    // served the current version
	ArmChallenger Arm = "challenger" // served the experiment's challenger version
)
