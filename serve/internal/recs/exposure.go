package recs

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/model"
	"github.com/setlist/setlist/internal/store"
)

// Exposure counting (issue 14): per model version, source, experiment arm
// and UTC day, how many answers serve gave and to how many distinct users.
// Nothing of it writes on the request path: an answer adds 1 to an atomic
// counter of its snapshot and offers its user to a buffered channel (never
// waiting: a full buffer drops the user and counts the drop). A background
// loop adds the buffered users to Redis HyperLogLogs every ExposureInterval
// (one pipeline) and every ExposurePersist upserts the answers counted
// since its last flush and the HyperLogLogs' counts into the system of
// record, where replicas' flushes add up (store.Exposure).

// ExposureCounter keeps the distinct users shown (Redis HyperLogLogs,
// keyspace.Reader).
type ExposureCounter interface {
	AddExposed(ctx context.Context, users map[keyspace.ExposureKey][]string) error
	CountExposed(ctx context.Context, keys []keyspace.ExposureKey) ([]int64, error)
}

// ExposureLog persists exposure (the exposure table).
type ExposureLog interface {
	AddExposure(ctx context.Context, rows []store.Exposure) error
}

// sources and arms index a snapshot's answer counters.
var (
	sources = [...]setlist.Source{setlist.SourceBatch, setlist.SourceFoldIn, setlist.SourcePopular}
	arms    = [...]setlist.Arm{setlist.ArmNone, setlist.ArmControl, setlist.ArmChallenger}
)

func sourceIndex(s setlist.Source) int {
	switch s {
	case setlist.SourceFoldIn:
		return 1
	case setlist.SourcePopular:
		return 2
	}
	return 0
}

func armIndex(a setlist.Arm) int {
	switch a {
	case setlist.ArmControl:
		return 1
	case setlist.ArmChallenger:
		return 2
	}
	return 0
}

// snapExposure is one snapshot's answer counters since the last sweep.
type snapExposure struct {
	answers [len(sources)][len(arms)]atomic.Int64
	tracked atomic.Bool // registered with the exposure loop
}

type exposedUser struct {
	version model.Version
	source  setlist.Source
	arm     setlist.Arm
	user    setlist.UserID
}

// exposure is the service's exposure state; nil when not counted.
type exposure struct {
	kv    ExposureCounter
	log   ExposureLog
	users chan exposedUser
	// flush asks the loop to flush now and closes the reply when done
	// (FlushExposures: tests and shutdown need the buffered users).
	flush chan chan struct{}

	mu      sync.Mutex
	tracked []*Snapshot // snapshots whose counters the loop sweeps

	// Owned by the loop: answers counted but not yet persisted, the keys
	// answered since the last persist, and every key of today (the users
	// gauge), each with its version role.
	pending map[keyspace.ExposureKey]int64
	dirty   map[keyspace.ExposureKey]string
	today   map[keyspace.ExposureKey]string
	// since is when the previous flush took the buffer: every user in the
	// next one was answered after it, so it is their experiment exposure's
	// time (a lower bound: a like right after the answer still counts).
	since time.Time
}

// ExposureBuffer is how many answered users wait for the next HyperLogLog
// flush before further ones are dropped (and counted): a second of a busy
// replica's answers.
const ExposureBuffer = 1 << 16

// CountExposure makes s count what it shows into kv and log; call it
// before Run, which runs the flush loop.
func (s *Service) CountExposure(kv ExposureCounter, log ExposureLog) {
	s.exposure = &exposure{kv: kv, log: log, users: make(chan exposedUser, ExposureBuffer), flush: make(chan chan struct{}),
		pending: map[keyspace.ExposureKey]int64{}, dirty: map[keyspace.ExposureKey]string{}, today: map[keyspace.ExposureKey]string{}}
}

// expose records one answer: two atomic operations and a channel offer.
// The same offer feeds the experiment's per-arm exposures (the loop hands
// them on), so an experiment adds nothing to the request path.
func (s *Service) expose(snap *Snapshot, arm setlist.Arm, src setlist.Source, u setlist.UserID) {
	x := s.exposure
	if x == nil {
		if arm != setlist.ArmNone {
			s.exposed.add(u, arm, time.Time{}) // exposure counting off: no loop to hand them on
		}
		return
	}
	snap.exposure.answers[sourceIndex(src)][armIndex(arm)].Add(1)
	if !snap.exposure.tracked.Load() && snap.exposure.tracked.CompareAndSwap(false, true) {
		x.mu.Lock()
		x.tracked = append(x.tracked, snap)
		x.mu.Unlock()
	}
	select {
	case x.users <- exposedUser{version: snap.Version, source: src, arm: arm, user: u}:
	default:
		s.metrics.ExposureDropped.Inc()
	}
}

// role is the bounded version label of exposure metrics.
func (s *Service) role(v model.Version, arm setlist.Arm) string {
	if arm == setlist.ArmChallenger {
		return "challenger"
	}
	if cur := s.holder.current(); cur != nil && cur.Version == v {
		return "current"
	}
	return "previous"
}

// runExposure flushes users every ExposureInterval and persists every
// ExposurePersist until ctx ends, then flushes and persists once more.
func (s *Service) runExposure(ctx context.Context) {
	x := s.exposure
	tick := time.NewTicker(s.cfg.ExposureInterval)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			s.flushExposed(fctx, x)
			s.persistExposure(fctx, x)
			cancel()
			return
		case done := <-x.flush:
			s.flushExposed(ctx, x)
			close(done)
			continue
		case <-tick.C:
		}
		s.flushExposed(ctx, x)
		if time.Since(last) >= s.cfg.ExposurePersist {
			last = time.Now()
			s.persistExposure(ctx, x)
		}
	}
}

// flushExposed adds the buffered users to today's HyperLogLogs and sweeps
// the snapshots' answer counters into pending (and the Prometheus
// counters). Users Redis refused are lost (counted as a store error); the
// answers are not: they are in pending.
func (s *Service) flushExposed(ctx context.Context, x *exposure) {
	now := time.Now()
	day := store.Day(now)
	since := x.since
	if since.IsZero() {
		since = now.Add(-s.cfg.ExposureInterval)
	}
	x.since = now
	batch := map[keyspace.ExposureKey]map[setlist.UserID]struct{}{}
	// What is buffered now, not what keeps arriving while this runs.
	for n := len(x.users); n > 0; n-- {
		e := <-x.users
		k := keyspace.ExposureKey{Version: e.version, Day: day, Source: e.source, Arm: e.arm}
		set := batch[k]
		if set == nil {
			set = map[setlist.UserID]struct{}{}
			batch[k] = set
			x.dirty[k] = s.role(e.version, e.arm)
		}
		set[e.user] = struct{}{}
		if e.arm != setlist.ArmNone {
			s.exposed.add(e.user, e.arm, since)
		}
	}
	if len(batch) > 0 {
		users := make(map[keyspace.ExposureKey][]string, len(batch))
		for k, set := range batch {
			list := make([]string, 0, len(set))
			for u := range set {
				list = append(list, string(u))
			}
			users[k] = list
		}
		rctx, cancel := callContext(ctx, 4*s.cfg.RedisTimeout)
		if err := x.kv.AddExposed(rctx, users); err != nil {
			s.metrics.StoreError("redis", "add_exposed")
		}
		cancel()
	}
	x.mu.Lock()
	cur := s.holder.current()
	keep := x.tracked[:0]
	for _, snap := range x.tracked {
		swept := int64(0)
		for i, src := range sources {
			for j, arm := range arms {
				n := snap.exposure.answers[i][j].Swap(0)
				if n == 0 {
					continue
				}
				swept += n
				k := keyspace.ExposureKey{Version: snap.Version, Day: day, Source: src, Arm: arm}
				x.pending[k] += n
				role := s.role(snap.Version, arm)
				x.dirty[k] = role
				s.metrics.ExposureAnswers.WithLabelValues(role, string(src), string(arm)).Add(float64(n))
			}
		}
		// A snapshot no longer served that had nothing left is done with:
		// a request still holding it registers it again.
		if snap != cur && swept == 0 {
			snap.exposure.tracked.Store(false)
			continue
		}
		keep = append(keep, snap)
	}
	clear(x.tracked[len(keep):])
	x.tracked = keep
	x.mu.Unlock()
}

// persistExposure upserts every key answered or shown since the last
// persist: the answers counted here since then, and the HyperLogLog's
// count. On a database error everything stays pending for the next try.
func (s *Service) persistExposure(ctx context.Context, x *exposure) {
	today := store.Day(time.Now())
	for k := range x.today {
		if k.Day != today {
			delete(x.today, k)
		}
	}
	if len(x.dirty) == 0 && len(x.today) == 0 {
		return
	}
	// Count the keys to persist and today's (for the gauge) in one pipeline.
	keys := make([]keyspace.ExposureKey, 0, len(x.dirty)+len(x.today))
	for k := range x.dirty {
		keys = append(keys, k)
	}
	for k := range x.today {
		if _, ok := x.dirty[k]; !ok {
			keys = append(keys, k)
		}
	}
	rctx, cancel := callContext(ctx, 4*s.cfg.RedisTimeout)
	counts, err := x.kv.CountExposed(rctx, keys)
	cancel()
	if err != nil {
		// Answers still persist; users stay as stored (never lowered).
		s.metrics.StoreError("redis", "count_exposed")
		counts = make([]int64, len(keys))
	}
	rows := make([]store.Exposure, 0, len(x.dirty))
	for i, k := range keys[:len(x.dirty)] {
		rows = append(rows, store.Exposure{Day: k.Day, Version: int64(k.Version), Source: k.Source, Arm: k.Arm,
			Answers: x.pending[k], Users: counts[i]})
	}
	if len(rows) > 0 {
		pctx, cancel := callContext(ctx, s.cfg.PostgresTimeout)
		err = x.log.AddExposure(pctx, rows)
		cancel()
		if err != nil {
			s.metrics.StoreError("postgres", "add_exposure")
			return
		}
	}
	for k, role := range x.dirty {
		if k.Day == today {
			x.today[k] = role
		}
	}
	if err == nil {
		s.metrics.ExposureUsers.Reset()
		for i, k := range keys {
			if role, ok := x.today[k]; ok && counts[i] > 0 {
				s.metrics.ExposureUsers.WithLabelValues(role, string(k.Source), string(k.Arm)).Set(float64(counts[i]))
			}
		}
	}
	clear(x.pending)
	clear(x.dirty)
}
