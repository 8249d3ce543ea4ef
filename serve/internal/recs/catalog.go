package recs

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/model"
)

// Catalog is what serve reads of the managed catalog (issue 22) from the
// system of record: the hidden songs with the change sequence they are
// current as of, and the metadata the request filters look at. Both are
// read only when the catalog changes or a version loads, never per answer.
type Catalog interface {
	// HiddenSongs returns the catalog change sequence and every song that
	// is not available as of it.
	HiddenSongs(ctx context.Context) (seq int64, hidden []setlist.SongID, err error)
	// CatalogSongs returns the songs among ids that exist, with their
	// metadata.
	CatalogSongs(ctx context.Context, ids []setlist.SongID) (map[setlist.SongID]setlist.CatalogSong, error)
}

// catalogState is one replica's view of the catalog as of change sequence
// seq: the hidden set every answer leaves out, and the tags and release day
// of every song of the versions loaded (what filters test). It is immutable;
// a change swaps in a new one (Service.cat).
type catalogState struct {
	seq    int64
	hidden map[setlist.SongID]struct{}
	facets map[setlist.SongID]facet
	// read is whether hidden was read from the system of record
	// (reloadCatalog). Until then it holds the songs that the loaded
	// versions' metadata said were unavailable: the stored lists withhold
	// such songs where they rank, so a replica that could not read the
	// hidden set yet must not serve them either.
	read bool
}

// facet is what a filter reads of one song besides its artist (which the
// snapshot's names hold).
type facet struct {
	tags     []string // sorted, normalised (setlist.NormalizeTags)
	released int64    // unix seconds of the release day; 0: unknown
}

func (c *catalogState) isHidden(song setlist.SongID) bool {
	if c == nil || len(c.hidden) == 0 {
		return false
	}
	_, ok := c.hidden[song]
	return ok
}

// hiddenLen is the number of songs hidden in c (0 for nil).
func (c *catalogState) hiddenLen() int {
	if c == nil {
		return 0
	}
	return len(c.hidden)
}

// HiddenCount is the number of songs hidden now (for metrics and tests).
func (s *Service) HiddenCount() int {
	if c := s.cat.Load(); c != nil {
		return len(c.hidden)
	}
	return 0
}

// CatalogSeq is the catalog change sequence this replica applies (0 before
// the first load).
func (s *Service) CatalogSeq() int64 {
	if c := s.cat.Load(); c != nil {
		return c.seq
	}
	return 0
}

func facetOf(cs setlist.CatalogSong) facet {
	f := facet{tags: cs.Tags}
	if cs.Released != nil {
		f.released = cs.Released.Unix()
	}
	return f
}

// reloadCatalog reads the hidden set and the metadata of every song of the
// loaded versions and swaps them in, then drops the near cache: every
// answer it holds was filtered by the old hidden set. The swap comes before
// the drop, and a fill begun before the drop is refused (the near cache's
// generations), so no answer computed with the old set is kept.
func (s *Service) reloadCatalog(ctx context.Context) error {
	s.catMu.Lock()
	defer s.catMu.Unlock()
	pctx, cancel := context.WithTimeout(ctx, 10*s.cfg.PostgresTimeout)
	defer cancel()
	start := time.Now()
	seq, hidden, err := s.catalog.HiddenSongs(pctx)
	if err != nil {
		s.metrics.StoreError("postgres", "hidden_songs")
		return fmt.Errorf("read the hidden songs: %w", err)
	}
	old := s.cat.Load()
	ids := s.loadedSongs(old)
	songs, err := s.catalog.CatalogSongs(pctx, ids)
	if err != nil {
		s.metrics.StoreError("postgres", "catalog_songs")
		return fmt.Errorf("read the catalog's metadata: %w", err)
	}
	next := &catalogState{seq: seq, hidden: make(map[setlist.SongID]struct{}, len(hidden)), facets: make(map[setlist.SongID]facet, len(songs)), read: true}
	for _, id := range hidden {
		next.hidden[id] = struct{}{}
	}
	for id, cs := range songs {
		next.facets[id] = facetOf(cs)
	}
	s.cat.Store(next)
	s.near.clear()
	s.metrics.NearCacheDrops.WithLabelValues("catalog").Inc()
	s.metrics.HiddenSongs.Set(float64(len(hidden)))
	s.metrics.CatalogSeq.Set(float64(seq))
	if old == nil || old.seq != seq {
		s.log.Info("catalog applied", "seq", seq, "hidden", len(hidden), "took", time.Since(start))
	}
	return nil
}

// loadedSongs is every song whose metadata filters may need: the loaded
// versions' catalogs and whatever old holds already.
func (s *Service) loadedSongs(old *catalogState) []setlist.SongID {
	set := map[setlist.SongID]struct{}{}
	if old != nil {
		for id := range old.facets {
			set[id] = struct{}{}
		}
	}
	if cur := s.holder.current(); cur != nil {
		for _, id := range cur.Published.Catalog.Songs() {
			set[id] = struct{}{}
		}
	}
	if ex := s.holder.exp.Load(); ex != nil && ex.challenger != nil {
		for _, id := range ex.challenger.Published.Catalog.Songs() {
			set[id] = struct{}{}
		}
	}
	return slices.Collect(maps.Keys(set))
}

// addFacets merges a newly loaded version's metadata into the catalog
// state (the hidden set stays: it does not depend on the version).
func (s *Service) addFacets(songs map[setlist.SongID]setlist.CatalogSong) {
	s.catMu.Lock()
	defer s.catMu.Unlock()
	old := s.cat.Load()
	next := &catalogState{facets: make(map[setlist.SongID]facet, len(songs))}
	if old != nil {
		next.seq, next.hidden, next.read = old.seq, old.hidden, old.read
		maps.Copy(next.facets, old.facets)
	}
	for id, cs := range songs {
		next.facets[id] = facetOf(cs)
	}
	if !next.read {
		// Metadata read now may be newer than the hidden set read later
		// by reloadCatalog, so it is used only until that first read.
		hidden := maps.Clone(next.hidden)
		for id, cs := range songs {
			if !cs.Available {
				if hidden == nil {
					hidden = map[setlist.SongID]struct{}{}
				}
				hidden[id] = struct{}{}
			}
		}
		next.hidden = hidden
	}
	s.cat.Store(next)
}

// checkCatalog reloads the catalog when Redis announces a newer sequence
// than the one applied: the safety net for a missed "catalog SEQ" message.
func (s *Service) checkCatalog(ctx context.Context) error {
	cur := s.cat.Load()
	rctx, cancel := callContext(ctx, s.cfg.RedisTimeout)
	seq, err := s.keys.CatalogSeq(rctx)
	cancel()
	if err != nil {
		s.metrics.StoreError("redis", "catalog_seq")
		return fmt.Errorf("check the catalog sequence: %w", err)
	}
	if cur != nil && seq <= cur.seq {
		return nil
	}
	return s.reloadCatalog(ctx)
}

// Filter is a request's business rules (GET …/recommendations and
// …/similar): every song of the answer passes all of them. The zero Filter
// passes everything but hidden songs, which no answer ever holds.
type Filter struct {
	ExcludeArtists []string         // artists left out (compared case-insensitively)
	ExcludeSongs   []setlist.SongID // songs left out
	Tags           []string         // if any: only songs carrying at least one
	ExcludeTags    []string         // songs carrying any of these left out
	MaxPerArtist   int              // at most this many songs of one artist (0: no limit)
	ReleasedAfter  *setlist.Date    // only songs released after this day (unknown release days fail)
}

// Active reports whether f restricts anything.
func (f *Filter) Active() bool {
	return f != nil && (len(f.ExcludeArtists) > 0 || len(f.ExcludeSongs) > 0 || len(f.Tags) > 0 ||
		len(f.ExcludeTags) > 0 || f.MaxPerArtist > 0 || f.ReleasedAfter != nil)
}

// sieve applies the hidden set and one request's filter to lists of one
// snapshot. A sieve is used by one request only (it counts artists).
type sieve struct {
	snap      *Snapshot
	cat       *catalogState
	f         *Filter // nil: hidden songs only
	artists   map[string]bool
	songs     map[setlist.SongID]bool
	after     int64
	perArtist map[string]int
}

func newSieve(snap *Snapshot, cat *catalogState, f *Filter) *sieve {
	sv := &sieve{snap: snap, cat: cat}
	if !f.Active() {
		return sv
	}
	sv.f = f
	if len(f.ExcludeArtists) > 0 {
		sv.artists = make(map[string]bool, len(f.ExcludeArtists))
		for _, a := range f.ExcludeArtists {
			sv.artists[strings.ToLower(a)] = true
		}
	}
	if len(f.ExcludeSongs) > 0 {
		sv.songs = make(map[setlist.SongID]bool, len(f.ExcludeSongs))
		for _, id := range f.ExcludeSongs {
			sv.songs[id] = true
		}
	}
	if f.ReleasedAfter != nil {
		sv.after = f.ReleasedAfter.Unix()
	}
	return sv
}

// trivial reports whether the sieve lets every song through (nothing
// hidden, no filter): the batch hit's fast path.
func (sv *sieve) trivial() bool {
	return sv.f == nil && (sv.cat == nil || len(sv.cat.hidden) == 0)
}

// passes reports whether song passes the hidden set and every rule but
// MaxPerArtist (which depends on what came before it in the list).
func (sv *sieve) passes(song setlist.SongID) bool {
	if sv.cat.isHidden(song) {
		return false
	}
	f := sv.f
	if f == nil {
		return true
	}
	if sv.songs[song] {
		return false
	}
	if sv.artists != nil {
		if name, ok := sv.snap.names[song]; ok && sv.artists[strings.ToLower(name.Artist)] {
			return false
		}
	}
	if len(f.Tags) > 0 || len(f.ExcludeTags) > 0 || f.ReleasedAfter != nil {
		var fc facet
		if sv.cat != nil {
			fc = sv.cat.facets[song]
		}
		if len(f.Tags) > 0 && !anyTag(fc.tags, f.Tags) {
			return false
		}
		if len(f.ExcludeTags) > 0 && anyTag(fc.tags, f.ExcludeTags) {
			return false
		}
		if f.ReleasedAfter != nil && (fc.released == 0 || fc.released <= sv.after) {
			return false
		}
	}
	return true
}

func anyTag(have, want []string) bool {
	for _, w := range want {
		if slices.Contains(have, w) {
			return true
		}
	}
	return false
}

// admit reports whether song goes into the answer being built: it passes
// and its artist has fewer than MaxPerArtist songs in it so far (counted
// when admitted, in list order).
func (sv *sieve) admit(song setlist.SongID) bool {
	if !sv.passes(song) {
		return false
	}
	if sv.f == nil || sv.f.MaxPerArtist <= 0 {
		return true
	}
	a := strings.ToLower(sv.snap.names[song].Artist)
	if sv.perArtist == nil {
		sv.perArtist = make(map[string]int)
	}
	if sv.perArtist[a] >= sv.f.MaxPerArtist {
		return false
	}
	sv.perArtist[a]++
	return true
}

// take returns the first n items of list that pass, best first, with
// MaxPerArtist applied in list order and a "because" naming a hidden song
// dropped; ok is false when fewer than n passed.
func (sv *sieve) take(list []model.Explained, n int) (out []model.Explained, ok bool) {
	if sv.trivial() {
		if len(list) < n {
			return list, false
		}
		return list[:n], true
	}
	out = make([]model.Explained, 0, n)
	for _, it := range list {
		if len(out) == n {
			break
		}
		if !sv.admit(it.Song) {
			continue
		}
		if it.Because != 0 && sv.cat.isHidden(it.Because) {
			it.Because = 0
		}
		out = append(out, it)
	}
	clear(sv.perArtist)
	return out, len(out) == n
}

// takeRecs is take over a batch list (which has no "because"): only the
// songs taken are converted, so a deep stored list costs no copy.
func (sv *sieve) takeRecs(list []model.Rec, n int) ([]model.Explained, bool) {
	if sv.trivial() {
		if len(list) < n {
			return nil, false
		}
		items := make([]model.Explained, n)
		for i, r := range list[:n] {
			items[i].Rec = r
		}
		return items, true
	}
	out := make([]model.Explained, 0, n)
	for _, r := range list {
		if len(out) == n {
			break
		}
		if sv.admit(r.Song) {
			out = append(out, model.Explained{Rec: r})
		}
	}
	clear(sv.perArtist)
	return out, len(out) == n
}

// excluded is every song of the snapshot's catalog that fails the sieve
// (MaxPerArtist aside): what a fold-in or similar-songs scoring must leave
// out so that the allowed catalog is what gets ranked.
func (sv *sieve) excluded() []setlist.SongID {
	if sv.trivial() {
		return nil
	}
	if sv.f == nil {
		// Hidden songs only: the hidden set is small, the catalog is not.
		out := make([]setlist.SongID, 0, len(sv.cat.hidden))
		for id := range sv.cat.hidden {
			out = append(out, id)
		}
		return out
	}
	var out []setlist.SongID
	for _, id := range sv.snap.Published.Catalog.Songs() {
		if !sv.passes(id) {
			out = append(out, id)
		}
	}
	return out
}
