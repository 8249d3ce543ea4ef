package realdata

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/setlist/setlist/internal/feedback"
)

// Path is the shared data's interactions file: SETLIST_DATA, else its
// place beside the checkout as seen from a package two folders below the
// module root (internal/als, bench/figures), where go test runs.
func Path() string {
	if p := os.Getenv("SETLIST_DATA"); p != "" {
		return p
	}
	return filepath.FromSlash("../../../shared/data/spotify-playlists/interactions.csv.gz")
}

var (
	csrOnce sync.Once
	csr     *feedback.CSR
	csrErr  error
)

// CSR is the shared data as a users × songs matrix (a song is an (artist,
// track) pair), read once per process. It skips tb when the file is
// absent: nothing may depend on the shared data.
func CSR(tb testing.TB) *feedback.CSR {
	tb.Helper()
	csrOnce.Do(func() { csr, csrErr = ReadCSR(Path()) })
	if errors.Is(csrErr, os.ErrNotExist) {
		tb.Skipf("benchmark data not found at %s (set SETLIST_DATA to run)", Path())
	}
	if csrErr != nil {
		tb.Fatalf("load %s: %v", Path(), csrErr)
	}
	return csr
}

// ReadCSR reads path (Read) into a users × songs matrix.
func ReadCSR(path string) (*feedback.CSR, error) {
	t, err := Read(path)
	if err != nil {
		return nil, err
	}
	entries := make([]feedback.Entry, len(t.Rows))
	for e := range entries {
		entries[e] = feedback.Entry{Row: t.Rows[e], Col: t.Cols[e], Value: t.Vals[e]}
	}
	return feedback.NewCSR(t.Users, t.Songs, entries), nil
}

// PeakRSS is the process's high-water resident set (VmHWM), in bytes (0
// where /proc is missing).
func PeakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// ResetPeak frees what the heap no longer uses and sets VmHWM back to the
// current RSS (Linux ≥ 4.0), so the next PeakRSS is the next phase's own.
func ResetPeak() error {
	runtime.GC()
	debug.FreeOSMemory()
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// CPUSeconds is the process's user + system CPU time so far: on a shared
// machine it says what work cost, wall time what a run waited.
func CPUSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}
