package recs

import (
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/memlimit"
	"github.com/setlist/setlist/internal/model"
)

// nearCache keeps rendered answers in process, keyed by user, so a repeated
// request costs no Redis round trip. A published version never changes, so
// an answer stays right until the user reacts (an event on any replica drops
// it) or the version switches (everything is dropped). It is a sharded LRU
// bounded by bytes, each entry charged what it really holds (entryCost): an
// answer for n=100 is a hundred times one for n=1, so a bound in users let
// a client asking for large n grow memory past the pod's limit.
type nearCache struct {
	shards []cacheShard
	seed   maphash.Seed
	size   atomic.Int64
	bytes  atomic.Int64
	// trusted is false while the events channel is down (and before it is
	// first up): invalidations could be missed, so nothing is served or
	// stored.
	trusted atomic.Bool
}

// maxVariants bounds the answers kept per user (one per distinct n asked).
const maxVariants = 4

type cacheShard struct {
	mu       sync.Mutex
	gen      uint64 // bumped by every invalidation; fills started before are refused
	capacity int64  // bytes
	used     int64  // bytes charged for the entries held
	entries  map[setlist.UserID]*cacheEntry
	head     cacheEntry // sentinel of the LRU ring: head.next is the most recent
}

type cacheEntry struct {
	user       setlist.UserID
	version    model.Version
	variants   [maxVariants]variant
	nv         int
	cost       int64 // bytes charged: entryCost
	prev, next *cacheEntry
}

type variant struct {
	n      int
	source setlist.Source
	body   []byte
	shown  []setlist.SongID // the answer's Shown (charged with the body)
}

// entryOverhead is what an entry costs besides its user id and bodies: the
// cacheEntry itself (248 bytes, allocated in the 256-byte size class) and
// its share of the shard's map (a slot of key header and pointer, at the
// map's load factor and growth slack: about 64 bytes).
const entryOverhead = 256 + 64

// entryCost is the heap an entry holds: the overhead, its user id's bytes
// and the capacity (not the length) of every body and shown list it keeps.
func (e *cacheEntry) entryCost() int64 {
	n := int64(entryOverhead + len(e.user))
	for _, va := range e.variants[:e.nv] {
		n += int64(cap(va.body)) + 8*int64(cap(va.shown))
	}
	return n
}

// minShardBytes keeps shards large enough for a few of the largest answers
// (an n=100 answer with explanations is about 16 KB).
const minShardBytes = 256 << 10

// newNearCache holds answers up to maxBytes in all (0 disables it).
func newNearCache(maxBytes int64) *nearCache {
	if maxBytes <= 0 {
		return &nearCache{}
	}
	shards := 64
	for shards > 1 && maxBytes/int64(shards) < minShardBytes {
		shards /= 2
	}
	c := &nearCache{shards: make([]cacheShard, shards), seed: maphash.MakeSeed()}
	for i := range c.shards {
		s := &c.shards[i]
		s.capacity = maxBytes / int64(shards)
		s.entries = make(map[setlist.UserID]*cacheEntry)
		s.head.prev, s.head.next = &s.head, &s.head
	}
	return c
}

// trust switches the cache on (events flowing) or off. Either switch clears
// it and refuses fills begun before: they read Redis at a time when an
// invalidation could have been missed.
func (c *nearCache) trust(ok bool) {
	if c.trusted.Swap(ok) != ok {
		c.clear()
	}
}

func (c *nearCache) shard(u setlist.UserID) *cacheShard {
	if len(c.shards) == 0 || !c.trusted.Load() {
		return nil
	}
	return &c.shards[maphash.String(c.seed, string(u))%uint64(len(c.shards))]
}

// get returns the answer for (v, u, n) if cached.
func (c *nearCache) get(v model.Version, u setlist.UserID, n int) (body []byte, src setlist.Source, shown []setlist.SongID, ok bool) {
	s := c.shard(u)
	if s == nil {
		return nil, "", nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[u]
	if e == nil || e.version != v {
		return nil, "", nil, false
	}
	for _, va := range e.variants[:e.nv] {
		if va.n == n {
			s.moveFront(e)
			return va.body, va.source, va.shown, true
		}
	}
	return nil, "", nil, false
}

// generation is read before computing an answer and passed to put, which
// refuses the answer if u's shard was invalidated in between: the answer may
// predate the reaction that caused the invalidation.
func (c *nearCache) generation(u setlist.UserID) uint64 {
	s := c.shard(u)
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen
}

// put stores an answer computed after generation(u) returned gen.
func (c *nearCache) put(gen uint64, v model.Version, u setlist.UserID, n int, src setlist.Source, body []byte, shown []setlist.SongID) {
	s := c.shard(u)
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != gen {
		return
	}
	e := s.entries[u]
	if e != nil && e.version != v {
		clear(e.variants[:e.nv])
		e.nv = 0
		e.version = v
	}
	if e == nil {
		e = &cacheEntry{user: u, version: v}
		s.entries[u] = e
		s.pushFront(e)
		c.size.Add(1)
	} else {
		s.moveFront(e)
	}
	e.setVariant(variant{n, src, body, shown})
	cost := e.entryCost()
	s.used += cost - e.cost
	c.bytes.Add(cost - e.cost)
	e.cost = cost
	// Evict from the cold end until the shard fits its bytes; an answer
	// too large for the shard on its own is not kept at all.
	for s.used > s.capacity {
		s.remove(c, s.head.prev)
	}
}

func (e *cacheEntry) setVariant(va variant) {
	for i := range e.variants[:e.nv] {
		if e.variants[i].n == va.n {
			e.variants[i] = va
			return
		}
	}
	if e.nv < maxVariants {
		e.nv++
	} else {
		copy(e.variants[:], e.variants[1:]) // drop the oldest variant
	}
	e.variants[e.nv-1] = va
}

// remove drops e from the shard and uncharges it.
func (s *cacheShard) remove(c *nearCache, e *cacheEntry) {
	s.unlink(e)
	delete(s.entries, e.user)
	s.used -= e.cost
	c.bytes.Add(-e.cost)
	c.size.Add(-1)
}

// invalidate drops u's answers and refuses fills that started before.
func (c *nearCache) invalidate(u setlist.UserID) {
	s := c.shard(u)
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	if e := s.entries[u]; e != nil {
		s.remove(c, e)
	}
}

// clear drops everything (a version switch, or events may have been lost).
func (c *nearCache) clear() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		s.gen++
		c.size.Add(-int64(len(s.entries)))
		c.bytes.Add(-s.used)
		s.used = 0
		// A new map: clear keeps the old one's buckets, sized for the
		// largest population it ever had.
		s.entries = make(map[setlist.UserID]*cacheEntry)
		s.head.prev, s.head.next = &s.head, &s.head
		s.mu.Unlock()
	}
}

// len is the number of users cached.
func (c *nearCache) len() int { return int(c.size.Load()) }

// used is the bytes charged for what is cached.
func (c *nearCache) used() int64 { return c.bytes.Load() }

func (s *cacheShard) unlink(e *cacheEntry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (s *cacheShard) pushFront(e *cacheEntry) {
	e.prev, e.next = &s.head, s.head.next
	s.head.next.prev = e
	s.head.next = e
}

func (s *cacheShard) moveFront(e *cacheEntry) {
	if s.head.next == e {
		return
	}
	s.unlink(e)
	s.pushFront(e)
}

// AutoNearCacheBytes is the near cache's default bound: an eighth of the
// process's memory limit (GOMEMLIMIT, else the cgroup's memory.max), so the
// cache, the model and request garbage fit the pod together; 256 MiB when
// neither is set. limit is what it was derived from (0: none found).
func AutoNearCacheBytes() (bytes, limit int64) {
	limit = memlimit.Process()
	if limit <= 0 {
		return 256 << 20, 0
	}
	return limit / 8, limit
}
