package recs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/model"
)

// Snapshot is one loaded version: the shared model, and the names of its
// songs pre-rendered for answers. It is immutable; a request that took it
// keeps using it even after a newer one is swapped in.
type Snapshot struct {
	Version   model.Version
	Published *model.Published
	LoadedAt  time.Time
	songs     map[setlist.SongID][]byte // songJSON of every catalog song that still exists
	names     map[setlist.SongID]setlist.Song
	// snapshotSeq is Meta.SnapshotSeq (0 in versions from before it
	// existed, so every touched user is folded in): a user whose latest
	// reaction write is numbered above it has reactions the batch list lacks.
	snapshotSeq int64
	// snapshotNanos is Meta.SnapshotAt in unix nanoseconds (0 when unset),
	// for users with no touched mark (see keyspace.BatchFresh, internal/keyspace/fresh.go).
	snapshotNanos int64
	// similar caches the similar songs of this snapshot's songs
	// (similar.go).
	similar similarCache
	// catalog is the metadata read with the names, until the loader merges
	// it into the service's catalog state (then nil).
	catalog map[setlist.SongID]setlist.CatalogSong
}

// Song returns the name of a song of the catalog, if it still exists.
func (sn *Snapshot) Song(id setlist.SongID) (setlist.Song, bool) {
	song, ok := sn.names[id]
	return song, ok
}

type holder struct {
	snap atomic.Pointer[Snapshot]
	// exp is the running experiment with its challenger loaded (nil: none,
	// or its challenger could not be loaded yet).
	exp atomic.Pointer[expState]
	// pointerMissing is set while Redis names no version, so the loss is
	// logged once when noticed and once when it ends, not every poll.
	pointerMissing atomic.Bool
	mu             sync.Mutex    // serialises loads
	reload         chan struct{} // a nudge to check the pointer now
}

func (h *holder) current() *Snapshot { return h.snap.Load() }

// Refresh loads the version the pointer names if it is not the one in use,
// and swaps it in. Requests running meanwhile keep their snapshot; there is
// no moment without a model once one was loaded. It returns the version in
// use afterwards.
func (s *Service) Refresh(ctx context.Context) (model.Version, error) {
	s.holder.mu.Lock()
	defer s.holder.mu.Unlock()
	v, err := s.refreshCurrent(ctx)
	if cur := s.holder.current(); cur != nil {
		if xerr := s.refreshExperiment(ctx, cur); xerr != nil {
			err = errors.Join(err, xerr)
		}
	}
	return v, err
}

func (s *Service) refreshCurrent(ctx context.Context) (model.Version, error) {
	rctx, cancel := context.WithTimeout(ctx, s.cfg.RedisTimeout)
	v, err := s.keys.Current(rctx)
	cancel()
	old := s.holder.current()
	if err != nil {
		if !errors.Is(err, setlist.ErrNotFound) {
			s.metrics.StoreError("redis", "current")
		} else {
			s.metrics.ModelPointer.Set(0)
		}
		return versionOf(old), fmt.Errorf("refresh model: %w", err)
	}
	s.metrics.ModelPointer.Set(1)
	if s.holder.pointerMissing.Swap(false) {
		s.log.Info("Redis names a model version again", "version", v)
	}
	if old != nil && old.Version == v {
		// The same version, unless batch refresh added songs to it and
		// rewrote lists since it was loaded: then load it again (the
		// near cache may hold the old lists).
		rctx, cancel := context.WithTimeout(ctx, s.cfg.RedisTimeout)
		n, err := s.keys.Refreshes(rctx, v)
		cancel()
		if err != nil {
			s.metrics.StoreError("redis", "refreshes")
			return v, fmt.Errorf("refresh model: %w", err)
		}
		if n == old.Published.Refreshes {
			return v, nil
		}
	}
	snap, err := s.load(ctx, v)
	if err != nil {
		s.metrics.ModelLoads.WithLabelValues("error").Inc()
		return versionOf(old), fmt.Errorf("refresh model to version %d: %w", v, err)
	}
	// Metadata first: a request that takes the new snapshot finds its
	// songs' tags.
	s.addFacets(snap.catalog)
	snap.catalog = nil
	s.holder.snap.Store(snap)
	s.near.clear()
	s.metrics.ModelLoads.WithLabelValues("ok").Inc()
	s.metrics.NearCacheDrops.WithLabelValues("version").Inc()
	s.exportModel(snap)
	s.log.Info("serving model", "version", v, "previous", versionOf(old), "items", snap.Published.Catalog.Len(),
		"trained_at", snap.Published.Meta.TrainedAt, "refreshes", snap.Published.Refreshes)
	return v, nil
}

func versionOf(s *Snapshot) model.Version {
	if s == nil {
		return 0
	}
	return s.Version
}

// load reads version v (a larger timeout than a request's: the item side is
// megabytes) and names its songs.
func (s *Service) load(ctx context.Context, v model.Version) (*Snapshot, error) {
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	p, err := s.keys.Load(lctx, v)
	if err != nil {
		s.metrics.StoreError("redis", "load_model")
		return nil, err
	}
	ids := p.Catalog.Songs()
	// One read names the songs and gives the filters their metadata.
	songs, err := s.catalog.CatalogSongs(lctx, ids)
	if err != nil {
		s.metrics.StoreError("postgres", "catalog_songs")
		return nil, fmt.Errorf("name the catalog's songs: %w", err)
	}
	names := make(map[setlist.SongID]setlist.Song, len(songs))
	for id, cs := range songs {
		names[id] = cs.Song
	}
	snap := &Snapshot{Version: v, Published: p, LoadedAt: time.Now(), songs: make(map[setlist.SongID][]byte, len(names)), names: names, catalog: songs}
	snap.snapshotSeq = p.Meta.SnapshotSeq
	if !p.Meta.SnapshotAt.IsZero() {
		snap.snapshotNanos = p.Meta.SnapshotAt.UnixNano()
	}
	for id, song := range names {
		snap.songs[id] = songJSON(song)
	}
	return snap, nil
}

// exportModel sets the model gauges, replacing the previous model's metrics.
func (s *Service) exportModel(snap *Snapshot) {
	m := snap.Published.Meta
	s.metrics.ModelVersion.Set(float64(snap.Version))
	s.metrics.ModelTrained.Set(unixSeconds(m.TrainedAt))
	s.metrics.ModelSnapshot.Set(unixSeconds(m.SnapshotAt))
	s.metrics.ModelLoaded.Set(unixSeconds(snap.LoadedAt))
	s.metrics.ModelMetric.Reset()
	for name, v := range m.Metrics {
		s.metrics.ModelMetric.WithLabelValues(name).Set(v)
	}
}

func unixSeconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

// TrainedAt is when the current model was trained (zero before a load).
func (s *Service) TrainedAt() time.Time {
	if snap := s.holder.current(); snap != nil {
		return snap.Published.Meta.TrainedAt
	}
	return time.Time{}
}

// Run loads the current version and then follows the events channel and
// polls the pointer every PollInterval until ctx ends. Events give
// sub-second switches and invalidations; the poll is the safety net for a
// lost message. Failures are logged here (this is the edge of a background
// loop) and retried on the next tick.
func (s *Service) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.followEvents(ctx)
	}()
	s.reloadCatalogLogged(ctx)
	s.refreshLogged(ctx)
	tick := time.NewTicker(s.cfg.PollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-tick.C:
			if err := s.checkCatalog(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("catalog check failed; keeping the hidden set in use", "err", err)
			}
		case <-s.holder.reload:
		case <-s.catReload:
			s.reloadCatalogLogged(ctx)
			continue
		}
		s.refreshLogged(ctx)
	}
}

func (s *Service) reloadCatalogLogged(ctx context.Context) {
	if err := s.reloadCatalog(ctx); err != nil && ctx.Err() == nil {
		s.log.Error("catalog reload failed; keeping the hidden set in use, retrying on the next poll", "err", err)
	}
}

func (s *Service) refreshLogged(ctx context.Context) {
	if _, err := s.Refresh(ctx); err != nil && ctx.Err() == nil {
		if errors.Is(err, setlist.ErrNotFound) {
			if s.holder.pointerMissing.Swap(true) {
				return // said once already
			}
			if cur := s.holder.current(); cur != nil {
				s.log.Error("the model pointer is missing from Redis (did Redis lose its data?): keeping version "+
					"in memory, answering every user by fold-in or the popular list; run batch republish (docs/deploy.md#runbook-redis-lost)",
					"version", cur.Version, "err", err)
				return
			}
			s.log.Warn("no model in Redis: answering 503 until one is published; if Redis lost its data, "+
				"run batch republish (docs/deploy.md#runbook-redis-lost), else batch train", "err", err)
			return
		}
		s.log.Error("model refresh failed; keeping the model in use", "err", err)
	}
}

func (s *Service) followEvents(ctx context.Context) {
	subscribed := false
	on := func(ev keyspace.Event) {
		switch ev.Kind {
		case keyspace.EventVersion:
			s.metrics.Events.WithLabelValues("version").Inc()
			select {
			case s.holder.reload <- struct{}{}:
			default:
			}
		case keyspace.EventExperiment:
			s.metrics.Events.WithLabelValues("experiment").Inc()
			select {
			case s.holder.reload <- struct{}{}:
			default:
			}
		case keyspace.EventCatalog:
			s.metrics.Events.WithLabelValues("catalog").Inc()
			if ev.Seq > s.CatalogSeq() {
				select {
				case s.catReload <- struct{}{}:
				default:
				}
			}
		case keyspace.EventUser:
			s.metrics.Events.WithLabelValues("user").Inc()
			s.metrics.NearCacheDrops.WithLabelValues("user").Inc()
			s.epoch.Add(1)
			s.near.invalidate(ev.User)
		}
	}
	resub := func() {
		if subscribed {
			// Messages sent while the connection was down are lost: drop
			// everything that might have been invalidated by them.
			s.metrics.Events.WithLabelValues("resubscribe").Inc()
			s.metrics.NearCacheDrops.WithLabelValues("resubscribe").Inc()
			s.near.clear()
			select {
			case s.holder.reload <- struct{}{}:
			default:
			}
			select {
			case s.catReload <- struct{}{}:
			default:
			}
		}
		subscribed = true
		s.near.trust(true)
	}
	// Without the events channel another replica's reaction would go
	// unnoticed: the near cache is bypassed until it is back.
	lost := func(error) { s.near.trust(false) }
	for ctx.Err() == nil {
		err := s.keys.Events(ctx, on, resub, lost)
		s.near.trust(false)
		if ctx.Err() != nil {
			return
		}
		s.metrics.StoreError("redis", "subscribe")
		s.log.Error("events subscription failed; retrying", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}
