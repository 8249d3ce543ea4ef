package als

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/setlist/setlist/internal/feedback"
	"github.com/setlist/setlist/internal/realdata"
)

// The shared benchmark data is optional: nothing outside these gated tests
// and benchmarks may depend on it.
func dataPath() string {
	if p := os.Getenv("SETLIST_DATA"); p != "" {
		return p
	}
	return filepath.FromSlash("../../../shared/data/spotify-playlists/interactions.csv.gz")
}

var (
	realOnce sync.Once
	realData *feedback.CSR
	realErr  error
)

// loadReal reads user_id,artist,track,count into a users × songs matrix,
// where a song is the (artist, track) pair. It skips the test if absent.
func loadReal(tb testing.TB) *feedback.CSR {
	tb.Helper()
	realOnce.Do(func() { realData, realErr = readInteractions(dataPath()) })
	if errors.Is(realErr, os.ErrNotExist) {
		tb.Skipf("benchmark data not found at %s (set SETLIST_DATA to run)", dataPath())
	}
	if realErr != nil {
		tb.Fatalf("load %s: %v", dataPath(), realErr)
	}
	return realData
}

func readInteractions(path string) (*feedback.CSR, error) {
	t, err := realdata.Read(path)
	if err != nil {
		return nil, err
	}
	entries := make([]feedback.Entry, len(t.Rows))
	for e := range entries {
		entries[e] = feedback.Entry{Row: t.Rows[e], Col: t.Cols[e], Value: t.Vals[e]}
	}
	return feedback.NewCSR(t.Users, t.Songs, entries), nil
}
