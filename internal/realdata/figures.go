package realdata

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// FigureLog returns the figure harnesses' writer: each line is stamped with
// the UTC time and the load average (figures taken on a shared machine say
// how loaded it was), logged to t and appended to SETLIST_FIGURES_OUT
// (default a file in t's temporary directory), so a long run's figures
// survive a timeout.
func FigureLog(t testing.TB) func(format string, a ...any) {
	t.Helper()
	path := os.Getenv("SETLIST_FIGURES_OUT")
	if path == "" {
		path = t.TempDir() + "/figures.txt"
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return func(format string, a ...any) {
		line := fmt.Sprintf("%s [load %s] %s", time.Now().UTC().Format("15:04:05"), LoadAvg(), fmt.Sprintf(format, a...))
		t.Log(line)
		fmt.Fprintln(f, line)
	}
}

// LoadAvg is the machine's 1, 5 and 15 minute load averages ("?" where
// /proc/loadavg is missing).
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}
