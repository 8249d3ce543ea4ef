package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/setlist/setlist"
)

// lockFile is the training lock's file beside the database.
const lockFile = "train.lock"

// lockPoll is how often a waiting LockTraining retries.
const lockPoll = 100 * time.Millisecond

// LockTraining takes the training lock: an exclusive, non-blocking flock(2)
// on train.lock in the data directory (not a lock row: the kernel drops an
// flock when its holder dies, so a killed run can never leave the lock held,
// which a row could). Locks on separate opens of the file exclude each other
// within one process too. The holder writes "pid N on HOST since T" into the
// file so a second run can say who holds it. With wait false a held lock
// returns ErrConflict at once; with wait true onWait is called with the
// holder and LockTraining polls until the lock is free or ctx ends.
func (db *DB) LockTraining(ctx context.Context, wait bool, onWait func(holder string)) (release func(), err error) {
	path := filepath.Join(db.dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("training lock: %w", err)
	}
	told := false
	for {
		ok, err := tryLock(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("training lock %s: %w", path, err)
		}
		if ok {
			break
		}
		holder := readHolder(path)
		if !wait {
			f.Close()
			return nil, fmt.Errorf("another batch train holds the lock (%s): %w", holder, setlist.ErrConflict)
		}
		if !told && onWait != nil {
			onWait(holder)
			told = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("training lock: wait for %s: %w", holder, ctx.Err())
		case <-time.After(lockPoll):
		}
	}
	// Holding the lock proves no run is alive, so a row still "running"
	// belongs to a killed process: mark it failed, as the postgres backend
	// does. Best effort: a failure here must not stop training.
	_ = db.writeTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE model_runs SET status = 'failed', finished_at = ?,
			reason = 'interrupted: its process ended without recording an outcome (found by the next run)'
			WHERE status = 'running'`, micros(time.Now()))
		return err
	})
	host, _ := os.Hostname()
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(fmt.Sprintf("setlist batch train pid %d on %s since %s", os.Getpid(), host, time.Now().Format(time.RFC3339))), 0)
	return func() {
		_ = f.Truncate(0)
		_ = unlock(f)
		_ = f.Close()
	}, nil
}

func readHolder(path string) string {
	b, err := os.ReadFile(path)
	if s := strings.TrimSpace(string(b)); err == nil && s != "" {
		return s
	}
	return "holder unknown"
}
