package recs

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/model"
	"github.com/setlist/setlist/internal/store"
	"github.com/setlist/setlist/serve/internal/metrics"
)

// memExposure is an in-memory ExposureCounter and ExposureLog for the
// loop's bookkeeping; the Redis and SQL halves have their own tests
// (storetest, TestExposureAcrossReplicas).
type memExposure struct {
	mu    sync.Mutex
	users map[keyspace.ExposureKey]map[string]bool
	rows  map[keyspace.ExposureKey]store.Exposure
	fail  bool
}

func (m *memExposure) AddExposed(_ context.Context, users map[keyspace.ExposureKey][]string) error {
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

func (m *memExposure) CountExposed(_ context.Context, keys []keyspace.ExposureKey) ([]int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]int64, len(keys))
	for i, k := range keys {
		out[i] = int64(len(m.users[k]))
	}
	return out, nil
}

func (m *memExposure) AddExposure(_ context.Context, rows []store.Exposure) error {
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

func newExposureService(t testing.TB) (*Service, *memExposure) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, func() int { return 0 }, func() int64 { return 0 }, func() time.Time { return time.Time{} })
	s := New(Config{}, nil, nil, m, slog.New(slog.DiscardHandler))
	mem := &memExposure{users: map[keyspace.ExposureKey]map[string]bool{}, rows: map[keyspace.ExposureKey]store.Exposure{}}
	s.CountExposure(mem, mem)
	return s, mem
}

// TestExposureLoop: answers from two snapshots are swept into per-version
// rows, users counted once each, and a failed persist keeps everything for
// the next one instead of losing or doubling it.
func TestExposureLoop(t *testing.T) {
	s, mem := newExposureService(t)
	v1, v2 := &Snapshot{Version: 1}, &Snapshot{Version: 2}
	s.holder.snap.Store(v2)
	for _, u := range []setlist.UserID{"a", "b", "a"} {
		s.expose(v1, setlist.ArmNone, setlist.SourceBatch, u)
	}
	s.expose(v2, setlist.ArmNone, setlist.SourcePopular, "c")
	ctx := context.Background()
	mem.fail = true
	s.flushExposed(ctx, s.exposure)
	s.persistExposure(ctx, s.exposure)
	if len(mem.rows) != 0 {
		t.Fatalf("a failed persist stored %v", mem.rows)
	}
	s.expose(v2, setlist.ArmNone, setlist.SourcePopular, "c")
	mem.fail = false
	s.flushExposed(ctx, s.exposure)
	s.persistExposure(ctx, s.exposure)
	s.persistExposure(ctx, s.exposure) // nothing new: must not add again
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
	// v1 is no longer served and had nothing left: the loop let it go.
	s.flushExposed(ctx, s.exposure)
	if len(s.exposure.tracked) != 1 || s.exposure.tracked[0] != v2 {
		t.Errorf("tracked %d snapshots, want only the current one", len(s.exposure.tracked))
	}
}

// BenchmarkExpose is what exposure counting adds to every answer (an
// atomic add and a channel offer), with a reader draining the channel as
// the loop does, from every core at once.
func BenchmarkExpose(b *testing.B) {
	s, _ := newExposureService(b)
	snap := &Snapshot{Version: 1}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-s.exposure.users:
			case <-done:
				return
			}
		}
	}()
	defer close(done)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.expose(snap, setlist.ArmNone, setlist.SourceBatch, "user-1")
		}
	})
}
