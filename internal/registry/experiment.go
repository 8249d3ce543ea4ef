package registry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/experiment"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/store"
)

// ExperimentRecorder is the registry's side of starting and ending an A/B
// experiment (both backends' DB).
type ExperimentRecorder interface {
	StartExperiment(ctx context.Context, n store.NewExperiment) (store.Experiment, error)
	RunningExperiment(ctx context.Context) (store.Experiment, error)
	EndExperiment(ctx context.Context, id int64, status store.ExperimentStatus) (store.Experiment, error)
}

// ExperimentRouter is the key space's side: what serve routes users by
// (keyspace.Publisher).
type ExperimentRouter interface {
	Pointers(ctx context.Context) (keyspace.Pointers, error)
	CheckChallenger(ctx context.Context, v keyspace.Version) error
	StartExperiment(ctx context.Context, r experiment.Routing) error
	EndExperiment(ctx context.Context) error
}

// StartExperiment records n (its control the current version, a fresh
// salt) and then makes serve route by it, for `batch experiment start` and
// serve's POST /v1/admin/experiments alike. The database's partial unique
// index is the one-at-a-time rule; if Redis refuses or fails, the record
// is ended again so the two agree.
func StartExperiment(ctx context.Context, db ExperimentRecorder, pub ExperimentRouter, n store.NewExperiment) (store.Experiment, error) {
	if running, err := db.RunningExperiment(ctx); err == nil {
		return store.Experiment{}, fmt.Errorf("experiment %d (%q, challenger version %d) is running: stop or promote it first: %w",
			running.ID, running.Name, running.Challenger, setlist.ErrConflict)
	} else if !errors.Is(err, setlist.ErrNotFound) {
		return store.Experiment{}, err
	}
	ptr, err := pub.Pointers(ctx)
	if err != nil {
		return store.Experiment{}, err
	}
	if ptr.Current == 0 {
		return store.Experiment{}, fmt.Errorf("no model is published: nothing to compare against: %w", setlist.ErrNotFound)
	}
	if err := pub.CheckChallenger(ctx, keyspace.Version(n.Challenger)); err != nil {
		return store.Experiment{}, fmt.Errorf("challenger version %d: %w", n.Challenger, err)
	}
	n.Control = int64(ptr.Current)
	if n.Name == "" {
		n.Name = fmt.Sprintf("v%d vs v%d", n.Control, n.Challenger)
	}
	var salt [8]byte
	_, _ = rand.Read(salt[:])
	n.Salt = hex.EncodeToString(salt[:])
	e, err := db.StartExperiment(ctx, n)
	if err != nil {
		return store.Experiment{}, err
	}
	if err := pub.StartExperiment(ctx, e.Routing()); err != nil {
		if _, uerr := db.EndExperiment(context.WithoutCancel(ctx), e.ID, store.ExperimentStopped); uerr != nil {
			err = errors.Join(err, fmt.Errorf("and recording it as stopped failed (run batch experiment stop): %w", uerr))
		}
		return store.Experiment{}, fmt.Errorf("start experiment %d in Redis: %w", e.ID, err)
	}
	return e, nil
}

// StopExperiment ends the running experiment: every user is served the
// current version again. Redis goes first, so serving stops even if the
// registry is down, and a stale routing left by a failed start is cleared.
// stopped is false when no experiment was running.
func StopExperiment(ctx context.Context, db ExperimentRecorder, pub ExperimentRouter) (e store.Experiment, stopped bool, err error) {
	if err := pub.EndExperiment(ctx); err != nil {
		return e, false, err
	}
	e, err = db.RunningExperiment(ctx)
	if errors.Is(err, setlist.ErrNotFound) {
		return e, false, nil
	}
	if err != nil {
		return e, false, err
	}
	if e, err = db.EndExperiment(ctx, e.ID, store.ExperimentStopped); err != nil {
		return e, false, err
	}
	return e, true, nil
}
