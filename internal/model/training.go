package model

import (
	"time"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/feedback"
)

// Signal accumulates one user's reactions on one song. It is the single
// definition of how plays, likes and dislikes combine, used both by the
// training load (which streams reactions) and by Catalog.Row (fold-in), so a
// folded-in user is weighed exactly as a trained one.
type Signal struct {
	plays    float32
	likes    int32
	disliked bool
}

// Add folds one reaction into the signal. Unknown kinds are ignored.
func (a *Signal) Add(kind setlist.ReactionKind, weight float32) {
	switch kind {
	case setlist.Play:
		a.plays += weight
	case setlist.Like:
		a.likes++
	case setlist.Dislike:
		a.disliked = true
	}
}

// Weight is the raw ALS weight (feedback.Entry.Value) under s: a dislike overrides
// everything and yields −DislikeWeight; otherwise plays plus LikeWeight per
// like. ok is false when the reactions carry no signal (only zero plays).
func (a Signal) Weight(s Scheme) (w float32, ok bool) {
	if a.disliked {
		return -s.DislikeWeight, true
	}
	w = a.plays + float32(a.likes)*s.LikeWeight
	return w, w > 0
}

// Training is one consistent snapshot of every reaction, indexed densely for
// ALS. Only users and songs with at least one reaction get an index: the
// others would be empty rows and columns that cost memory and teach nothing.
type Training struct {
	// SnapshotAt is the database time of the snapshot: reactions updated
	// after it are newer than a model trained on this data.
	SnapshotAt time.Time
	// SnapshotSeq is exact where SnapshotAt is not: the reaction writes
	// numbered ≤ it (see store.SeqBase) are in the snapshot, the others not.
	SnapshotSeq int64
	// Users maps a dense user index (an ALS row) to the external user id.
	Users []setlist.UserID
	// Songs maps a dense item index (an ALS column) to the song.
	Songs []setlist.SongID
	// Unavailable are the songs of Songs taken down at the snapshot
	// (available false, ascending): their reactions stay in Entries, as
	// training signal (they still describe the listeners' taste), but no
	// list of the version holds them.
	Unavailable []setlist.SongID
	// Entries holds one entry per (user, song) with a signal, its Value the
	// raw weight under the scheme the snapshot was loaded with.
	Entries []feedback.Entry
	// Reactions is the number of reaction rows read.
	Reactions int64
}
