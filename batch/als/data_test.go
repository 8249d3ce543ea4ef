package als

import (
	"compress/gzip"
	"encoding/csv"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
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
	realData *CSR
	realErr  error
)

// loadReal reads user_id,artist,track,count into a users × songs matrix,
// where a song is the (artist, track) pair. It skips the test if absent.
func loadReal(tb testing.TB) *CSR {
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

func readInteractions(path string) (*CSR, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	r := csv.NewReader(gz)
	r.ReuseRecord = true
	r.FieldsPerRecord = 4
	if _, err := r.Read(); err != nil { // header
		return nil, err
	}
	users := map[string]int32{}
	songs := map[[2]string]int32{}
	var entries []Entry
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		u, ok := users[rec[0]]
		if !ok {
			u = int32(len(users))
			users[rec[0]] = u
		}
		key := [2]string{rec[1], rec[2]}
		s, ok := songs[key]
		if !ok {
			s = int32(len(songs))
			songs[key] = s
		}
		c, err := strconv.ParseFloat(rec[3], 32)
		if err != nil {
			return nil, err
		}
		entries = append(entries, Entry{Row: u, Col: s, Value: float32(c)})
	}
	return NewCSR(len(users), len(songs), entries), nil
}
