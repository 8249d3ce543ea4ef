// Package model is the published model as both binaries see it: the catalog
// that maps songs to ALS item indexes, the scheme that turns reactions into
// ALS weights, the record formats stored in Redis, and the fold-in that
// serve runs for users the last batch did not see. Batch and serve share this
// one implementation so a folded-in user is scored exactly as a trained one.
package model

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/als"
	"github.com/setlist/setlist/internal/ease"
	"github.com/setlist/setlist/internal/feedback"
)

// Version identifies one published model; it is the id of the model_runs row
// that produced it, so the registry and the key space share one number.
type Version int64

// Scheme turns a user's reactions on one song into the raw ALS weight
// (feedback.Entry.Value): the play count, plus LikeWeight for a like; a dislike
// overrides both and yields −DislikeWeight (preference 0). The weighting
// (raw, log, bm25) in als.Params is applied on top of this value.
type Scheme struct {
	LikeWeight    float32 `json:"like_weight"`
	DislikeWeight float32 `json:"dislike_weight"`
}

// DefaultScheme counts a like like a song found on a few of the user's
// playlists: a deliberate, strong signal.
func DefaultScheme() Scheme { return Scheme{LikeWeight: 4, DislikeWeight: 1} }

// Validate rejects weights that would flip or erase a signal.
func (s Scheme) Validate() error {
	if !(s.LikeWeight > 0) || !(s.DislikeWeight > 0) {
		return fmt.Errorf("like and dislike weights must be > 0, got %v and %v: %w", s.LikeWeight, s.DislikeWeight, setlist.ErrInvalid)
	}
	return nil
}

// Meta describes a published version. It is stored as JSON next to the
// version's keys so serve can show and check what it is serving.
type Meta struct {
	Version    Version   `json:"version"`
	TrainedAt  time.Time `json:"trained_at"`
	SnapshotAt time.Time `json:"snapshot_at"` // reactions updated after this are not in the model
	// SnapshotSeq: reaction writes numbered above it are not in the model,
	// exactly (see store.SeqBase); 0 in versions published before it existed.
	SnapshotSeq int64 `json:"snapshot_seq,omitempty"`
	// Family is the model family (FamilyALS, FamilyEASE); empty in metas
	// written before EASE existed, which are ALS (FamilyOf).
	Family string     `json:"family,omitempty"`
	Params als.Params `json:"params"`
	// EASE holds an EASE version's parameters (Params is then unused).
	EASE    *ease.Params       `json:"ease,omitempty"`
	Scheme  Scheme             `json:"scheme"`
	Metrics map[string]float64 `json:"metrics,omitempty"`
	// K is the depth of the stored lists: songs stored per user, more
	// than an answer's n, so serve still finds n after leaving out hidden
	// songs and a request's filtered ones (docs/KEYSPACE.md, "Depth").
	K     int `json:"k"`
	Users int `json:"users"` // users with a stored list
	Items int `json:"items"`
	Keys  int `json:"keys"` // keys written, counted before the pointer switch
	// KeyLayout is how the version's Redis keys are named
	// (keyspace.KeyLayout), so a reader can refuse a newer writer's.
	KeyLayout int `json:"key_layout,omitempty"`
	// Unavailable are the songs taken down at the snapshot (ascending): no
	// list of the version holds them (batch train, republish, the
	// precompute shards), though their reactions trained it.
	Unavailable []setlist.SongID `json:"unavailable,omitempty"`
}

// Rec is one recommended song.
type Rec struct {
	Song  setlist.SongID
	Score float32
}

// Catalog maps songs to the dense item indexes of one model and back. It is
// fixed for a version: songs added after training are unknown to it.
type Catalog struct {
	songs []setlist.SongID
	index map[setlist.SongID]int32
}

// NewCatalog indexes songs in the given order (index i is songs[i]).
func NewCatalog(songs []setlist.SongID) *Catalog {
	c := &Catalog{songs: songs, index: make(map[setlist.SongID]int32, len(songs))}
	for i, s := range songs {
		c.index[s] = int32(i)
	}
	return c
}

// Len is the number of songs.
func (c *Catalog) Len() int { return len(c.songs) }

// Songs returns the songs in index order; callers must not modify it.
func (c *Catalog) Songs() []setlist.SongID { return c.songs }

// Index returns song's item index, if the model knows the song.
func (c *Catalog) Index(song setlist.SongID) (int32, bool) {
	i, ok := c.index[song]
	return i, ok
}

// Song returns the song at item index i.
func (c *Catalog) Song(i int32) setlist.SongID { return c.songs[i] }

// Indexes returns the item indexes of the songs the model knows among
// songs, ascending (what a top-N leaves out for everyone: feedback.Mask).
func (c *Catalog) Indexes(songs []setlist.SongID) []int32 {
	var out []int32
	for _, s := range songs {
		if i, ok := c.index[s]; ok {
			out = append(out, i)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Recs maps scored item indexes to songs.
func (c *Catalog) Recs(scored []feedback.Scored) []Rec {
	out := make([]Rec, len(scored))
	for i, s := range scored {
		out[i] = Rec{Song: c.songs[s.Item], Score: s.Score}
	}
	return out
}

// Row turns one user's reactions into an ALS row under scheme: the item
// indexes, their raw weights, and the items to exclude from recommendations
// (every song the user reacted to). Songs the catalog does not know are
// skipped: they carry no information about the trained factors.
func (c *Catalog) Row(s Scheme, reactions []setlist.Reaction) (cols []int32, vals []float32) {
	bySong := make(map[int32]*Signal, len(reactions))
	order := make([]int32, 0, len(reactions))
	for _, r := range reactions {
		i, ok := c.index[r.Song]
		if !ok {
			continue
		}
		a := bySong[i]
		if a == nil {
			a = &Signal{}
			bySong[i] = a
			order = append(order, i)
		}
		a.Add(r.Kind, float32(r.Weight))
	}
	cols = make([]int32, 0, len(order))
	vals = make([]float32, 0, len(order))
	for _, i := range order {
		if w, ok := bySong[i].Weight(s); ok {
			cols, vals = append(cols, i), append(vals, w)
		}
	}
	return cols, vals
}

// ErrNoSignal means a user has no reactions the model can use; callers serve
// the popular list instead.
var ErrNoSignal = errors.New("no usable reactions")

// Published is one version loaded in memory: what serve needs to answer
// without Redis for everything but the per-user lists.
type Published struct {
	Meta    Meta
	Catalog *Catalog
	// Side is the ALS item side of an ALS version (nil for another
	// family); Items answers fold-ins for any family and, when nil, is
	// Side's.
	Side    *als.ItemSide
	Items   ItemModel
	Popular []Rec
	// Refreshes is the version's refresh count when it was loaded
	// (keyspace.Keys.Refreshes): songs batch refresh added after training
	// are in Catalog and Side; a larger count in Redis means more were.
	Refreshes int64
}

// FamilyOf is m's family: FamilyALS for metas written before families.
func (m Meta) FamilyOf() string {
	if m.Family == "" {
		return FamilyALS
	}
	return m.Family
}

// itemModel is what fold-ins and similar songs ask, whatever the family.
func (p *Published) itemModel() ItemModel {
	if p.Items != nil {
		return p.Items
	}
	return ALSItems(p.Side)
}

// FoldIn solves the user's vector from their reactions against the item
// factors (exactly as training would) and returns their top n songs, never
// one they reacted to nor one the version was trained without
// (Meta.Unavailable): the available part of the list the batch would store
// for the user (which withholds those songs where they rank). It returns
// ErrNoSignal when no reaction is usable.
func (p *Published) FoldIn(reactions []setlist.Reaction, n int) ([]Rec, error) {
	explained, _, err := p.FoldInExcluding(reactions, p.Meta.Unavailable, n, 0)
	if err != nil {
		return nil, err
	}
	recs := make([]Rec, len(explained))
	for i, e := range explained {
		recs[i] = e.Rec
	}
	return recs, nil
}

// PopularFor returns the first n popular songs the user has not reacted to.
func (p *Published) PopularFor(reacted map[setlist.SongID]bool, n int) []Rec {
	out := make([]Rec, 0, n)
	for _, r := range p.Popular {
		if len(out) == n {
			break
		}
		if !reacted[r.Song] {
			out = append(out, r)
		}
	}
	return out
}
