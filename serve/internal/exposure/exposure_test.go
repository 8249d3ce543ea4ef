package exposure

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/experiment"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/model"
	"github.com/setlist/setlist/internal/store"
	"github.com/setlist/setlist/serve/internal/metrics"
)

// memStores is an in-memory KV and DB for the loop's bookkeeping; the
// Redis and SQL halves have their own tests (keyspace's TestShown,
// storetest, and serve's TestExposureAcrossReplicas).
type memStores struct {
	mu       sync.Mutex
	users    map[keyspace.ExposureKey]map[string]bool
	rows     map[keyspace.ExposureKey]store.Exposure
	shown    map[setlist.UserID]keyspace.ShownList
	enrolled map[int64][]store.ExperimentExposure
	fail     bool
}

func (m *memStores) AddExposed(_ context.Context, users map[keyspace.ExposureKey][]string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, us := range users {
		if m.users[k] == nil {
			m.users[k] = map[string]bool{}
		}
		for _, u := range us {
			m.users[k][u] = true
		}
	}
	return nil
}

func (m *memStores) CountExposed(_ context.Context, keys []keyspace.ExposureKey) ([]int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]int64, len(keys))
	for i, k := range keys {
		out[i] = int64(len(m.users[k]))
	}
	return out, nil
}

func (m *memStores) RecordShown(_ context.Context, lists []keyspace.ShownList) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, l := range lists {
		m.shown[l.User] = l
	}
	return nil
}

func (m *memStores) Shown(_ context.Context, u setlist.UserID, _ time.Time) (keyspace.ShownList, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.shown[u]
	return l, ok, nil
}

func (m *memStores) AddExposure(_ context.Context, rows []store.Exposure) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return setlist.ErrUnavailable
	}
	for _, r := range rows {
		k := keyspace.ExposureKey{Version: model.Version(r.Version), Day: r.Day, Source: r.Source, Arm: r.Arm}
		old := m.rows[k]
		old.Answers += r.Answers
		old.Users = max(old.Users, r.Users)
		m.rows[k] = old
	}
	return nil
}

func (m *memStores) RecordExposures(_ context.Context, id int64, exps []store.ExperimentExposure) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.enrolled[id] = append(m.enrolled[id], exps...)
	return nil
}

// serving is a fixed current version and experiment.
type serving struct {
	current model.Version
	routing *experiment.Routing
}

func (s *serving) CurrentVersion() model.Version { return s.current }
func (s *serving) Experiment() (experiment.Routing, bool) {
	if s.routing == nil {
		return experiment.Routing{}, false
	}
	return *s.routing, true
}

func newRecorder(t testing.TB, sv *serving) (*Recorder, *memStores) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, func() int { return 0 }, func() int64 { return 0 }, func() time.Time { return time.Time{} })
	mem := &memStores{users: map[keyspace.ExposureKey]map[string]bool{}, rows: map[keyspace.ExposureKey]store.Exposure{},
		shown: map[setlist.UserID]keyspace.ShownList{}, enrolled: map[int64][]store.ExperimentExposure{}}
	return New(Config{}, mem, mem, sv, m, slog.New(slog.DiscardHandler)), mem
}

// TestExposureLoop: answers from two versions are swept into per-version
// rows, users counted once each, and a failed persist keeps everything for
// the next one instead of losing or doubling it.
func TestExposureLoop(t *testing.T) {
	r, mem := newRecorder(t, &serving{current: 2})
	for _, u := range []setlist.UserID{"a", "b", "a"} {
		r.Answered(Answer{User: u, Version: 1, Arm: setlist.ArmNone, Source: setlist.SourceBatch})
	}
	r.Answered(Answer{User: "c", Version: 2, Arm: setlist.ArmNone, Source: setlist.SourcePopular})
	ctx := context.Background()
	mem.fail = true
	r.flushAnswers(ctx)
	r.persist(ctx)
	if len(mem.rows) != 0 {
		t.Fatalf("a failed persist stored %v", mem.rows)
	}
	r.Answered(Answer{User: "c", Version: 2, Arm: setlist.ArmNone, Source: setlist.SourcePopular})
	mem.fail = false
	r.flushAnswers(ctx)
	r.persist(ctx)
	r.persist(ctx) // nothing new: must not add again
	day := store.Day(time.Now())
	want := map[keyspace.ExposureKey]store.Exposure{
		{Version: 1, Day: day, Source: setlist.SourceBatch, Arm: setlist.ArmNone}:   {Answers: 3, Users: 2},
		{Version: 2, Day: day, Source: setlist.SourcePopular, Arm: setlist.ArmNone}: {Answers: 2, Users: 1},
	}
	if len(mem.rows) != len(want) {
		t.Fatalf("rows %v, want %v", mem.rows, want)
	}
	for k, w := range want {
		if g := mem.rows[k]; g.Answers != w.Answers || g.Users != w.Users {
			t.Errorf("%+v: %+v, want %+v", k, g, w)
		}
	}
	// Version 1 is no longer served and had nothing left: the loop let it go.
	r.flushAnswers(ctx)
	n := 0
	r.counts.Range(func(k, _ any) bool {
		n++
		if k.(model.Version) != 2 {
			t.Errorf("version %v still swept", k)
		}
		return true
	})
	if n != 1 {
		t.Errorf("%d versions swept, want only the current one", n)
	}
}

// TestShownAndEnrolled: a user's last answer in a flush is the list kept
// for attribution, and users answered in an arm of the running experiment
// are enrolled once each, at their first answer's time.
func TestShownAndEnrolled(t *testing.T) {
	routing := experiment.Routing{ID: 7, Challenger: 2, Share: 0.5, Salt: "s"}
	r, mem := newRecorder(t, &serving{current: 1, routing: &routing})
	at := time.Now().Add(-time.Minute)
	r.Answered(Answer{User: "a", Version: 2, Arm: setlist.ArmChallenger, Source: setlist.SourceBatch, At: at, Songs: []setlist.SongID{1, 2}})
	r.Answered(Answer{User: "a", Version: 2, Arm: setlist.ArmChallenger, Source: setlist.SourceFoldIn, At: at.Add(time.Second), Songs: []setlist.SongID{3}})
	r.Answered(Answer{User: "b", Version: 1, Arm: setlist.ArmControl, Source: setlist.SourcePopular, At: at})
	r.Answered(Answer{User: "n", Version: 1, Arm: setlist.ArmNone, Source: setlist.SourceBatch, At: at})
	ctx := context.Background()
	r.flushAnswers(ctx)
	r.Answered(Answer{User: "a", Version: 2, Arm: setlist.ArmChallenger, Source: setlist.SourceFoldIn, At: at.Add(2 * time.Second), Songs: []setlist.SongID{3}})
	r.flushAnswers(ctx)
	if l := mem.shown["a"]; l.Source != setlist.SourceFoldIn || len(l.Songs) != 1 || l.Songs[0] != 3 || !l.At.Equal(at.Add(2*time.Second)) {
		t.Errorf("a's shown list %+v, want the last answer (fold-in [3])", l)
	}
	got := map[setlist.UserID]setlist.Arm{}
	for _, e := range mem.enrolled[7] {
		if _, dup := got[e.User]; dup {
			t.Errorf("%s enrolled twice", e.User)
		}
		got[e.User] = e.Arm
		if e.At.After(at) {
			t.Errorf("%s enrolled at %v, after their first answer at %v", e.User, e.At, at)
		}
	}
	if len(got) != 2 || got["a"] != setlist.ArmChallenger || got["b"] != setlist.ArmControl {
		t.Errorf("enrolled %v, want a in challenger and b in control", got)
	}
}

// BenchmarkAnswered is what recording adds to every answer (an atomic add
// and a channel offer), with a reader draining the channel as the loop
// does, from every core at once.
func BenchmarkAnswered(b *testing.B) {
	r, _ := newRecorder(b, &serving{current: 1})
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-r.answers:
			case <-done:
				return
			}
		}
	}()
	defer close(done)
	songs := []setlist.SongID{1, 2, 3, 4, 5}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Answered(Answer{User: "user-1", Version: 1, Arm: setlist.ArmNone, Source: setlist.SourceBatch, Songs: songs})
		}
	})
}
