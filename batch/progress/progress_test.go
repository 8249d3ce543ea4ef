package progress

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// clock is a settable fake time source.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestSnapshotLine(t *testing.T) {
	tests := []struct {
		name string
		s    Snapshot
		want string
	}{
		{"half with items",
			Snapshot{Label: "import a.csv", Unit: "rows", Total: 200, Pos: 100, Items: 5000, Elapsed: 2 * time.Second},
			"import a.csv [============>           ]  50.0% 5,000 rows 2,500 rows/s 2s"},
		{"unknown total",
			Snapshot{Label: "import -", Unit: "rows", Items: 1234567, Elapsed: 10 * time.Second},
			"import - 1,234,567 rows 123,457 rows/s 10s"},
		{"status and full bar",
			Snapshot{Label: "train", Unit: "iterations", Total: 10, Pos: 10, Items: 10, Elapsed: 4*time.Second + 900*time.Millisecond, Status: "loss=1.23e5"},
			"train [========================] 100.0% 10 iterations 2 iterations/s 4s loss=1.23e5"},
		{"overshoot is capped",
			Snapshot{Label: "x", Unit: "items", Total: 10, Pos: 15, Items: 15, Elapsed: time.Second},
			"x [========================] 100.0% 15 items 15 items/s 1s"},
		{"no time yet",
			Snapshot{Label: "x", Unit: "items", Total: 4, Pos: 0, Items: 0},
			"x [>                       ]   0.0% 0 items 0 items/s 0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.Line(); got != tt.want {
				t.Errorf("Line() =\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestGroup(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", -1234567: "-1,234,567", 100000: "100,000"} {
		if got := Group(n); got != want {
			t.Errorf("Group(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestTTYRedrawThrottled checks that a terminal gets at most one redraw per
// interval, each starting with \r, and a final line ending in a newline.
func TestTTYRedrawThrottled(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	var out bytes.Buffer
	b := New(&out, nil, "load", 1000, WithTTY(true), WithClock(c.now), WithUnit("rows"))
	for i := 1; i <= 10; i++ { // 10 updates in 50 ms: below the 100 ms interval
		c.advance(5 * time.Millisecond)
		b.Set(int64(i * 10))
	}
	if out.Len() != 0 {
		t.Fatalf("redrew within the first interval: %q", out.String())
	}
	c.advance(60 * time.Millisecond)
	b.Set(500)
	b.SetItems(42)
	c.advance(time.Second)
	b.SetStatus("phase=users")
	b.Finish()
	b.Set(900) // after Finish: ignored

	frames := strings.Split(out.String(), "\r")[1:]
	if len(frames) != 3 {
		t.Fatalf("got %d frames, want 3 (one throttled update, one after 1 s, the final): %q", len(frames), out.String())
	}
	if want := "load [============>           ]  50.0% 500 rows 4,545 rows/s 0s\x1b[K"; frames[0] != want {
		t.Errorf("first frame %q, want %q", frames[0], want)
	}
	if !strings.HasSuffix(frames[2], "phase=users\x1b[K\n") || !strings.Contains(frames[2], " 42 rows 38 rows/s 1s") {
		t.Errorf("final frame %q: want 42 rows at 38 rows/s after 1.11 s, status, newline", frames[2])
	}
}

// TestLogLines checks the non-terminal mode: a log line per interval with
// the same numbers, and a "finished" line.
func TestLogLines(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	var out bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	b := New(&out, logger, "import x", 0, WithTTY(false), WithClock(c.now), WithUnit("rows"), WithEvery(5*time.Second))
	for i := 1; i <= 12; i++ {
		c.advance(time.Second)
		b.SetItems(int64(i) * 1000)
	}
	b.Finish()
	want := []string{
		`level=INFO msg="import x" rows=5000 rows_per_s=1000 elapsed=5s`,
		`level=INFO msg="import x" rows=10000 rows_per_s=1000 elapsed=10s`,
		`level=INFO msg="import x finished" rows=12000 rows_per_s=1000 elapsed=12s`,
	}
	got := strings.Split(strings.TrimSpace(out.String()), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("log lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestNotATerminal checks the default detection: a buffer is not a TTY, so
// a Bar on it logs instead of drawing carriage returns.
func TestNotATerminal(t *testing.T) {
	var out bytes.Buffer
	b := New(&out, nil, "x", 10)
	b.Finish()
	if strings.Contains(out.String(), "\r") || !strings.Contains(out.String(), `msg="x finished"`) {
		t.Errorf("output on a buffer = %q, want a log line", out.String())
	}
}

// TestAbandon checks a failed piece of work: no "finished" line and no
// final 100% frame; on a terminal the drawn bar's line is ended.
func TestAbandon(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	var logOut bytes.Buffer
	b := New(&logOut, nil, "import bad.csv", 10, WithTTY(false), WithClock(c.now))
	c.advance(time.Second)
	b.Set(3)
	b.Abandon()
	b.Finish() // after Abandon: nothing
	if logOut.String() != "" {
		t.Errorf("abandoned bar logged %q, want nothing", logOut.String())
	}

	var tty bytes.Buffer
	b = New(&tty, nil, "import bad.csv", 10, WithTTY(true), WithClock(c.now), WithEvery(time.Millisecond))
	c.advance(time.Second)
	b.Set(3)
	b.Abandon()
	if got := tty.String(); !strings.HasSuffix(got, "\n") || strings.Count(got, "\r") != 1 || strings.Contains(got, "100.0%") {
		t.Errorf("abandoned terminal bar wrote %q, want the one drawn frame and a newline", got)
	}
}
