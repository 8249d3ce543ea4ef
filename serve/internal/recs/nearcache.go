package recs

import (
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/batch/model"
)

// nearCache keeps rendered answers in process, keyed by user, so a repeated
// request costs no Redis round trip. A published version never changes, so
// an answer stays right until the user reacts (an event on any replica drops
// it) or the version switches (everything is dropped). It is a sharded LRU of
// fixed capacity: memory is bounded however many users ask.
type nearCache struct {
	shards []cacheShard
	seed   maphash.Seed
	size   atomic.Int64
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
	capacity int
	entries  map[setlist.UserID]*cacheEntry
	head     cacheEntry // sentinel of the LRU ring: head.next is the most recent
}

type cacheEntry struct {
	user       setlist.UserID
	version    model.Version
	variants   [maxVariants]variant
	nv         int
	prev, next *cacheEntry
}

type variant struct {
	n      int
	source setlist.Source
	body   []byte
}

// newNearCache holds answers for up to capacity users (0 disables it).
func newNearCache(capacity int) *nearCache {
	if capacity <= 0 {
		return &nearCache{}
	}
	shards := 64
	for shards > 1 && capacity/shards < 16 {
		shards /= 2
	}
	c := &nearCache{shards: make([]cacheShard, shards), seed: maphash.MakeSeed()}
	for i := range c.shards {
		s := &c.shards[i]
		s.capacity = max(capacity/shards, 1)
		s.entries = make(map[setlist.UserID]*cacheEntry, s.capacity)
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
func (c *nearCache) get(v model.Version, u setlist.UserID, n int) (body []byte, src setlist.Source, ok bool) {
	s := c.shard(u)
	if s == nil {
		return nil, "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[u]
	if e == nil || e.version != v {
		return nil, "", false
	}
	for _, va := range e.variants[:e.nv] {
		if va.n == n {
			s.moveFront(e)
			return va.body, va.source, true
		}
	}
	return nil, "", false
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
func (c *nearCache) put(gen uint64, v model.Version, u setlist.UserID, n int, src setlist.Source, body []byte) {
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
		e.nv = 0
		e.version = v
	}
	if e == nil {
		if len(s.entries) >= s.capacity {
			old := s.head.prev
			s.unlink(old)
			delete(s.entries, old.user)
			c.size.Add(-1)
		}
		e = &cacheEntry{user: u, version: v}
		s.entries[u] = e
		s.pushFront(e)
		c.size.Add(1)
	} else {
		s.moveFront(e)
	}
	for i := range e.variants[:e.nv] {
		if e.variants[i].n == n {
			e.variants[i] = variant{n, src, body}
			return
		}
	}
	if e.nv < maxVariants {
		e.nv++
	} else {
		copy(e.variants[:], e.variants[1:]) // drop the oldest variant
	}
	e.variants[e.nv-1] = variant{n, src, body}
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
		s.unlink(e)
		delete(s.entries, u)
		c.size.Add(-1)
	}
}

// clear drops everything (a version switch, or events may have been lost).
func (c *nearCache) clear() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		s.gen++
		c.size.Add(-int64(len(s.entries)))
		clear(s.entries)
		s.head.prev, s.head.next = &s.head, &s.head
		s.mu.Unlock()
	}
}

// len is the number of users cached.
func (c *nearCache) len() int { return int(c.size.Load()) }

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
