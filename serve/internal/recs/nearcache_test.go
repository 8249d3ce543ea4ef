package recs

import (
	"fmt"
	"testing"

	"github.com/setlist/setlist"
)

func TestNearCache(t *testing.T) {
	c := newNearCache(64)
	if c.put(c.generation("x"), 1, "x", 5, setlist.SourceBatch, []byte("x")); c.len() != 0 {
		t.Fatal("the cache stored an answer before the events channel was up")
	}
	c.trust(true)
	g := c.generation("ana")
	c.put(g, 1, "ana", 5, setlist.SourceBatch, []byte("a5"))
	c.put(g, 1, "ana", 10, setlist.SourceFoldIn, []byte("a10"))
	if b, src, ok := c.get(1, "ana", 5); !ok || string(b) != "a5" || src != setlist.SourceBatch {
		t.Fatalf("get(ana, 5) = %q %s %v", b, src, ok)
	}
	if _, _, ok := c.get(2, "ana", 5); ok {
		t.Fatal("an answer of version 1 served for version 2")
	}
	if _, _, ok := c.get(1, "ana", 6); ok {
		t.Fatal("an answer for n=5 served for n=6")
	}

	// A fill that started before an invalidation is refused.
	stale := c.generation("bob")
	c.invalidate("bob")
	c.put(stale, 1, "bob", 5, setlist.SourceBatch, []byte("old"))
	if _, _, ok := c.get(1, "bob", 5); ok {
		t.Fatal("a fill computed before an invalidation was kept")
	}
	c.invalidate("ana")
	if _, _, ok := c.get(1, "ana", 5); ok {
		t.Fatal("invalidate kept the answer")
	}

	// Bounded: a flood of users never grows it past capacity.
	for i := range 10000 {
		u := setlist.UserID(fmt.Sprint("u", i))
		c.put(c.generation(u), 1, u, 5, setlist.SourceBatch, []byte("x"))
	}
	if n := c.len(); n > 64 || n < 32 {
		t.Fatalf("len = %d after 10000 users, want about the capacity 64", n)
	}
	// The most recent user survives; the first was evicted.
	if _, _, ok := c.get(1, "u9999", 5); !ok {
		t.Fatal("the most recent entry was evicted")
	}
	if _, _, ok := c.get(1, "u0", 5); ok {
		t.Fatal("the oldest entry was not evicted")
	}
	c.clear()
	if c.len() != 0 {
		t.Fatalf("len = %d after clear", c.len())
	}

	// Many n per user stay bounded too.
	for n := range 20 {
		c.put(c.generation("v"), 1, "v", n+1, setlist.SourceBatch, []byte("x"))
	}
	if _, _, ok := c.get(1, "v", 20); !ok {
		t.Fatal("the latest variant is missing")
	}
	if _, _, ok := c.get(1, "v", 1); ok {
		t.Fatal("variants are not bounded")
	}

	c.trust(false)
	if _, _, ok := c.get(1, "v", 20); ok || c.len() != 0 {
		t.Fatal("the cache answered while the events channel was down")
	}

	off := newNearCache(0)
	off.trust(true)
	off.put(off.generation("x"), 1, "x", 5, setlist.SourceBatch, []byte("x"))
	if _, _, ok := off.get(1, "x", 5); ok {
		t.Fatal("a disabled cache answered")
	}
}

func BenchmarkNearCacheGet(b *testing.B) {
	c := newNearCache(100000)
	c.trust(true)
	users := make([]setlist.UserID, 10000)
	for i := range users {
		users[i] = setlist.UserID(fmt.Sprint("user-", i))
		c.put(c.generation(users[i]), 1, users[i], 5, setlist.SourceBatch, []byte("x"))
	}
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			c.get(1, users[i%len(users)], 5)
			i++
		}
	})
}
