package recs

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/setlist/setlist"
)

func TestNearCache(t *testing.T) {
	const bound = 64 * (entryOverhead + 16) // about 64 users with a one-byte answer
	c := newNearCache(bound)
	if c.put(c.generation("x"), 1, "x", 5, setlist.SourceBatch, []byte("x"), nil); c.len() != 0 {
		t.Fatal("the cache stored an answer before the events channel was up")
	}
	c.trust(true)
	g := c.generation("ana")
	c.put(g, 1, "ana", 5, setlist.SourceBatch, []byte("a5"), nil)
	c.put(g, 1, "ana", 10, setlist.SourceFoldIn, []byte("a10"), nil)
	if b, src, _, ok := c.get(1, "ana", 5); !ok || string(b) != "a5" || src != setlist.SourceBatch {
		t.Fatalf("get(ana, 5) = %q %s %v", b, src, ok)
	}
	if _, _, _, ok := c.get(2, "ana", 5); ok {
		t.Fatal("an answer of version 1 served for version 2")
	}
	if _, _, _, ok := c.get(1, "ana", 6); ok {
		t.Fatal("an answer for n=5 served for n=6")
	}

	// A fill that started before an invalidation is refused.
	stale := c.generation("bob")
	c.invalidate("bob")
	c.put(stale, 1, "bob", 5, setlist.SourceBatch, []byte("old"), nil)
	if _, _, _, ok := c.get(1, "bob", 5); ok {
		t.Fatal("a fill computed before an invalidation was kept")
	}
	c.invalidate("ana")
	if _, _, _, ok := c.get(1, "ana", 5); ok {
		t.Fatal("invalidate kept the answer")
	}

	// Bounded: a flood of users never grows it past capacity.
	for i := range 10000 {
		u := setlist.UserID(fmt.Sprint("u", i))
		c.put(c.generation(u), 1, u, 5, setlist.SourceBatch, []byte("x"), nil)
	}
	if n, used := c.len(), c.used(); used > bound || n < 32 {
		t.Fatalf("%d users in %d bytes after 10000 users; want about 64 in at most %d", n, used, bound)
	}
	// The most recent user survives; the first was evicted.
	if _, _, _, ok := c.get(1, "u9999", 5); !ok {
		t.Fatal("the most recent entry was evicted")
	}
	if _, _, _, ok := c.get(1, "u0", 5); ok {
		t.Fatal("the oldest entry was not evicted")
	}
	c.clear()
	if c.len() != 0 || c.used() != 0 {
		t.Fatalf("len = %d, %d bytes after clear", c.len(), c.used())
	}

	// Many n per user stay bounded too.
	for n := range 20 {
		c.put(c.generation("v"), 1, "v", n+1, setlist.SourceBatch, []byte("x"), nil)
	}
	if _, _, _, ok := c.get(1, "v", 20); !ok {
		t.Fatal("the latest variant is missing")
	}
	if _, _, _, ok := c.get(1, "v", 1); ok {
		t.Fatal("variants are not bounded")
	}

	c.trust(false)
	if _, _, _, ok := c.get(1, "v", 20); ok || c.len() != 0 {
		t.Fatal("the cache answered while the events channel was down")
	}

	off := newNearCache(0)
	off.trust(true)
	off.put(off.generation("x"), 1, "x", 5, setlist.SourceBatch, []byte("x"), nil)
	if _, _, _, ok := off.get(1, "x", 5); ok {
		t.Fatal("a disabled cache answered")
	}
}

// TestNearCacheBytesBound fills a cache bounded at 8 MiB with ten times that
// in answers, large (four n of 97 to 100, the 34 KB a user) and
// small (n=5), and checks the bound holds in the heap, not only in the
// cache's own count: the live heap after a GC grows by about the bytes
// charged, and never past the bound plus allocator rounding.
func TestNearCacheBytesBound(t *testing.T) {
	for _, tc := range []struct {
		name      string
		users, ns int
		body      int // bytes of each answer
		capacity  int // its buffer's capacity, as Recommend allocates it
	}{
		{"n=97..100", 2000, 4, 8200, 128 + 96*100},
		{"n=5", 100000, 1, 700, 128 + 96*5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const bound = 8 << 20
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			c := newNearCache(bound)
			c.trust(true)
			for i := range tc.users {
				u := setlist.UserID(fmt.Sprintf("user-%08d", i))
				for n := range tc.ns {
					body := append(make([]byte, 0, max(tc.capacity, tc.body)), make([]byte, tc.body)...)
					c.put(c.generation(u), 1, u, 97+n, setlist.SourceFoldIn, body, nil)
				}
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
			used := c.used()
			t.Logf("%d users cached, %d bytes charged, live heap grew %d bytes (%d per user)", c.len(), used, grew, grew/int64(max(c.len(), 1)))
			if used > bound {
				t.Fatalf("charged %d bytes, over the %d bound", used, bound)
			}
			if used < bound*3/4 {
				t.Fatalf("charged %d bytes of %d: the cache is not using its bound", used, bound)
			}
			if grew > bound*5/4 {
				t.Fatalf("the live heap grew %d bytes for a %d-byte bound: entries cost more than they are charged", grew, bound)
			}
			if grew < used*3/4 {
				t.Fatalf("the live heap grew %d bytes but %d were charged: entries are overcharged", grew, used)
			}
			runtime.KeepAlive(c)
		})
	}
}

func BenchmarkNearCacheGet(b *testing.B) {
	c := newNearCache(64 << 20)
	c.trust(true)
	users := make([]setlist.UserID, 10000)
	for i := range users {
		users[i] = setlist.UserID(fmt.Sprint("user-", i))
		c.put(c.generation(users[i]), 1, users[i], 5, setlist.SourceBatch, []byte("x"), nil)
	}
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			c.get(1, users[i%len(users)], 5)
			i++
		}
	})
}
