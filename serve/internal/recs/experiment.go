package recs

import (
	"context"
	"fmt"

	"github.com/setlist/setlist/internal/experiment"
	"github.com/setlist/setlist/internal/model"
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
	s.holder.exp.Store(&expState{routing: r, challenger: challenger})
	s.near.clear()
	s.metrics.SetExperiment(r, true)
	s.log.Info("experiment running", "experiment", r.ID, "challenger", r.Challenger, "share", r.Share, "control", cur.Version)
	return nil
}
