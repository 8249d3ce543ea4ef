package realdata

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

// SampleHeap samples the Go heap's live objects every 20 ms until the
// returned function is called, which returns the peak.
func SampleHeap() func() int64 {
	var peak atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() {
		metrics.Read(s)
		if v := int64(s[0].Value.Uint64()); v > peak.Load() {
			peak.Store(v)
		}
	}
	go func() {
		defer wg.Done()
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for {
			read()
			select {
			case <-stop:
				return
			case <-tk.C:
			}
		}
	}()
	return func() int64 {
		close(stop)
		wg.Wait()
		read()
		return peak.Load()
	}
}

// EnvOr is the environment variable k, or def when it is unset or empty.
func EnvOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// EnvInt is the positive integer in the environment variable k, or def
// when it is unset; anything else fails t.
func EnvInt(t testing.TB, k string, def int) int {
	t.Helper()
	v := os.Getenv(k)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", k, v)
	}
	return n
}

// RunChild runs test (a ^name$ pattern) again in a child process of this
// test binary with env added, so the child's CPU time and peak RSS are its
// own, and decodes into result the JSON the child printed after marker
// ("MARKER {json}", see PrintResult).
func RunChild(t testing.TB, test, marker string, env []string, result any) {
	t.Helper()
	RunChildOf(t, os.Args[0], test, marker, env, result)
}

// RunChildOf is RunChild with another test binary (an older build of the
// same harness, for a before-and-after figure).
func RunChildOf(t testing.TB, binary, test, marker string, env []string, result any) {
	t.Helper()
	cmd := exec.Command(binary, "-test.run", test, "-test.v", "-test.timeout", "0")
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("child %s %v: %v\n%s", test, env, err, out.String())
	}
	for _, l := range strings.Split(out.String(), "\n") {
		if j, ok := strings.CutPrefix(strings.TrimSpace(l), marker+" "); ok {
			if err := json.Unmarshal([]byte(j), result); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("child %s %v printed no %s result:\n%s", test, env, marker, out.String())
}

// PrintResult is the child's side of RunChild.
func PrintResult(marker string, result any) {
	b, _ := json.Marshal(result)
	fmt.Printf("%s %s\n", marker, b)
}
