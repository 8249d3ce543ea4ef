package recs

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/experiment"
	"github.com/setlist/setlist/internal/model"
	"github.com/setlist/setlist/internal/store"
)

// expState is a running experiment as serve routes it: the routing and the
// challenger's snapshot, swapped together so a request sees both or neither.
type expState struct {
	routing    experiment.Routing
	challenger *Snapshot
}

// Experiment is the running experiment's routing and whether one runs (and
// its challenger is loaded), for the API and the page.
func (s *Service) Experiment() (experiment.Routing, bool) {
	if ex := s.holder.exp.Load(); ex != nil {
		return ex.routing, true
	}
	return experiment.Routing{}, false
}

// refreshExperiment follows the routing in the model store: it loads the
// challenger version when an experiment starts (or the challenger changes)
// and drops it when none runs. The near cache is cleared on every change,
// because cached answers name their arm. The caller holds holder.mu.
func (s *Service) refreshExperiment(ctx context.Context, cur *Snapshot) error {
	rctx, cancel := context.WithTimeout(ctx, s.cfg.RedisTimeout)
	r, ok, err := s.keys.Experiment(rctx)
	cancel()
	if err != nil {
		s.metrics.StoreError("redis", "experiment")
		return fmt.Errorf("refresh experiment: %w", err) // keep routing as before
	}
	old := s.holder.exp.Load()
	if !ok {
		if old != nil {
			s.holder.exp.Store(nil)
			s.near.clear()
			s.metrics.SetExperiment(experiment.Routing{}, false)
			s.log.Info("experiment ended: serving every user the current version", "experiment", old.routing.ID)
		}
		return nil
	}
	if old != nil && old.routing == r {
		return nil
	}
	var challenger *Snapshot
	switch {
	case int64(cur.Version) == r.Challenger:
		challenger = cur // promoted: the pointer moved before the routing was removed
	case old != nil && int64(old.challenger.Version) == r.Challenger:
		challenger = old.challenger
	default:
		challenger, err = s.load(ctx, model.Version(r.Challenger))
		if err != nil {
			s.metrics.ModelLoads.WithLabelValues("error").Inc()
			return fmt.Errorf("load challenger version %d of experiment %d: %w", r.Challenger, r.ID, err)
		}
		s.metrics.ModelLoads.WithLabelValues("ok").Inc()
		s.addFacets(challenger.catalog)
		challenger.catalog = nil
	}
	if old == nil || old.routing.ID != r.ID {
		s.exposed.forget()
	}
	s.holder.exp.Store(&expState{routing: r, challenger: challenger})
	s.near.clear()
	s.metrics.SetExperiment(r, true)
	s.log.Info("experiment running", "experiment", r.ID, "challenger", r.Challenger, "share", r.Share, "control", cur.Version)
	return nil
}

// exposures collects, per experiment arm, the users answered since the
// last flush. Each request pays two atomic loads in the common case: a
// table of recently recorded users' hashes says the user is already
// pending or recorded, and only a user not in it takes the lock to be
// appended. A collision evicts a user, who is then recorded again on
// their next answer: duplicates cost the flush a row the database ignores
// (one exposure per user and experiment), never a missed user.
type exposures struct {
	seen    [1 << 17]atomic.Uint64
	mu      sync.Mutex
	pending []store.ExperimentExposure
}

// forget empties the table of recorded users (a new experiment records
// everyone again).
func (e *exposures) forget() {
	for i := range e.seen {
		e.seen[i].Store(0)
	}
}

// add records u's answer in arm at time at (zero: now); the first one
// since the last flush keeps its time, which is when a like starts to
// count as a conversion. The exposure loop calls it, off the request path.
func (e *exposures) add(u setlist.UserID, arm setlist.Arm, at time.Time) {
	h := uint64(14695981039346656037)
	for i := 0; i < len(u); i++ {
		h = (h ^ uint64(u[i])) * 1099511628211
	}
	// FNV's last multiply leaves ids that differ in their last characters
	// close in the low bits: mix before taking a slot from them.
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h |= 1 // never the empty slot's 0
	// Two candidate slots (two-choice hashing): a user is evicted only when
	// both are taken by others, so evictions stay rare at 10^5 users.
	n := uint64(len(e.seen))
	a, b := &e.seen[h%n], &e.seen[(h>>32)%n]
	va, vb := a.Load(), b.Load()
	if va == h || vb == h {
		return
	}
	if va == 0 || (vb != 0 && h&2 == 0) {
		a.Store(h)
	} else {
		b.Store(h)
	}
	if at.IsZero() {
		at = time.Now()
	}
	e.mu.Lock()
	e.pending = append(e.pending, store.ExperimentExposure{User: u, Arm: arm, At: at})
	e.mu.Unlock()
}

// take empties the collector and returns what it held.
func (e *exposures) take() []store.ExperimentExposure {
	e.mu.Lock()
	out := e.pending
	e.pending = nil
	e.mu.Unlock()
	return out
}

// flushExposures writes the users answered since the last flush to the
// system of record under the running experiment. A failure is counted and
// the users are lost for the readout (they are recorded again on their next
// answer): the readout undercounts rather than serving slows down.
func (s *Service) flushExposures(ctx context.Context) {
	exps := s.exposed.take()
	if len(exps) == 0 {
		return
	}
	r, ok := s.Experiment()
	if !ok {
		return // ended meanwhile: these answers belong to no running experiment
	}
	pctx, cancel := context.WithTimeout(ctx, s.cfg.PostgresTimeout)
	defer cancel()
	if err := s.history.RecordExposures(pctx, r.ID, exps); err != nil {
		s.metrics.StoreError("postgres", "record_exposures")
		s.log.Warn("experiment exposures not recorded; the readout undercounts them", "experiment", r.ID, "users", len(exps), "err", err)
	}
}

// FlushExposures writes pending exposures now (tests, and shutdown): the
// exposure loop first hands on the users it has buffered.
func (s *Service) FlushExposures(ctx context.Context) {
	if x := s.exposure; x != nil {
		done := make(chan struct{})
		select {
		case x.flush <- done:
			select {
			case <-done:
			case <-ctx.Done():
			}
		case <-ctx.Done():
		}
	}
	s.flushExposures(ctx)
}
