package store

import (
	"time"

	"github.com/setlist/setlist"
)

// ReactedSong is one reaction with its song named, for listing.
type ReactedSong struct {
	Song      setlist.Song         `json:"song"`
	Kind      setlist.ReactionKind `json:"kind"`
	Weight    float64              `json:"weight"`
	UpdatedAt time.Time            `json:"updated_at"`
}

// FoldInOrder documents the order in which UserReactions returns a user's
// reactions when it is given a limit, so a capped fold-in keeps the
// strongest evidence: likes and dislikes first (a deliberate opinion, and a
// dislike overrides the plays of its song), then the most recently updated,
// then the largest play count, then by song id (a total order, so the same
// history always yields the same capped set). Both backends implement it in
// SQL: the cap bounds what is read and decoded, not only what is solved.
const FoldInOrder = "kind = 'play', updated_at DESC, weight DESC, song_id"
