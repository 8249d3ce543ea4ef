// Package recs answers recommendation requests: a batch hit in one Redis
// round trip, an on-demand fold-in for users the batch list cannot serve, the
// popular list for users with nothing to fold in, and an in-process near
// cache in front of all three. It keeps the current model version in memory
// and swaps it atomically when a new one is published.
//
// It depends on two small interfaces (KeySpace, History) rather than on
// Redis and PostgreSQL, so an embedded backend can be plugged in later.
package recs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/experiment"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/model"
	"github.com/setlist/setlist/serve/internal/metrics"
	"github.com/setlist/setlist/serve/internal/ratelimit"
)

// KeySpace is where published versions and per-user lists live (Redis,
// internal/keyspace.Reader).
type KeySpace interface {
	Current(ctx context.Context) (model.Version, error)
	Load(ctx context.Context, v model.Version) (*model.Published, error)
	// Refreshes is how many times batch refresh changed version v in
	// place (songs added, lists updated); Load's Published carries the
	// count it read.
	Refreshes(ctx context.Context, v model.Version) (int64, error)
	UserState(ctx context.Context, v model.Version, u setlist.UserID) (keyspace.UserState, error)
	StoreFoldIn(ctx context.Context, v model.Version, u setlist.UserID, rec keyspace.FoldInRecord, ttl time.Duration) error
	Touch(ctx context.Context, v model.Version, u setlist.UserID, seq int64) error
	// Events delivers version switches and user invalidations until ctx
	// ends; subscribed is called whenever the subscription is
	// (re)established and lost when it breaks (messages may be missed in
	// between).
	Events(ctx context.Context, on func(keyspace.Event), subscribed func(), lost func(error)) error
	// CatalogSeq is the catalog change sequence last announced (0: none).
	CatalogSeq(ctx context.Context) (int64, error)
	// Experiment is the running experiment's routing (ok false: none).
	Experiment(ctx context.Context) (r experiment.Routing, ok bool, err error)
}

// History is the system of record for users' reactions and song names
// (PostgreSQL).
type History interface {
	// User returns u, or ErrNotFound: the cheap existence check (an
	// indexed lookup) that answers an unknown user before a fold-in slot.
	User(ctx context.Context, u setlist.UserID) (setlist.User, error)
	// UserReactions returns at most limit of u's reactions (≤ 0: all), the
	// strongest evidence first (store.FoldInOrder).
	UserReactions(ctx context.Context, u setlist.UserID, limit int) ([]setlist.Reaction, error)
	// ReactedSongs returns every song u reacted to: what a fold-in whose
	// history was cut must still exclude.
	ReactedSongs(ctx context.Context, u setlist.UserID) ([]setlist.SongID, error)
	SongsByID(ctx context.Context, ids []setlist.SongID) (map[setlist.SongID]setlist.Song, error)
	Catalog
}

// Config tunes the service; zero values take the defaults below.
type Config struct {
	RedisTimeout    time.Duration // per Redis call (default 250ms)
	PostgresTimeout time.Duration // per PostgreSQL call (default 2s)
	FoldInTTL       time.Duration // lifetime of a cached fold-in in Redis (default 1h)
	FoldInDepth     int           // songs a fold-in computes and caches, so later larger n reuse it (default 20)
	Explain         int           // fold-in songs given a "because" (cheap: reuses the fold-in's factorisation; default 1)
	NearCacheBytes  int64         // bytes the near cache may hold (entries charged their real size); 0 disables it
	PollInterval    time.Duration // how often to check the version pointer besides events (default 5s)
	// FoldInConcurrency bounds fold-ins running at once (default 2 per CPU).
	FoldInConcurrency int
	// FoldInMaxReactions caps the reactions one fold-in reads and solves
	// with, the strongest evidence first (store.FoldInOrder), so its cost
	// is bounded however long a history grows (default 1000; < 0: no cap).
	FoldInMaxReactions int
	// SimilarConcurrency bounds similar-song computations running at once
	// (cache misses; default half the cores, at least 1): they are pure
	// CPU, so the other half stays for fold-ins and answers.
	SimilarConcurrency int
	// ScoringRate and ScoringBurst are each client's token bucket of
	// scored answers (see admitScoring); ScoringRate ≤ 0 is no limit
	// (serve's flags default to DefaultScoringRate and
	// DefaultScoringBurst).
	ScoringRate  float64
	ScoringBurst int
	// SimilarRate and SimilarBurst are each client's token bucket of
	// similar-song answers of any kind, cached ones included (see
	// SimilarFiltered); SimilarRate ≤ 0 is no limit (serve's flags
	// default to DefaultSimilarRate and DefaultSimilarBurst).
	SimilarRate  float64
	SimilarBurst int
}

// The default rate of scored answers per client: far above what one
// person's page asks (a fold-in after a reaction, a few similar lists) and
// a backend asking fold-ins for a few new users a second, far below what
// takes the cores from everyone else (docs/RELIABILITY.md, the spread
// flood). The burst is let in at once and can hold every fold-in slot
// until it drains (burst ÷ slots solves), which is what other clients'
// tails wait for: 40 made others' p99 4.5–7.5× of quiet in the spread
// flood, 10 1.1–1.4×. A client's requests beyond it wait their turn (at
// 20 a second), they are not refused.
const (
	DefaultScoringRate  = 20
	DefaultScoringBurst = 10
)

// The default rate of similar-song answers per client, cached or not. A
// cached answer costs ~55 µs of CPU, and a client looping on 64 cached
// songs took a quarter of a core and doubled everyone's p50 on two cores
// (docs/RELIABILITY.md, TestSimilarFloodCached); at 100 a second it takes
// about 1 %. A page asks for one list a click; a backend rendering song
// pages for many listeners through one token raises it.
const (
	DefaultSimilarRate  = 100
	DefaultSimilarBurst = 200
)

// scoringQueuedPerClient bounds one client's requests waiting for a
// scoring token (429 at once beyond): as many as the connections one
// address may hold by default (--max-conns-per-client), so it binds only a
// token spread over many addresses.
const scoringQueuedPerClient = 256

// Fair queuing of fold-ins (see fairSlots): one user runs at most
// foldInsPerUser at once and queues at most foldInsQueuedPerUser more. With
// requests for one user and history sharing one solve, a user needs more
// only for a second depth or a history that changed meanwhile.
const (
	foldInsPerUser       = 1
	foldInsQueuedPerUser = 4
	// foldInsQueuedPerClient bounds the requests one client (a token, else
	// an address) has waiting for a slot, however many users they are for
	// (or its ScoringBurst, if larger: New).
	foldInsQueuedPerClient = 32
)

func (c *Config) defaults() {
	if c.RedisTimeout <= 0 {
		c.RedisTimeout = 250 * time.Millisecond
	}
	if c.PostgresTimeout <= 0 {
		c.PostgresTimeout = 2 * time.Second
	}
	if c.FoldInTTL <= 0 {
		c.FoldInTTL = time.Hour
	}
	if c.FoldInDepth <= 0 {
		c.FoldInDepth = 20
	}
	if c.Explain < 0 {
		c.Explain = 0
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 5 * time.Second
	}
	if c.FoldInConcurrency <= 0 {
		c.FoldInConcurrency = 2 * runtime.GOMAXPROCS(0)
	}
	if c.SimilarConcurrency <= 0 {
		c.SimilarConcurrency = max(1, runtime.GOMAXPROCS(0)/2)
	}
	if c.FoldInMaxReactions == 0 {
		c.FoldInMaxReactions = DefaultFoldInMaxReactions
	}
}

// DefaultFoldInMaxReactions is the default cap on the reactions a fold-in
// reads: five times the 200 of the fold-in latency goal, so nearly every
// real history is read whole (docs/RELIABILITY.md measures what the cap
// changes for longer ones).
const DefaultFoldInMaxReactions = 1000

// MaxN bounds the n of a request.
const MaxN = 100

// Service answers recommendation requests. It is safe for concurrent use.
type Service struct {
	cfg     Config
	keys    KeySpace
	history History
	metrics *metrics.Metrics
	log     *slog.Logger
	holder  holder
	near    *nearCache
	// slots bounds concurrent fold-ins (each holds a PostgreSQL connection
	// and a core for about a millisecond), shared fairly between users:
	// beyond it requests queue until their deadline and then get 503,
	// instead of overloading both.
	slots *fairSlots
	// flights makes concurrent requests for the same fold-in share one
	// solve; epoch counts local invalidations (the flight key when Redis,
	// which knows when a user last reacted, does not answer).
	flights flights[flightKey, keyspace.FoldInRecord]
	epoch   atomic.Uint64
	// scoring is each client's bucket of scored answers (admitScoring);
	// nil: no limit.
	scoring *ratelimit.Buckets[string]
	// similarReads is each client's bucket of similar-song answers
	// (SimilarFiltered); nil: no limit.
	similarReads *ratelimit.Buckets[string]
	// simSlots and simFlights do for similar-song lists what slots and
	// flights do for fold-ins (similar.go).
	simSlots   *fairSlots
	simFlights flights[similarKey, similarList]
	// catalog is the system of record's catalog (history's); cat the
	// hidden set and metadata applied now (catalog.go), swapped under
	// catMu by a catalog change or a version load.
	catalog Catalog
	cat     atomic.Pointer[catalogState]
	catMu   sync.Mutex
	// catReload nudges Run to reload the catalog (a "catalog SEQ" event).
	catReload chan struct{}
}

// New builds a service; call Run to load the model and follow updates.
func New(cfg Config, keys KeySpace, history History, reg *metrics.Metrics, log *slog.Logger) *Service {
	cfg.defaults()
	// A client's burst of scored answers is let in at once: the slots
	// queue all of it rather than answer its tail 503.
	clientQueued := foldInsQueuedPerClient
	if cfg.ScoringRate > 0 {
		clientQueued = max(clientQueued, cfg.ScoringBurst)
	}
	s := &Service{cfg: cfg, keys: keys, history: history, metrics: reg, log: log, near: newNearCache(cfg.NearCacheBytes),
		slots:        newFairSlots(cfg.FoldInConcurrency, foldInsPerUser, foldInsQueuedPerUser, clientQueued),
		simSlots:     newFairSlots(cfg.SimilarConcurrency, foldInsPerUser, foldInsQueuedPerUser, clientQueued),
		scoring:      ratelimit.New[string](cfg.ScoringRate, cfg.ScoringBurst),
		similarReads: ratelimit.New[string](cfg.SimilarRate, cfg.SimilarBurst)}
	s.holder.reload = make(chan struct{}, 1)
	s.catReload = make(chan struct{}, 1)
	s.catalog = history
	return s
}

// NearCacheLen is the number of users in the near cache (for metrics).
func (s *Service) NearCacheLen() int { return s.near.len() }

// NearCacheBytes is the bytes the near cache holds (for metrics).
func (s *Service) NearCacheBytes() int64 { return s.near.used() }

// Answer is a rendered recommendation response, and what it showed.
type Answer struct {
	Body    []byte // JSON {user_id, model_version, arm, source, items}
	Version model.Version
	Source  setlist.Source
	Arm     setlist.Arm
	// Shown is the list the answer was cut from, in order, songs the
	// snapshot cannot name and hidden ones left out: for the stored batch
	// list or a cached fold-in the whole of it (so its positions do not
	// depend on the n asked), for a filtered answer what it answered.
	// What a like is attributed to (package exposure). Never modified.
	Shown []setlist.SongID
}

// ErrNoModel means no model version has been loaded yet.
var ErrNoModel = fmt.Errorf("no model is published yet: %w", setlist.ErrUnavailable)

// Recommend returns user u's top n songs. Every store read uses the one
// snapshot taken at the start, so an answer never mixes two versions. u must
// not alias a request buffer: it may be kept in the near cache. client
// names who asks (a token, else an address): fold-in slots are shared
// fairly between clients, then between users.
func (s *Service) Recommend(ctx context.Context, client string, u setlist.UserID, n int) (Answer, error) {
	return s.RecommendFiltered(ctx, client, u, n, nil)
}

// RecommendFiltered is Recommend under a request's filter f (nil or empty:
// none): the stored list when n of its songs pass, else the user scored
// against the allowed catalog. Filtered answers bypass the near cache (its
// key has no filter) and are not stored as the user's fold-in.
func (s *Service) RecommendFiltered(ctx context.Context, client string, u setlist.UserID, n int, f *Filter) (Answer, error) {
	if n < 1 || n > MaxN {
		return Answer{}, fmt.Errorf("n must be between 1 and %d, got %d: %w", MaxN, n, setlist.ErrInvalid)
	}
	snap, arm := s.assignment(u)
	if snap == nil {
		return Answer{}, ErrNoModel
	}
	if f.Active() {
		src, items, err := s.answerFiltered(ctx, client, snap, u, n, f)
		if err != nil {
			return Answer{}, err
		}
		body := snap.appendAnswer(make([]byte, 0, 128+96*len(items)), u, arm, src, items)
		s.metrics.Recommended(string(src))
		s.metrics.Filtered.WithLabelValues(string(src)).Inc()
		return Answer{Body: body, Version: snap.Version, Source: src, Arm: arm, Shown: snap.shownItems(items, nil)}, nil
	}
	if body, src, shown, ok := s.near.get(snap.Version, u, n); ok {
		s.metrics.NearCacheHits.Inc()
		s.metrics.Recommended(string(src))
		return Answer{Body: body, Version: snap.Version, Source: src, Arm: arm, Shown: shown}, nil
	}
	s.metrics.NearCacheMisses.Inc()
	gen := s.near.generation(u)
	src, items, shown, stopgap, err := s.answer(ctx, client, snap, u, n)
	if err != nil {
		return Answer{}, err
	}
	body := snap.appendAnswer(make([]byte, 0, 128+96*len(items)), u, arm, src, items)
	if !stopgap {
		s.near.put(gen, snap.Version, u, n, src, body, shown)
	}
	s.metrics.Recommended(string(src))
	return Answer{Body: body, Version: snap.Version, Source: src, Arm: arm, Shown: shown}, nil
}

// Assigned is the version and experiment arm u is served from now
// (assignment's), for attributing an opinion of a user no list was
// answered to.
func (s *Service) Assigned(u setlist.UserID) (model.Version, setlist.Arm) {
	snap, arm := s.assignment(u)
	return versionOf(snap), arm
}

// CurrentVersion is the version in use (0 before the first load).
func (s *Service) CurrentVersion() model.Version { return versionOf(s.holder.current()) }

// assignment is the one place that decides which loaded version u is served
// from and in which experiment arm: Recommend renders from it and a
// reaction's attribution looks up what u was shown in it, so the two can
// never disagree. With no experiment running every user is served the
// current version in ArmNone. snap is nil before the first load.
//
// While an experiment runs, the routing's salted hash of u picks the arm
// (internal/experiment: the same on every replica and after restarts); the
// challenger arm is served the challenger snapshot, loaded beside current
// by Refresh. Until the challenger is loaded (or if it cannot be) everyone
// stays on current in ArmNone, so no answer claims an arm it was not
// served from.
func (s *Service) assignment(u setlist.UserID) (snap *Snapshot, arm setlist.Arm) {
	cur := s.holder.current()
	ex := s.holder.exp.Load()
	if ex == nil || cur == nil {
		return cur, setlist.ArmNone
	}
	if ex.routing.Arm(u) == setlist.ArmChallenger {
		return ex.challenger, setlist.ArmChallenger
	}
	return cur, setlist.ArmControl
}

// answer decides where u's list comes from: the batch list when it is at
// least as new as u's last reaction and long enough; else a valid cached
// fold-in; else a fresh fold-in (or the popular list).
//
// stopgap is true when Redis did not answer: the fold-in stands in for a
// batch list that may well exist, so it must not be kept in the near cache.
// Nothing would drop it there when Redis returns (no event announces a
// recovered connection pool, and the events channel can be back while the
// pool still refuses to dial), and the user would be served the stand-in
// until they react or the version switches.
func (s *Service) answer(ctx context.Context, client string, snap *Snapshot, u setlist.UserID, n int) (src setlist.Source, items []model.Explained, shown []setlist.SongID, stopgap bool, err error) {
	rctx, cancel := callContext(ctx, s.cfg.RedisTimeout)
	st, err := s.keys.UserState(rctx, snap.Version, u)
	cancel()
	redisOK := err == nil
	if err != nil {
		// Redis is a cache of what PostgreSQL and the in-memory model can
		// recompute: answer by fold-in rather than fail (bounded by the
		// fold-in slots, so a slow Redis cannot turn every request into a
		// solve). Counted, not logged: it would be a line per request.
		s.metrics.StoreError("redis", "user_state")
	}
	cat := s.cat.Load()
	sv := newSieve(snap, cat, nil)
	batch, cached := pick(snap, st, redisOK, n, time.Now(), sv)
	if batch != nil {
		return setlist.SourceBatch, batch, snap.shownRecs(st.Recs, cat), false, nil
	}
	if cached != nil {
		s.metrics.FoldInCache.WithLabelValues("hit").Inc()
		return cached.Source, cached.Items, snap.shownItems(st.FoldIn.Items, cat), false, nil
	}
	s.metrics.FoldInCache.WithLabelValues("miss").Inc()
	if st.Recs == nil && st.FoldIn == nil && st.Touched == 0 {
		// Redis knows nothing of u (every user the batch trained on has a
		// list, every one created or reacting through serve a mark): u
		// may not exist. Ask with one indexed lookup before taking a
		// fold-in slot, so made-up ids cost no slot and no history read.
		pctx, cancel := callContext(ctx, s.cfg.PostgresTimeout)
		_, err := s.history.User(pctx, u)
		cancel()
		if errors.Is(err, setlist.ErrNotFound) {
			s.metrics.FoldIns.WithLabelValues("unknown_user").Inc()
			return "", nil, nil, false, fmt.Errorf("recommend for %q: %w", u, err)
		}
		if err != nil {
			s.metrics.StoreError("postgres", "user")
			return "", nil, nil, false, fmt.Errorf("recommend for %q: %w", u, err)
		}
	}
	// Two depths only, so n cannot be varied to start many solves of one
	// user: the configured depth, or all MaxN for larger n.
	depth := s.cfg.FoldInDepth
	if n > depth {
		depth = MaxN
	}
	key := flightKey{version: snap.Version, user: u, touched: st.Touched, depth: depth, catalog: seqOf(cat)}
	if !redisOK {
		key.epoch = s.epoch.Load()
	}
	if !s.flights.running(key) {
		if err := s.admitScoring(ctx, client, "foldin"); err != nil {
			return "", nil, nil, false, fmt.Errorf("recommend for %q: %w", u, err)
		}
	}
	rec, shared, err := s.flights.do(ctx, key, func() (keyspace.FoldInRecord, error) {
		rec, err := s.foldIn(ctx, client, snap, u, depth, sv)
		if err != nil {
			return rec, err
		}
		rec.Touched = st.Touched
		rec.Catalog = seqOf(cat)
		if redisOK {
			// Stored before the flight ends, so a request that misses the
			// flight finds it in Redis.
			wctx, cancel := callContext(ctx, s.cfg.RedisTimeout)
			if err := s.keys.StoreFoldIn(wctx, snap.Version, u, rec, s.cfg.FoldInTTL); err != nil {
				s.metrics.StoreError("redis", "store_foldin") // the answer is still right; the next one recomputes
			}
			cancel()
		}
		return rec, nil
	})
	if shared {
		s.metrics.FoldIns.WithLabelValues("shared").Inc()
	}
	if errors.Is(err, errFlightWait) {
		err = fmt.Errorf("recommend for %q: the fold-in: %w", u, err)
	}
	if err != nil {
		if errors.Is(err, ErrBusy) {
			s.metrics.FoldIns.WithLabelValues("busy").Inc()
		}
		return "", nil, nil, false, err
	}
	// The record was solved without the hidden songs of its sequence; a
	// flight shared across a catalog change is filtered again.
	items, _ = sv.take(rec.Items, n)
	return rec.Source, items, snap.shownItems(rec.Items, cat), !redisOK, nil
}

func seqOf(c *catalogState) int64 {
	if c == nil {
		return 0
	}
	return c.seq
}

// answerFiltered answers under a request's filter: the batch list when it
// is fresh and n of its songs pass, else the cached fold-in when n of its
// songs pass (or it is complete), else u scored now against the allowed
// catalog (a fold-in excluding every song that fails the filter), which is
// neither cached nor shared: it is specific to the filter.
func (s *Service) answerFiltered(ctx context.Context, client string, snap *Snapshot, u setlist.UserID, n int, f *Filter) (setlist.Source, []model.Explained, error) {
	rctx, cancel := callContext(ctx, s.cfg.RedisTimeout)
	st, err := s.keys.UserState(rctx, snap.Version, u)
	cancel()
	redisOK := err == nil
	if err != nil {
		s.metrics.StoreError("redis", "user_state")
	}
	sv := newSieve(snap, s.cat.Load(), f)
	batch, cached := pick(snap, st, redisOK, n, time.Now(), sv)
	if batch != nil {
		return setlist.SourceBatch, batch, nil
	}
	if cached != nil {
		return cached.Source, cached.Items, nil
	}
	if err := s.admitScoring(ctx, client, "filtered"); err != nil {
		return "", nil, fmt.Errorf("recommend for %q: %w", u, err)
	}
	// MaxPerArtist needs a deeper list than n; one more pass over the
	// whole catalog if even that ran short.
	depth := n
	if f.MaxPerArtist > 0 {
		depth = 4 * n
	}
	for {
		rec, err := s.foldIn(ctx, client, snap, u, depth, sv)
		if err != nil {
			return "", nil, err
		}
		items, ok := sv.take(rec.Items, n)
		all := snap.Published.Catalog.Len()
		if ok || rec.Complete || depth >= all {
			return rec.Source, items, nil
		}
		depth = all
	}
}

// pick is the answer's rules over what Redis holds for u under snap (st;
// redisOK false when it did not answer): the batch list when it is fresh
// and holds n songs, else the cached fold-in (or popular) list when it is
// fresh and deep enough for n; neither means a fold-in must be solved.
// Freshness is keyspace's rule (UserState.FreshBatch, FreshFoldIn); depth
// and the sieve are the answer's. Recommend and Shown
// both decide by it, so an attribution looks at exactly the list an answer
// would be rendered from.
//
// sv leaves out hidden songs (and a request's filtered ones): a list is
// used when n of its songs pass, so a takedown never runs an answer short;
// batch is then those n songs, and cached a copy of the record holding
// them.
func pick(snap *Snapshot, st keyspace.UserState, redisOK bool, n int, now time.Time, sv *sieve) (batch []model.Explained, cached *keyspace.FoldInRecord) {
	if redisOK && len(st.Recs) >= n && st.FreshBatch(snap.snapshotSeq, snap.snapshotNanos, now) {
		if items, ok := sv.takeRecs(st.Recs, n); ok {
			return items, nil
		}
	}
	if f := st.FreshFoldIn(seqOf(sv.cat)); f != nil && (len(f.Items) >= n || f.Complete) {
		if items, ok := sv.take(f.Items, n); ok || f.Complete {
			c := *f
			c.Items = items
			return nil, &c
		}
	}
	return nil, nil
}

// ErrThrottled means a client asked for scored answers faster than its
// --scoring-rate, or for similar songs faster than its --similar-rate: a
// 429 with Retry-After (the error also wraps a *ratelimit.LimitedError
// saying when).
var ErrThrottled = errors.New("this client asks for scored answers (fold-ins, similar songs, filtered answers) or similar songs faster than its rate")

// admitScoring spends one of client's scoring tokens before a request
// scores (work: foldin, filtered or similar), waiting for one while the
// client is over its rate (ratelimit.Buckets.Wait): up to its deadline,
// then ErrThrottled. Fair slots share the scoring capacity between clients
// at any one moment; this bounds what one client takes over time, so a
// client sending requests back to back, each a different user or song,
// cannot keep the cores busy however few of its requests run at once.
//
// It is called before a request starts a flight, so a throttled request
// never leads one that other clients' requests wait for; a token pays for
// a computation, not a request: a request that shares a running flight
// spends none, nor do answers from a cache (the batch list, a cached
// fold-in or similar list, the near cache) and existence checks.
func (s *Service) admitScoring(ctx context.Context, client, work string) error {
	return s.admit(ctx, s.scoring, client, work)
}

// admit spends one of client's tokens of b, waiting for one while the
// client is over its rate, up to its deadline, then ErrThrottled; the
// outcome is counted under work.
func (s *Service) admit(ctx context.Context, b *ratelimit.Buckets[string], client, work string) error {
	waited, err := b.Wait(ctx, client, scoringQueuedPerClient)
	if o := ratelimit.Outcome(waited, err); o != "" {
		s.metrics.Throttled.WithLabelValues(work, o).Inc()
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrThrottled, err)
	}
	return nil
}

// foldIn reads u's reactions (at most FoldInMaxReactions, the strongest
// first) and solves their vector against the snapshot's item factors; with
// no usable reaction it falls back to the popular list, minus what u reacted
// to either way. When the history was cut, the ids of every song u reacted
// to are read too (an index-only scan, no rows decoded but the ids), so a
// song from the rest of the history is never recommended back.
//
// sv's excluded songs (hidden ones, and a request filter's) are left out of
// the ranking, so the list holds n allowed songs whenever the catalog has
// them.
func (s *Service) foldIn(ctx context.Context, client string, snap *Snapshot, u setlist.UserID, n int, sv *sieve) (keyspace.FoldInRecord, error) {
	slot := "user " + string(u)
	if err := s.slots.acquire(ctx, client, slot); err != nil {
		return keyspace.FoldInRecord{}, fmt.Errorf("recommend for %q: %w", u, err)
	}
	defer s.slots.release(slot)
	start := time.Now()
	pctx, cancel := callContext(ctx, s.cfg.PostgresTimeout)
	reactions, err := s.history.UserReactions(pctx, u, s.cfg.FoldInMaxReactions)
	var also []setlist.SongID
	if err == nil && s.cfg.FoldInMaxReactions > 0 && len(reactions) >= s.cfg.FoldInMaxReactions {
		if also, err = s.history.ReactedSongs(pctx, u); err != nil {
			err = fmt.Errorf("the songs of a history longer than --foldin-max-reactions: %w", err)
		}
	}
	cancel()
	if err != nil {
		if errors.Is(err, setlist.ErrNotFound) {
			s.metrics.FoldIns.WithLabelValues("unknown_user").Inc()
		} else {
			s.metrics.StoreError("postgres", "user_reactions")
		}
		return keyspace.FoldInRecord{}, fmt.Errorf("recommend for %q: %w", u, err)
	}
	s.metrics.FoldIns.WithLabelValues("solved").Inc()
	s.metrics.FoldInDuration.WithLabelValues("postgres_read").Observe(time.Since(start).Seconds())
	depth := max(n, s.cfg.FoldInDepth)
	excluded := sv.excluded()
	if len(excluded) > 0 {
		also = append(slices.Clip(also), excluded...)
	}
	items, t, err := snap.Published.FoldInExcluding(reactions, also, depth, s.cfg.Explain)
	if errors.Is(err, model.ErrNoSignal) {
		reacted := make(map[setlist.SongID]bool, len(reactions)+len(also))
		for _, r := range reactions {
			reacted[r.Song] = true
		}
		for _, song := range also {
			reacted[song] = true
		}
		pop := snap.Published.PopularFor(reacted, depth)
		items = make([]model.Explained, len(pop))
		for i, r := range pop {
			items[i].Rec = r
		}
		return keyspace.FoldInRecord{Source: setlist.SourcePopular, Complete: len(items) < depth, Items: items}, nil
	}
	if err != nil {
		return keyspace.FoldInRecord{}, fmt.Errorf("recommend for %q: %w", u, err)
	}
	h := s.metrics.FoldInDuration
	h.WithLabelValues("solve").Observe(t.Solve.Seconds())
	h.WithLabelValues("recommend").Observe(t.Recommend.Seconds())
	h.WithLabelValues("explain").Observe(t.Explain.Seconds())
	h.WithLabelValues("total").Observe(time.Since(start).Seconds())
	return keyspace.FoldInRecord{Source: setlist.SourceFoldIn, Complete: len(items) < depth, Items: items}, nil
}

// Reacted records that u's reactions changed, by the write numbered seq
// (see store.SeqBase), after the write committed: u's answers here are
// dropped at once, and the store marks the user touched and tells the other
// replicas.
func (s *Service) Reacted(ctx context.Context, u setlist.UserID, seq int64) error {
	s.epoch.Add(1)
	s.near.invalidate(u)
	var v model.Version
	if snap, _ := s.assignment(u); snap != nil {
		v = snap.Version // the version whose cached fold-in of u is now stale
	}
	rctx, cancel := callContext(ctx, s.cfg.RedisTimeout)
	defer cancel()
	if err := s.keys.Touch(rctx, v, u, seq); err != nil {
		s.metrics.StoreError("redis", "touch")
		return fmt.Errorf("mark %q touched and tell the other replicas: %w", u, err)
	}
	return nil
}

// Current is the snapshot in use, or nil before the first load.
func (s *Service) Current() *Snapshot { return s.holder.current() }

// callContext bounds one store call by d and by ctx's deadline, whichever
// comes first. It derives from context.WithoutCancel(ctx) so the child does
// not register with its parent: on the hot path that registration (a lock
// and a map insert per call) cost more than the Redis command's own
// bookkeeping. Request contexts here end only by their deadline (fasthttp
// never cancels them), which the earlier deadline already covers.
func callContext(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	deadline := time.Now().Add(d)
	if parent, ok := ctx.Deadline(); ok && parent.Before(deadline) {
		deadline = parent
	}
	return context.WithDeadline(context.WithoutCancel(ctx), deadline)
}
