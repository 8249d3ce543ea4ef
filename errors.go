package setlist

import "errors"

// Sentinel errors that adapters translate their own errors into, so that the
// HTTP edge can map them to status codes in one place (errors.Is).
var (
	// ErrNotFound means the named user, song, reaction or model does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means the write would duplicate something that must be unique.
	ErrConflict = errors.New("already exists")
	// ErrInvalid means the caller's input is malformed; wrap it with the reason.
	ErrInvalid = errors.New("invalid input")
	// ErrUnavailable means a backing store cannot be reached right now; the
	// caller may retry later.
	ErrUnavailable = errors.New("unavailable")
)
