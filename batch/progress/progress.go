// Package progress reports the advance of long batch work (an import, a
// training run) to whoever watches: a bar redrawn in place when a person
// looks at a terminal, and a log line every few seconds when the output goes
// to a file or a log collector, where a carriage-return bar would be noise.
package progress

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-isatty"
)

// Defaults for how often output is produced. A terminal redraw costs almost
// nothing but flickers past ~10 per second; a log line every 5 s says "alive"
// without flooding a log collector.
const (
	DefaultRedrawEvery = 100 * time.Millisecond
	DefaultLogEvery    = 5 * time.Second
)

const barWidth = 24

// Bar tracks one piece of work. Its methods are safe for concurrent use, so a
// worker goroutine may update it while another finishes it.
type Bar struct {
	mu     sync.Mutex
	w      io.Writer
	logger *slog.Logger
	now    func() time.Time
	tty    bool
	every  time.Duration // between redraws (TTY) or log lines
	manual bool          // injected clock: no ticker

	label    string
	unit     string
	status   string
	total    int64 // 0 when unknown
	pos      int64
	items    int64
	hasItems bool

	start    time.Time
	lastEmit time.Time
	finished bool
	drawn    bool // a bar line is on the terminal
	stop     chan struct{}
}

// Option adjusts a Bar at construction.
type Option func(*Bar)

// WithUnit names what the rate counts ("rows", "iterations"); the default is
// "items".
func WithUnit(unit string) Option { return func(b *Bar) { b.unit = unit } }

// WithTTY overrides the terminal detection (tests, or a --no-progress flag).
func WithTTY(tty bool) Option { return func(b *Bar) { b.tty = tty } }

// WithEvery overrides how often the bar redraws (TTY) or logs (otherwise).
func WithEvery(d time.Duration) Option { return func(b *Bar) { b.every = d } }

// WithClock replaces time.Now. A Bar with an injected clock starts no
// background ticker: output then happens only inside method calls, which is
// what makes rendering testable.
func WithClock(now func() time.Time) Option {
	return func(b *Bar) { b.now, b.manual = now, true }
}

// New starts a Bar labelled label, out of total units of progress (0 when
// unknown: then no percentage is shown). Bar lines go to w when w is a
// terminal; otherwise progress is logged to logger (a text logger on w when
// nil).
//
// Progress (Set, Add) and the counted items (SetItems) are separate because
// what is measurable is not always what is interesting: an import knows how
// many bytes of the file it consumed, but rows per second is the useful rate.
// Without SetItems the rate counts progress units.
func New(w io.Writer, logger *slog.Logger, label string, total int64, opts ...Option) *Bar {
	b := &Bar{w: w, logger: logger, label: label, total: total, unit: "items", now: time.Now, tty: isTerminal(w)}
	for _, o := range opts {
		o(b)
	}
	if b.every <= 0 {
		b.every = DefaultLogEvery
		if b.tty {
			b.every = DefaultRedrawEvery
		}
	}
	if b.logger == nil {
		b.logger = slog.New(slog.NewTextHandler(w, nil))
	}
	b.start = b.now()
	b.lastEmit = b.start
	if !b.manual {
		// Keeps the elapsed time moving (and the log saying "alive") while
		// the work runs a long step that reports nothing, such as one SQL
		// statement.
		b.stop = make(chan struct{})
		go b.tick(b.stop, b.every)
	}
	return b
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

func (b *Bar) tick(stop <-chan struct{}, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			b.mu.Lock()
			b.emit(false)
			b.mu.Unlock()
		}
	}
}

// Set moves progress to n units of the total.
func (b *Bar) Set(n int64) { b.update(func() { b.pos = n }) }

// Add advances progress by n units.
func (b *Bar) Add(n int64) { b.update(func() { b.pos += n }) }

// SetItems sets how many items (rows, iterations) are done, for the rate.
func (b *Bar) SetItems(n int64) { b.update(func() { b.items, b.hasItems = n, true }) }

// SetUnit renames what the items count ("trials"), for a caller that gets
// its Bar from someone else's constructor.
func (b *Bar) SetUnit(unit string) { b.update(func() { b.unit = unit }) }

// SetTotal changes the total, for work that learns its size late; 0 means
// unknown.
func (b *Bar) SetTotal(n int64) { b.update(func() { b.total = n }) }

// SetLabel renames the work, for example at a phase change.
func (b *Bar) SetLabel(s string) { b.update(func() { b.label = s }) }

// SetStatus sets free text shown after the numbers, such as "loss=1.23e5".
func (b *Bar) SetStatus(s string) { b.update(func() { b.status = s }) }

func (b *Bar) update(f func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.finished {
		return
	}
	f()
	b.emit(false)
}

// Finish shows the final state once (ending the bar's line on a terminal)
// and stops the ticker. Later calls to any method do nothing.
func (b *Bar) Finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.finished {
		return
	}
	b.emit(true)
	b.finished = true
	if b.stop != nil {
		close(b.stop)
	}
}

// Abandon stops the bar when the work failed: unlike Finish it claims no
// completion (no "finished" log line, no final 100% bar), so the error that
// follows is the last word. On a terminal it ends the bar's line. Later
// calls to any method do nothing.
func (b *Bar) Abandon() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.finished {
		return
	}
	if b.tty && b.drawn {
		_, _ = io.WriteString(b.w, "\n")
	}
	b.finished = true
	if b.stop != nil {
		close(b.stop)
	}
}

// emit draws or logs if enough time has passed, or always when final.
// Called with b.mu held.
func (b *Bar) emit(final bool) {
	if b.finished {
		return
	}
	now := b.now()
	if !final && now.Sub(b.lastEmit) < b.every {
		return
	}
	b.lastEmit = now
	s := b.snapshot(now)
	if b.tty {
		b.drawn = true
		line := "\r" + s.Line() + "\x1b[K"
		if final {
			line += "\n"
		}
		_, _ = io.WriteString(b.w, line)
		return
	}
	msg := s.Label
	if final {
		msg += " finished"
	}
	b.logger.Info(msg, s.Attrs()...)
}

func (b *Bar) snapshot(now time.Time) Snapshot {
	items := b.pos
	if b.hasItems {
		items = b.items
	}
	return Snapshot{Label: b.label, Unit: b.unit, Status: b.status, Total: b.total, Pos: b.pos, Items: items, Elapsed: now.Sub(b.start)}
}

// Snapshot is the state a Bar renders, exported so callers can render a
// summary the same way.
type Snapshot struct {
	Label, Unit, Status string
	Total, Pos, Items   int64
	Elapsed             time.Duration
}

// Rate is items per second, 0 before any time has passed.
func (s Snapshot) Rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Items) / s.Elapsed.Seconds()
}

// Fraction is the share of the total done, in [0, 1], or -1 when the total
// is unknown.
func (s Snapshot) Fraction() float64 {
	if s.Total <= 0 {
		return -1
	}
	return math.Min(1, math.Max(0, float64(s.Pos)/float64(s.Total)))
}

// Line renders the terminal bar, without the carriage return:
//
//	import a.csv [==========>             ]  45.0% 740,123 rows 98,123 rows/s 7s loss=1.2
func (s Snapshot) Line() string {
	var b strings.Builder
	b.WriteString(s.Label)
	if f := s.Fraction(); f >= 0 {
		filled := int(f * barWidth)
		b.WriteString(" [")
		b.WriteString(strings.Repeat("=", filled))
		if filled < barWidth {
			b.WriteString(">")
			b.WriteString(strings.Repeat(" ", barWidth-filled-1))
		}
		fmt.Fprintf(&b, "] %5.1f%%", f*100)
	}
	fmt.Fprintf(&b, " %s %s %s %s/s %s", Group(s.Items), s.Unit, Group(int64(math.Round(s.Rate()))), s.Unit, s.Elapsed.Truncate(time.Second))
	if s.Status != "" {
		b.WriteString(" ")
		b.WriteString(s.Status)
	}
	return b.String()
}

// Attrs renders the state as slog attributes for a log line.
func (s Snapshot) Attrs() []any {
	var attrs []any
	if f := s.Fraction(); f >= 0 {
		attrs = append(attrs, "progress", fmt.Sprintf("%.1f%%", f*100))
	}
	attrs = append(attrs, s.Unit, s.Items, s.Unit+"_per_s", int64(math.Round(s.Rate())), "elapsed", s.Elapsed.Truncate(time.Second).String())
	if s.Status != "" {
		attrs = append(attrs, "status", s.Status)
	}
	return attrs
}

// Group writes n with thousands separators, which is how people read row
// counts at a glance.
func Group(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
