// Package exposure records what serve answered, fed by the answers (the
// API hands every recommendation answer to Recorder.Answered), off the
// request path:
//
//   - the exposure counts (issue 14): per model version, source, experiment
//     arm and UTC day, how many answers serve gave and to how many distinct
//     users (Redis HyperLogLogs shared by the replicas), persisted into the
//     system of record's exposure table, where replicas' flushes add up;
//   - each user's last answered list (issue 24 item 8): version, arm,
//     source, when and its songs, in Redis for keyspace.ShownWindow, so a
//     like or dislike is attributed to a list only if that list was
//     answered to that user within the window (Recorder.Shown), never to
//     a list serve merely holds;
//   - the running experiment's enrolments: each user the first time they
//     are answered in an arm (the readout's units).
//
// An answer costs an atomic add and a channel offer (never waiting: a full
// buffer drops the answer from the users' counts, lists and enrolments,
// and counts the drop). A background loop (Run) flushes the buffer every
// Interval (one Redis pipeline of HyperLogLog adds, one of shown lists,
// and the enrolments to the database) and persists the counts every
// Persist.
package exposure

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/experiment"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/model"
	"github.com/setlist/setlist/internal/store"
	"github.com/setlist/setlist/serve/internal/metrics"
)

// KV is what the recorder keeps in Redis (keyspace.Reader): the distinct
// users answered and each user's last answered list.
type KV interface {
	AddExposed(ctx context.Context, users map[keyspace.ExposureKey][]string) error
	CountExposed(ctx context.Context, keys []keyspace.ExposureKey) ([]int64, error)
	RecordShown(ctx context.Context, lists []keyspace.ShownList) error
	Shown(ctx context.Context, u setlist.UserID, now time.Time) (keyspace.ShownList, bool, error)
}

// DB is what the recorder persists to the system of record.
type DB interface {
	// AddExposure adds the answers counted and raises the users (the
	// exposure table).
	AddExposure(ctx context.Context, rows []store.Exposure) error
	// RecordExposures records that users were answered in arms of
	// experiment id (the readout's units; repeats are ignored).
	RecordExposures(ctx context.Context, id int64, exps []store.ExperimentExposure) error
}

// Serving is what the recorder asks of the recommendation service: the
// version served now (the metrics' version role) and the running
// experiment (whose enrolments it records).
type Serving interface {
	CurrentVersion() model.Version
	Experiment() (experiment.Routing, bool)
}

// Config tunes the recorder; zero values take the defaults.
type Config struct {
	// Interval is how often answered users are flushed (default 1s);
	// Persist how often the counts are upserted into the database
	// (default 10s).
	Interval time.Duration
	Persist  time.Duration
	// RedisTimeout and PostgresTimeout bound one call (defaults 250ms, 2s).
	RedisTimeout    time.Duration
	PostgresTimeout time.Duration
}

func (c *Config) defaults() {
	if c.Interval <= 0 {
		c.Interval = time.Second
	}
	if c.Persist <= 0 {
		c.Persist = 10 * time.Second
	}
	if c.RedisTimeout <= 0 {
		c.RedisTimeout = 250 * time.Millisecond
	}
	if c.PostgresTimeout <= 0 {
		c.PostgresTimeout = 2 * time.Second
	}
}

// Buffer is how many answers wait for the next flush before further ones
// are dropped (and counted): a second of a busy replica's answers.
const Buffer = 1 << 16

// Answer is one answer as the recorder takes it. Songs must not be
// changed afterwards (the flush reads it later).
type Answer = keyspace.ShownList

// sources and arms index a version's answer counters.
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

// answerCounts is one version's answers since the last sweep.
type answerCounts [len(sources)][len(arms)]atomic.Int64

// Recorder records what serve answers. Answered and Shown are safe for
// concurrent use; Run owns the rest.
type Recorder struct {
	cfg     Config
	kv      KV
	db      DB
	serving Serving
	metrics *metrics.Metrics
	log     *slog.Logger

	// counts holds each answered version's counters (model.Version →
	// *answerCounts), swept by the loop.
	counts  sync.Map
	answers chan Answer
	// flush asks the loop to flush now and closes the reply when done.
	flush chan chan struct{}

	// enrolled is the running experiment's users already recorded.
	enrolled enrolments

	// Owned by the loop: answers counted but not yet persisted, the keys
	// answered since the last persist, and every key of today (the users
	// gauge), each with its version role; the experiment enrolled for.
	pending    map[keyspace.ExposureKey]int64
	dirty      map[keyspace.ExposureKey]string
	today      map[keyspace.ExposureKey]string
	experiment int64
	running    atomic.Bool
}

// New returns a recorder; call Run to flush what it is fed.
func New(cfg Config, kv KV, db DB, serving Serving, m *metrics.Metrics, log *slog.Logger) *Recorder {
	cfg.defaults()
	return &Recorder{cfg: cfg, kv: kv, db: db, serving: serving, metrics: m, log: log,
		answers: make(chan Answer, Buffer), flush: make(chan chan struct{}),
		pending: map[keyspace.ExposureKey]int64{}, dirty: map[keyspace.ExposureKey]string{}, today: map[keyspace.ExposureKey]string{}}
}

// Answered records one answer given now: an atomic add and a channel
// offer, never a wait.
func (r *Recorder) Answered(a Answer) {
	c, ok := r.counts.Load(a.Version)
	if !ok {
		c, _ = r.counts.LoadOrStore(a.Version, new(answerCounts))
	}
	c.(*answerCounts)[sourceIndex(a.Source)][armIndex(a.Arm)].Add(1)
	if a.At.IsZero() {
		a.At = time.Now()
	}
	select {
	case r.answers <- a:
	default:
		r.metrics.ExposureDropped.Inc()
	}
}

// role is the bounded version label of exposure metrics.
func (r *Recorder) role(v model.Version, arm setlist.Arm) string {
	if arm == setlist.ArmChallenger {
		return "challenger"
	}
	if r.serving.CurrentVersion() == v {
		return "current"
	}
	return "previous"
}

// Run flushes every Interval and persists every Persist until ctx ends,
// then flushes and persists once more.
func (r *Recorder) Run(ctx context.Context) {
	r.running.Store(true)
	defer r.running.Store(false)
	tick := time.NewTicker(r.cfg.Interval)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			r.flushAnswers(fctx)
			r.persist(fctx)
			cancel()
			return
		case done := <-r.flush:
			r.flushAnswers(ctx)
			close(done)
			continue
		case <-tick.C:
		}
		r.flushAnswers(ctx)
		if time.Since(last) >= r.cfg.Persist {
			last = time.Now()
			r.persist(ctx)
		}
	}
}

// Flush has the loop flush what is buffered now (answers, shown lists,
// enrolments), and waits for it or for ctx.
func (r *Recorder) Flush(ctx context.Context) {
	if !r.running.Load() {
		return
	}
	done := make(chan struct{})
	select {
	case r.flush <- done:
		select {
		case <-done:
		case <-ctx.Done():
		}
	case <-ctx.Done():
	}
}

// Shown is the last list answered to u within keyspace.ShownWindow (ok
// false: none). Answers still buffered are flushed first, so a like right
// after its answer on this replica finds it (one on another replica
// within a flush interval of the answer may not: it is then not shown).
func (r *Recorder) Shown(ctx context.Context, u setlist.UserID) (keyspace.ShownList, bool, error) {
	if len(r.answers) > 0 {
		// Bounded: a loop busy persisting to a slow database must not hold
		// the reaction for long (the like is then merely not shown).
		fctx, cancel := context.WithTimeout(ctx, 4*r.cfg.RedisTimeout)
		r.Flush(fctx)
		cancel()
	}
	rctx, cancel := context.WithTimeout(ctx, r.cfg.RedisTimeout)
	defer cancel()
	l, ok, err := r.kv.Shown(rctx, u, time.Now())
	if err != nil {
		r.metrics.StoreError("redis", "shown")
		return l, false, fmt.Errorf("the list shown to %q: %w", u, err)
	}
	return l, ok, nil
}

// flushAnswers adds the buffered users to today's HyperLogLogs, stores
// each user's last answered list, enrols the running experiment's users,
// and sweeps the versions' answer counters into pending (and the
// Prometheus counters). What Redis or the database refused is lost
// (counted as a store error); the answer counts are not: they are pending.
func (r *Recorder) flushAnswers(ctx context.Context) {
	day := store.Day(time.Now())
	batch := map[keyspace.ExposureKey]map[setlist.UserID]struct{}{}
	last := map[setlist.UserID]Answer{}
	ex, running := r.serving.Experiment()
	if !running {
		ex = experiment.Routing{}
	}
	if ex.ID != r.experiment {
		r.enrolled.forget() // a new experiment enrols everyone again
		r.experiment = ex.ID
	}
	// What is buffered now, not what keeps arriving while this runs.
	for n := len(r.answers); n > 0; n-- {
		a := <-r.answers
		k := keyspace.ExposureKey{Version: a.Version, Day: day, Source: a.Source, Arm: a.Arm}
		set := batch[k]
		if set == nil {
			set = map[setlist.UserID]struct{}{}
			batch[k] = set
			r.dirty[k] = r.role(a.Version, a.Arm)
		}
		set[a.User] = struct{}{}
		last[a.User] = a
		if running && a.Arm != setlist.ArmNone {
			// A second early: the reaction's created_at is the
			// database's clock, which may lag this one a little.
			r.enrolled.add(a.User, a.Arm, a.At.Add(-time.Second))
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
		rctx, cancel := context.WithTimeout(ctx, 4*r.cfg.RedisTimeout)
		if err := r.kv.AddExposed(rctx, users); err != nil {
			r.metrics.StoreError("redis", "add_exposed")
		}
		cancel()
		lists := make([]keyspace.ShownList, 0, len(last))
		for _, a := range last {
			lists = append(lists, a)
		}
		rctx, cancel = context.WithTimeout(ctx, 4*r.cfg.RedisTimeout)
		if err := r.kv.RecordShown(rctx, lists); err != nil {
			r.metrics.StoreError("redis", "record_shown")
		}
		cancel()
	}
	r.flushEnrolments(ctx, ex.ID)
	r.sweep(day)
}

// sweep moves the versions' answer counters into pending.
func (r *Recorder) sweep(day string) {
	cur := r.serving.CurrentVersion()
	r.counts.Range(func(key, value any) bool {
		v, c := key.(model.Version), value.(*answerCounts)
		swept := int64(0)
		for i, src := range sources {
			for j, arm := range arms {
				n := c[i][j].Swap(0)
				if n == 0 {
					continue
				}
				swept += n
				k := keyspace.ExposureKey{Version: v, Day: day, Source: src, Arm: arm}
				r.pending[k] += n
				role := r.role(v, arm)
				r.dirty[k] = role
				r.metrics.ExposureAnswers.WithLabelValues(role, string(src), string(arm)).Add(float64(n))
			}
		}
		// A version no longer served that had nothing left is done with
		// (a request still answering from it adds it again).
		if v != cur && swept == 0 {
			r.counts.CompareAndDelete(key, value)
		}
		return true
	})
}

// flushEnrolments writes the users enrolled since the last flush under
// experiment id (0: none runs; they are dropped). A failure is counted and
// logged: those users are enrolled again on their next answer, so the
// readout undercounts for a while rather than serving slowing down.
func (r *Recorder) flushEnrolments(ctx context.Context, id int64) {
	exps := r.enrolled.take()
	if len(exps) == 0 || id == 0 {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, r.cfg.PostgresTimeout)
	defer cancel()
	if err := r.db.RecordExposures(pctx, id, exps); err != nil {
		r.enrolled.forget()
		r.metrics.StoreError("postgres", "record_exposures")
		r.log.Warn("experiment exposures not recorded; the readout undercounts them until those users are answered again", "experiment", id, "users", len(exps), "err", err)
	}
}

// persist upserts every key answered since the last persist: the answers
// counted here since then, and the HyperLogLog's count. On a database
// error everything stays pending for the next try.
func (r *Recorder) persist(ctx context.Context) {
	today := store.Day(time.Now())
	for k := range r.today {
		if k.Day != today {
			delete(r.today, k)
		}
	}
	if len(r.dirty) == 0 && len(r.today) == 0 {
		return
	}
	// Count the keys to persist and today's (for the gauge) in one pipeline.
	keys := make([]keyspace.ExposureKey, 0, len(r.dirty)+len(r.today))
	for k := range r.dirty {
		keys = append(keys, k)
	}
	for k := range r.today {
		if _, ok := r.dirty[k]; !ok {
			keys = append(keys, k)
		}
	}
	rctx, cancel := context.WithTimeout(ctx, 4*r.cfg.RedisTimeout)
	counts, err := r.kv.CountExposed(rctx, keys)
	cancel()
	if err != nil {
		// Answers still persist; users stay as stored (never lowered).
		r.metrics.StoreError("redis", "count_exposed")
		counts = make([]int64, len(keys))
	}
	rows := make([]store.Exposure, 0, len(r.dirty))
	for i, k := range keys[:len(r.dirty)] {
		rows = append(rows, store.Exposure{Day: k.Day, Version: int64(k.Version), Source: k.Source, Arm: k.Arm,
			Answers: r.pending[k], Users: counts[i]})
	}
	if len(rows) > 0 {
		pctx, cancel := context.WithTimeout(ctx, r.cfg.PostgresTimeout)
		err = r.db.AddExposure(pctx, rows)
		cancel()
		if err != nil {
			r.metrics.StoreError("postgres", "add_exposure")
			return
		}
	}
	for k, role := range r.dirty {
		if k.Day == today {
			r.today[k] = role
		}
	}
	if err == nil {
		r.metrics.ExposureUsers.Reset()
		for i, k := range keys {
			if role, ok := r.today[k]; ok && counts[i] > 0 {
				r.metrics.ExposureUsers.WithLabelValues(role, string(k.Source), string(k.Arm)).Set(float64(counts[i]))
			}
		}
	}
	clear(r.pending)
	clear(r.dirty)
}

// enrolments collects, per experiment arm, the users answered since the
// last flush that were not recorded before. A table of recorded users'
// hashes (two atomic loads) says a user is already pending or recorded; a
// collision evicts a user, who is then recorded again on their next
// answer: duplicates cost the flush a row the database ignores (one
// exposure per user and experiment), never a missed user.
type enrolments struct {
	seen    [1 << 17]atomic.Uint64
	mu      sync.Mutex
	pending []store.ExperimentExposure
}

// forget empties the table of recorded users (a new experiment records
// everyone again, and so does a failed write).
func (e *enrolments) forget() {
	for i := range e.seen {
		e.seen[i].Store(0)
	}
}

// add enrols u in arm, answered at at: the first answer keeps its time,
// which is when a like starts to count as a conversion.
func (e *enrolments) add(u setlist.UserID, arm setlist.Arm, at time.Time) {
	h := uint64(14695981039346656037)
	for i := 0; i < len(u); i++ {
		h = (h ^ uint64(u[i])) * 1099511628211
	}
	// FNV's last multiply leaves ids that differ in their last characters
	// close in the low bits: mix before taking a slot from them.
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h |= 1 // never the empty slot's 0
	// Two candidate slots (two-choice hashing): a user is evicted only when
	// both are taken by others, so evictions stay rare at 10^5 users.
	n := uint64(len(e.seen))
	a, b := &e.seen[h%n], &e.seen[(h>>32)%n]
	va, vb := a.Load(), b.Load()
	if va == h || vb == h {
		return
	}
	if va == 0 || (vb != 0 && h&2 == 0) {
		a.Store(h)
	} else {
		b.Store(h)
	}
	e.mu.Lock()
	e.pending = append(e.pending, store.ExperimentExposure{User: u, Arm: arm, At: at})
	e.mu.Unlock()
}

// take empties the collector and returns what it held.
func (e *enrolments) take() []store.ExperimentExposure {
	e.mu.Lock()
	out := e.pending
	e.pending = nil
	e.mu.Unlock()
	return out
}
