package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/artifact"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/model"
	"github.com/setlist/setlist/internal/registry"
	"github.com/setlist/setlist/internal/store"
)

// RestoreRegistry is the part of the run registry a restore reads and
// updates.
type RestoreRegistry interface {
	LastPublished(ctx context.Context) (store.Run, error)
	registry.RollbackRecorder
}

// RestoreDeps are a restore's collaborators.
type RestoreDeps struct {
	Artifacts artifact.Loader
	Registry  RestoreRegistry
	Publisher *keyspace.Publisher
	Logger    *slog.Logger
	// Progress, if set, is told how many user lists were written.
	Progress func(written int)
}

// How a restore put the version back.
const (
	RestoredAlready     = "already served" // it was current and its keys are there
	RestoredSwapped     = "swapped"        // it was previous with its keys: the pointers were swapped
	RestoredRepublished = "republished"    // its keys were rebuilt from the artifact
)

// RestoreResult says what a restore did.
type RestoreResult struct {
	Version, Previous model.Version
	How               string
	Report            keyspace.Report
	// Seconds per step of a republish: load (read, verify and decode the
	// artifact), lists (top-K of every user), publish (Redis), total.
	Timings map[string]float64
	// RolledBack is the run the registry marked rolled back (0: none, the
	// version was already the registry's published one).
	RolledBack int64
}

// Restore makes version v the one readers use: nothing when it already
// is, Rollback (the pointer swap) when it is the previous version with its
// keys in Redis, and otherwise a republish of its stored artifact (every
// user's list recomputed from the stored factors, then the usual publish).
// The registry follows: when v is not its published run, that run is
// marked rolled back with reason and v published. The caller holds the
// training lock, as for any publish.
func Restore(ctx context.Context, d RestoreDeps, v model.Version, threads int, reason string) (RestoreResult, error) {
	res := RestoreResult{Version: v, Timings: map[string]float64{}}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	pub := d.Publisher
	ptr, err := pub.Pointers(ctx)
	if err != nil {
		return res, err
	}
	hasKeys := func(x model.Version) (bool, error) {
		_, err := pub.Meta(ctx, x)
		if errors.Is(err, setlist.ErrNotFound) {
			return false, nil
		}
		return err == nil, err
	}
	start := time.Now()
	switch {
	case v == ptr.Current:
		ok, err := hasKeys(v)
		if err != nil {
			return res, err
		}
		if !ok {
			return res, fmt.Errorf("the pointer names version %d but its meta key is gone (a partial loss of Redis data): "+
				"delete the current and previous pointer keys, then republish: %w", v, setlist.ErrConflict)
		}
		res.How, res.Previous = RestoredAlready, ptr.Previous
		return res, nil
	case v == ptr.Previous:
		ok, err := hasKeys(v)
		if err != nil {
			return res, err
		}
		if ok {
			p, err := registry.Rollback(ctx, pub, d.Registry, reason)
			res.How, res.Previous, res.RolledBack = RestoredSwapped, p.Previous, int64(p.Previous)
			return res, err
		}
		fallthrough
	default:
		t := time.Now()
		a, err := artifact.Load(ctx, d.Artifacts, v)
		if err != nil {
			return res, fmt.Errorf("restore version %d: %w", v, err)
		}
		res.Timings["load"] = time.Since(t).Seconds()
		t = time.Now()
		lists, err := a.Lists(ctx, threads)
		if err != nil {
			return res, err
		}
		res.Timings["lists"] = time.Since(t).Seconds()
		t = time.Now()
		rep, err := pub.Publish(ctx, v, a.Release(lists, d.Progress))
		res.Report = rep
		if err != nil {
			return res, fmt.Errorf("restore version %d: %w", v, err)
		}
		res.Timings["publish"] = time.Since(t).Seconds()
		res.How, res.Previous = RestoredRepublished, rep.Previous
	}
	res.Timings["total"] = time.Since(start).Seconds()
	d.Logger.Info("version restored", "version", v, "how", res.How, "seconds", res.Timings["total"])
	if c, err := pub.Cleanup(ctx); err != nil {
		d.Logger.Warn("restored, but retiring old versions failed; the next publish retries", "err", err)
	} else if len(c.Retired)+len(c.Deleted) > 0 {
		d.Logger.Info("retired old versions", "retired", c.Retired, "deleted", c.Deleted)
	}
	last, err := d.Registry.LastPublished(ctx)
	switch {
	case errors.Is(err, setlist.ErrNotFound):
		return res, nil
	case err != nil:
		return res, fmt.Errorf("readers now use version %d, but the registry could not be read: %w", v, err)
	case last.ID == int64(v):
		return res, nil
	}
	if err := d.Registry.RecordRollback(ctx, last.ID, int64(v), reason); err != nil {
		return res, &registry.UnrecordedRollbackError{Pointers: keyspace.Pointers{Current: v, Previous: res.Previous}, Err: err}
	}
	res.RolledBack = last.ID
	return res, nil
}
