package recs

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/batch/experiment"
	"github.com/setlist/setlist/batch/model"
	"github.com/setlist/setlist/batch/store"
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
	r, ok, err := s.store.Experiment(rctx)
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
	}
	s.holder.exp.Store(&expState{routing: r, challenger: challenger})
	s.near.clear()
	s.metrics.SetExperiment(r, true)
	s.log.Info("experiment running", "experiment", r.ID, "challenger", r.Challenger, "share", r.Share, "control", cur.Version)
	return nil
}

// exposures collects, per experiment arm, the users answered since the
// last flush. It is sharded by user so concurrent requests rarely share a
// lock; a user answered many times between flushes is one entry.
type exposures struct {
	shards [16]struct {
		mu sync.Mutex
		m  map[setlist.UserID]store.ExperimentExposure
	}
}

func (e *exposures) reset() {
	for i := range e.shards {
		e.shards[i].m = map[setlist.UserID]store.ExperimentExposure{}
	}
}

// add records u's answer in arm; the first one since the last flush keeps
// its time, which is when a like starts to count as a conversion.
func (e *exposures) add(u setlist.UserID, arm setlist.Arm) {
	var h uint32 = 2166136261
	for i := 0; i < len(u); i++ {
		h = (h ^ uint32(u[i])) * 16777619
	}
	sh := &e.shards[h%uint32(len(e.shards))]
	sh.mu.Lock()
	if _, ok := sh.m[u]; !ok {
		sh.m[u] = store.ExperimentExposure{User: u, Arm: arm, At: time.Now()}
	}
	sh.mu.Unlock()
}

// take empties the collector and returns what it held.
func (e *exposures) take() []store.ExperimentExposure {
	var out []store.ExperimentExposure
	for i := range e.shards {
		sh := &e.shards[i]
		sh.mu.Lock()
		m := sh.m
		if len(m) > 0 {
			sh.m = make(map[setlist.UserID]store.ExperimentExposure, len(m))
		}
		sh.mu.Unlock()
		for _, x := range m {
			out = append(out, x)
		}
	}
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

// FlushExposures writes pending exposures now (tests, and shutdown).
func (s *Service) FlushExposures(ctx context.Context) { s.flushExposures(ctx) }
