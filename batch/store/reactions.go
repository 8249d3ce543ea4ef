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
