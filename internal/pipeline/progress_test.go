package pipeline_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/setlist/setlist/internal/model"
	"github.com/setlist/setlist/internal/pipeline"
)

// recordedBars remembers how each progress bar of a run ended.
type recordedBars struct {
	mu    sync.Mutex
	ended map[string]string // label → "finished" or "abandoned"
}

type recordedBar struct {
	label string
	rec   *recordedBars
}

func (b recordedBar) Set(int64) {}
func (b recordedBar) Finish()   { b.rec.end(b.label, "finished") }
func (b recordedBar) Abandon()  { b.rec.end(b.label, "abandoned") }
func (r *recordedBars) end(label, how string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ended[label] = how
}

func (r *recordedBars) progress(label string, _ int64) pipeline.Bar {
	return recordedBar{label: label, rec: r}
}

type failingSource struct{ err error }

func (s failingSource) LoadTraining(_ context.Context, _ model.Scheme, progress func(read, estimate int64)) (*model.Training, error) {
	progress(10, 0)
	return nil, s.err
}

// TestProgressBarsEndByOutcome: a phase that fails abandons its bar (a log
// line "finished" after a failure misled whoever read the pod's log); a run
// that succeeds finishes every bar.
func TestProgressBarsEndByOutcome(t *testing.T) {
	e := newEnv(t)
	ok := &recordedBars{ended: map[string]string{}}
	deps := e.deps()
	deps.Progress = ok.progress
	if _, err := pipeline.Run(context.Background(), smallConfig(), deps); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(ok.ended) == 0 {
		t.Fatal("the run showed no progress bar")
	}
	for label, how := range ok.ended {
		if how != "finished" {
			t.Errorf("successful run: bar %q %s", label, how)
		}
	}

	bad := &recordedBars{ended: map[string]string{}}
	deps.Source, deps.Progress = failingSource{errors.New("disk on fire")}, bad.progress
	if _, err := pipeline.Run(context.Background(), smallConfig(), deps); err == nil {
		t.Fatal("a run whose load fails succeeded")
	}
	if got := bad.ended["load reactions"]; got != "abandoned" {
		t.Fatalf("failed load: bar %q, want abandoned", got)
	}
}
