//go:build !unix

package sqlite

import (
	"os"
	"sync"
)

// Without flock the lock only excludes runs within this process: the
// playground trains in its own process, and production uses PostgreSQL's
// advisory lock.
var (
	heldMu sync.Mutex
	held   = map[string]*os.File{}
)

func tryLock(f *os.File) (bool, error) {
	heldMu.Lock()
	defer heldMu.Unlock()
	if held[f.Name()] != nil {
		return false, nil
	}
	held[f.Name()] = f
	return true, nil
}

func unlock(f *os.File) error {
	heldMu.Lock()
	defer heldMu.Unlock()
	if held[f.Name()] == f {
		delete(held, f.Name())
	}
	return nil
}
