package pipeline

import "fmt"

// Exit codes a command returns for the outcomes scripts and CronJobs tell
// apart (1 is any other failure).
const (
	ExitRejected = 3 // the quality gate rejected the model; nothing published
	ExitLocked   = 4 // another run holds the training lock
)

// RejectedError means the quality gate refused the model. The run is
// recorded as rejected and the pointer did not move.
type RejectedError struct {
	RunID  int64
	Reason string
}

func (e *RejectedError) Error() string {
	if e.RunID == 0 {
		return "model rejected by the quality gate (dry run): " + e.Reason
	}
	return fmt.Sprintf("run %d rejected by the quality gate, not published: %s (use --force to publish anyway)", e.RunID, e.Reason)
}

// ExitCode makes the batch exit with ExitRejected.
func (e *RejectedError) ExitCode() int { return ExitRejected }

// LockedError means another run holds the training lock.
type LockedError struct{ Err error }

func (e *LockedError) Error() string { return e.Err.Error() + " (use --wait-lock to wait for it)" }
func (e *LockedError) Unwrap() error { return e.Err }

// ExitCode makes the batch exit with ExitLocked.
func (e *LockedError) ExitCode() int { return ExitLocked }
