package store

import (
	"context"
	"errors"
	"fmt"
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

// Reaction sequence numbers make "is this user's latest reaction in the
// model?" exact. Every write to a user's reactions takes the next number of
// one database-wide counter (reaction_seq, migration 0004) in the same
// transaction, after locking the user, so one user's numbers grow in commit
// order. A training snapshot records the counter's value S such that a write
// is visible in the snapshot exactly when its number is ≤ S: PostgreSQL
// fences in-flight writes with an advisory lock (see postgres.LoadTraining),
// SQLite's single writer makes the counter row itself the fence. Serve keeps
// each user's latest number in Redis and serves the batch list only while it
// is ≤ the model's S, one integer comparison on the read path.
//
// Timestamps could not do this: updated_at is a transaction's start, so a
// write that began before a snapshot and committed after it carries an
// earlier time than the snapshot yet is not in it.

// SeqBase is the counter's first value (2^62): every number is above any
// unix-nanosecond time serve stored as a user's "touched" mark before the
// counter existed, so the larger of the two is always the number.
const SeqBase int64 = 1 << 62

// SeqLock is the PostgreSQL advisory lock key that fences reaction writes
// (shared, held from taking a number to commit) against a training
// snapshot (exclusive, held while it reads the counter and starts).
const SeqLock int64 = 0x5e7115_0004

// WriteMark is told of a reaction write (user u, number seq) as the last
// step before its transaction commits, while the write is not yet visible
// to anyone: serve raises u's freshness mark in Redis there, so no write
// commits without the mark that stops u's older batch list from being
// served (a mark raised after the commit could fail and leave a committed
// like served back from the batch list). An error rolls the write back: the
// client is told "not saved", which is then true.
type WriteMark func(ctx context.Context, u setlist.UserID, seq int64) error

type writeMarkKey struct{}

// WithWriteMark returns ctx carrying mark for the reaction writes made with
// it (React, Unreact, CreateUser of both backends). It rides the request's
// context because it belongs to that request: the serve replica handling
// the write marks it, whatever else shares the database handle.
func WithWriteMark(ctx context.Context, mark WriteMark) context.Context {
	return context.WithValue(ctx, writeMarkKey{}, mark)
}

// ErrNotMarked is a write rolled back because its freshness mark could not
// be written: nothing was saved.
var ErrNotMarked = errors.New("not saved: the write could not be marked in the serving cache, so it was rolled back")

// MarkWrite calls the mark ctx carries, if any; a backend calls it after
// numbering the write, before commit, and returns its error (which then
// wraps ErrNotMarked) so the transaction rolls back.
func MarkWrite(ctx context.Context, u setlist.UserID, seq int64) error {
	mark, _ := ctx.Value(writeMarkKey{}).(WriteMark)
	if mark == nil {
		return nil
	}
	if err := mark(ctx, u, seq); err != nil {
		return fmt.Errorf("%w: %w: %w", ErrNotMarked, setlist.ErrUnavailable, err)
	}
	return nil
}

// ErrContention is a write the database kept aborting because of
// concurrent ones (deadlocks, serialization failures) after the backend's
// retries: unavailable for now, answered 503 with Retry-After, never 500.
var ErrContention = fmt.Errorf("concurrent writes kept colliding: %w", setlist.ErrUnavailable)

// Shown is the list an opinion is attributed to: the last list serve
// answered the user within the attribution window (serve/internal/exposure:
// Recorder.Shown, issue 24 item 8), with the model version and experiment
// arm it was served from, its source and songs in order. Source is "" when
// no list was answered in the window: then Version and Arm are the ones
// the user is assigned, and every song is not shown.
type Shown struct {
	Version int64
	Arm     setlist.Arm
	Source  setlist.Source
	Songs   []setlist.SongID
}

// Outcome is a like's or dislike's attribution as stored with it (migration
// 0006): the version and arm the user was assigned to and, when the song
// was in the list shown, that list's source and the song's 1-based
// position. Position 0 (and no source) means not shown.
type Outcome struct {
	Version  int64          `json:"model_version,omitempty"`
	Arm      setlist.Arm    `json:"arm"`
	Source   setlist.Source `json:"source,omitempty"`
	Position int            `json:"position,omitempty"`
}

// Shown reports whether the song was in the list shown.
func (o Outcome) Shown() bool { return o.Position > 0 }

// Attribute is song's outcome against the list shown: its first position
// in it, or not shown.
func (s Shown) Attribute(song setlist.SongID) Outcome {
	o := Outcome{Version: s.Version, Arm: s.Arm}
	if s.Arm == "" {
		o.Arm = setlist.ArmNone
	}
	if s.Source == "" {
		return o
	}
	for i, id := range s.Songs {
		if id == song {
			o.Source, o.Position = s.Source, i+1
			return o
		}
	}
	return o
}

// Attributed reports whether a reaction of kind carries an attribution:
// likes and dislikes do, plays (counted by the player, not a judgement of
// what was shown) do not.
func Attributed(kind setlist.ReactionKind) bool {
	return kind == setlist.Like || kind == setlist.Dislike
}

// OutcomeColumns is an Outcome as the nullable shown_* columns of reactions
// hold it (migration 0006): both backends write and scan it, so the
// mapping between the two shapes is written once.
type OutcomeColumns struct {
	Version  *int64
	Arm      *string
	Source   *string
	Position *int64
}

// OutcomeColumnsOf is the shown_* column values of song's attribution
// against shown (all NULL when shown is nil: an unattributed write).
func OutcomeColumnsOf(shown *Shown, song setlist.SongID) OutcomeColumns {
	if shown == nil {
		return OutcomeColumns{}
	}
	o := shown.Attribute(song)
	arm := string(o.Arm)
	c := OutcomeColumns{Arm: &arm}
	if o.Version != 0 {
		c.Version = &o.Version
	}
	if o.Shown() {
		src, pos := string(o.Source), int64(o.Position)
		c.Source, c.Position = &src, &pos
	}
	return c
}

// Outcome is the stored attribution, or nil for a reaction stored without
// one.
func (c OutcomeColumns) Outcome() *Outcome {
	if c.Arm == nil {
		return nil
	}
	o := &Outcome{Arm: setlist.Arm(*c.Arm)}
	if c.Version != nil {
		o.Version = *c.Version
	}
	if c.Source != nil && c.Position != nil {
		o.Source, o.Position = setlist.Source(*c.Source), int(*c.Position)
	}
	return o
}
