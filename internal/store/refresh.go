package store

import (
	"time"

	"github.com/setlist/setlist"
)

// RefreshStatus is where a `batch refresh` stands.
type RefreshStatus string

// The refresh statuses: a refresh starts running and ends done (possibly
// with nothing new), failed, or skipped (the version's family has no item
// factors to fold a song into: EASE versions take new songs at the next
// train).
const (
	RefreshRunning RefreshStatus = "running"
	RefreshDone    RefreshStatus = "done"
	RefreshFailed  RefreshStatus = "failed"
	RefreshSkipped RefreshStatus = "skipped"
)

// Refresh is one row of model_refreshes: a refresh of a published
// version's key space with the songs that entered the catalog (or were
// first played) after its snapshot.
type Refresh struct {
	ID           int64            `json:"id"`
	Version      int64            `json:"version"`
	Status       RefreshStatus    `json:"status"`
	SongsAdded   int              `json:"songs_added"`
	UsersUpdated int              `json:"users_updated"`
	Songs        []setlist.SongID `json:"songs"`
	Reason       string           `json:"reason,omitempty"`
	StartedAt    time.Time        `json:"started_at"`
	FinishedAt   *time.Time       `json:"finished_at,omitempty"`
}

// RefreshEnd is what a refresh records when it ends.
type RefreshEnd struct {
	Status       RefreshStatus
	Songs        []setlist.SongID // folded in (SongsAdded is their number)
	UsersUpdated int
	Reason       string
}
