package recs

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/model"
)

// Similar songs (issue 24 item 4). A song's similar songs are one scan of
// the whole catalog (a cosine against every item, or a row of EASE's
// matrix): milliseconds of CPU at production size, and they had no bound,
// so 64 parallel requests took every core from everyone else's fold-ins.
// Now the list of a song is computed once per loaded snapshot and catalog
// sequence, at MaxN songs without hidden ones, and cached with the
// snapshot: any n, and any filter that MaxN songs satisfy, is cut from it.
// Concurrent requests for one song share one computation (flights), and
// the computations left (cache misses, and filters the cached list cannot
// satisfy) go through fair slots of their own: per client, then per song,
// at most SimilarConcurrency at once (default half the cores), so a flood
// over every song of the catalog holds at most those cores and waits its
// turn behind other clients. Each computation also spends one of its
// client's scoring tokens (admitScoring), so such a flood is also bounded
// over time, not only at any one moment.

// similarCacheSongs bounds the songs whose lists one snapshot caches: each
// is at most MaxN recs (1.6 KB), so about 13 MB per loaded snapshot. A
// song beyond it evicts an arbitrary one (Go's map order): the popular
// seeds, asked again and again, are back after one computation.
const similarCacheSongs = 8192

// similarList is one song's similar songs under one catalog sequence: at
// most MaxN, hidden songs left out; complete means the catalog ran out
// (there are no more to cut a filter's answer from).
type similarList struct {
	recs     []model.Rec
	complete bool
}

// similarCache holds a snapshot's similar lists of the catalog sequence
// seq; a newer sequence empties it (hidden songs changed).
type similarCache struct {
	mu    sync.Mutex
	seq   int64
	lists map[setlist.SongID]similarList
}

func (c *similarCache) get(song setlist.SongID, seq int64) (similarList, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seq != seq {
		return similarList{}, false
	}
	l, ok := c.lists[song]
	return l, ok
}

func (c *similarCache) put(song setlist.SongID, seq int64, l similarList) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case seq < c.seq:
		return // computed under a sequence replaced meanwhile
	case seq > c.seq || c.lists == nil:
		c.seq, c.lists = seq, make(map[setlist.SongID]similarList)
	}
	if len(c.lists) >= similarCacheSongs {
		for k := range c.lists {
			delete(c.lists, k)
			break
		}
	}
	c.lists[song] = l
}

// ErrSimilarBusy means a similar-song computation could not get a slot
// before its request's deadline (or its client's queue was full): a 503
// with Retry-After, logged at WARN. It wraps ErrBusy's cause as well.
var ErrSimilarBusy = fmt.Errorf("similar-song capacity is busy: %w", setlist.ErrUnavailable)

// similarKey names one similar-list computation: requests with equal keys
// share it.
type similarKey struct {
	snap *Snapshot
	song setlist.SongID
	seq  int64
}

// Similar returns the n songs closest to song in the current model. It
// returns ErrNotFound when the model does not know the song.
func (s *Service) Similar(ctx context.Context, client string, song setlist.SongID, n int) (*Snapshot, []model.Rec, error) {
	return s.SimilarFiltered(ctx, client, song, n, nil)
}

// SimilarFiltered is Similar without hidden songs and under a request's
// filter f (nil: none). A hidden song has no similar songs (404): it is
// not in the catalog for listeners. client names who asks, as for
// Recommend: the computations are shared fairly between clients.
func (s *Service) SimilarFiltered(ctx context.Context, client string, song setlist.SongID, n int, f *Filter) (*Snapshot, []model.Rec, error) {
	if n < 1 || n > MaxN {
		return nil, nil, fmt.Errorf("n must be between 1 and %d, got %d: %w", MaxN, n, setlist.ErrInvalid)
	}
	// Every answer spends a token of the client's similar-song rate,
	// cached ones too: cheap, but a closed loop of cheap answers is a
	// share of the cores everyone else needs (admitScoring bounds only
	// the computations).
	if err := s.admit(ctx, s.similarReads, client, "similar_read"); err != nil {
		return nil, nil, fmt.Errorf("similar songs of %d: %w", song, err)
	}
	snap := s.holder.current()
	if snap == nil {
		return nil, nil, ErrNoModel
	}
	cat := s.cat.Load()
	if cat.isHidden(song) {
		return snap, nil, fmt.Errorf("song %d is not available: %w", song, setlist.ErrNotFound)
	}
	if !snap.Published.Knows(song) {
		return snap, nil, fmt.Errorf("song %d is not in model version %d (added after training, or no one reacted to it): %w", song, snap.Version, setlist.ErrNotFound)
	}
	list, err := s.similarList(ctx, client, snap, cat, song)
	if err != nil {
		return snap, nil, err
	}
	if !f.Active() {
		return snap, list.recs[:min(n, len(list.recs))], nil
	}
	sv := newSieve(snap, cat, f)
	items, ok := sv.takeRecs(list.recs, n)
	if !ok && !list.complete {
		// The filter leaves fewer than n of the cached MaxN: rank the
		// allowed catalog, a computation of this request's own.
		s.metrics.Similar.WithLabelValues("filtered").Inc()
		if items, err = s.similarFiltered(ctx, client, snap, sv, song, n); err != nil {
			return snap, nil, err
		}
	}
	out := make([]model.Rec, len(items))
	for i, it := range items {
		out[i] = it.Rec
	}
	return snap, out, nil
}

// similarList is song's cached list, or computes it once (under a slot)
// however many ask at once.
func (s *Service) similarList(ctx context.Context, client string, snap *Snapshot, cat *catalogState, song setlist.SongID) (similarList, error) {
	seq := seqOf(cat)
	if l, ok := snap.similar.get(song, seq); ok {
		s.metrics.Similar.WithLabelValues("cached").Inc()
		return l, nil
	}
	key := similarKey{snap: snap, song: song, seq: seq}
	if !s.simFlights.running(key) {
		if err := s.admitScoring(ctx, client, "similar"); err != nil {
			return similarList{}, fmt.Errorf("similar songs of %d: %w", song, err)
		}
	}
	l, shared, err := s.simFlights.do(ctx, key, func() (similarList, error) {
		subject := "song " + strconv.FormatInt(int64(song), 10)
		if err := s.simSlots.acquire(ctx, client, subject); err != nil {
			return similarList{}, err
		}
		defer s.simSlots.release(subject)
		l := similarOf(snap, newSieve(snap, cat, nil), song)
		snap.similar.put(song, seq, l)
		return l, nil
	})
	switch {
	case errors.Is(err, ErrBusy):
		s.metrics.Similar.WithLabelValues("busy").Inc()
		return similarList{}, fmt.Errorf("similar songs of %d: %w: %w", song, ErrSimilarBusy, err)
	case err != nil:
		return similarList{}, fmt.Errorf("similar songs of %d: %w", song, err)
	case shared:
		s.metrics.Similar.WithLabelValues("shared").Inc()
	default:
		s.metrics.Similar.WithLabelValues("computed").Inc()
	}
	return l, nil
}

// similarOf computes song's list: MaxN songs that pass sv (hidden ones
// left out), asking the model for MaxN plus what sv may drop, and for the
// whole catalog if that still runs short.
func similarOf(snap *Snapshot, sv *sieve, song setlist.SongID) similarList {
	all := snap.Published.Catalog.Len()
	depth := MaxN
	if !sv.trivial() {
		depth += sv.cat.hiddenLen()
	}
	for {
		depth = min(depth, all)
		recs, _ := snap.Published.Similar(song, depth)
		complete := depth >= all || len(recs) < depth
		if sv.trivial() {
			return similarList{recs: recs, complete: complete}
		}
		items, _ := sv.takeRecs(recs, MaxN)
		if len(items) == MaxN || complete {
			out := make([]model.Rec, len(items))
			for i, it := range items {
				out[i] = it.Rec
			}
			return similarList{recs: out, complete: complete}
		}
		depth = all
	}
}

// similarFiltered ranks the catalog a filter allows against song for one
// request (not cached: it is the filter's), under a similar slot.
func (s *Service) similarFiltered(ctx context.Context, client string, snap *Snapshot, sv *sieve, song setlist.SongID, n int) ([]model.Explained, error) {
	if err := s.admitScoring(ctx, client, "similar"); err != nil {
		return nil, fmt.Errorf("similar songs of %d: %w", song, err)
	}
	subject := "song " + strconv.FormatInt(int64(song), 10)
	if err := s.simSlots.acquire(ctx, client, subject); err != nil {
		s.metrics.Similar.WithLabelValues("busy").Inc()
		return nil, fmt.Errorf("similar songs of %d: %w: %w", song, ErrSimilarBusy, err)
	}
	defer s.simSlots.release(subject)
	all := snap.Published.Catalog.Len()
	depth := min(4*n+sv.cat.hiddenLen(), all)
	for {
		recs, _ := snap.Published.Similar(song, depth)
		items, ok := sv.takeRecs(recs, n)
		if ok || depth >= all {
			return items, nil
		}
		depth = all
	}
}
