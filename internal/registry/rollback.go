// Package registry holds what the model registry's records mean beyond the
// training that writes them: the summary of the search a run keeps
// (TuningSummary), trials as people read them (ViewTrials), and a rollback
// that moves the readers' pointer and records it. Both binaries use it, and
// it imports no training code, so serve can show a run's search and roll a
// version back without linking the pipeline.
package registry

import (
	"context"
	"fmt"

	"github.com/setlist/setlist/internal/keyspace"
)

// PointerSwapper moves the readers' pointer back to the previous version
// (keyspace.Publisher).
type PointerSwapper interface {
	Rollback(ctx context.Context) (keyspace.Pointers, error)
}

// RollbackRecorder is the run registry's side of a rollback.
type RollbackRecorder interface {
	RecordRollback(ctx context.Context, rolledBack, restored int64, reason string) error
}

// UnrecordedRollbackError is Rollback's error when the pointer moved but
// the registry could not record it. The rollback happened: callers report
// it as done rather than as a failure to retry, because a second rollback
// rolls forward again.
type UnrecordedRollbackError struct {
	Pointers keyspace.Pointers
	Err      error
}

func (e *UnrecordedRollbackError) Error() string {
	return fmt.Sprintf("readers now use version %d, but the run registry was not updated: %v", e.Pointers.Current, e.Err)
}

func (e *UnrecordedRollbackError) Unwrap() error { return e.Err }

// Rollback serves the previous model version again, for `batch rollback`
// and serve's POST /v1/admin/rollback alike. The pointer moves first, so
// readers switch even if the registry is down; the registry then records
// which run was rolled back and which restored (an *UnrecordedRollbackError
// if it cannot). It returns the pointers as they now are.
func Rollback(ctx context.Context, pub PointerSwapper, reg RollbackRecorder, reason string) (keyspace.Pointers, error) {
	ptr, err := pub.Rollback(ctx)
	if err != nil {
		return keyspace.Pointers{}, err
	}
	if err := reg.RecordRollback(ctx, int64(ptr.Previous), int64(ptr.Current), reason); err != nil {
		return ptr, &UnrecordedRollbackError{Pointers: ptr, Err: err}
	}
	return ptr, nil
}
