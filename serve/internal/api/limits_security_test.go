package api

import (
	"net/netip"
	"testing"
	"time"
)

// TestWriteLimiterBuckets checks the token bucket arithmetic and that the
// buckets' memory stays bounded under a flood of distinct sources.
func TestWriteLimiterBuckets(t *testing.T) {
	now := time.Unix(1000, 0)
	l := newBucketLimiter(2, 3)
	l.now = func() time.Time { return now }
	a := netip.MustParseAddr("192.0.2.1")
	for i := range 3 {
		if ok, _ := l.take(a); !ok {
			t.Fatalf("request %d within the burst was refused", i+1)
		}
	}
	ok, wait := l.take(a)
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("4th request: ok %v, wait %v; want refused, 500ms until a token", ok, wait)
	}
	if ok, _ := l.take(netip.MustParseAddr("192.0.2.2")); !ok {
		t.Fatal("another client shares the first one's bucket")
	}
	now = now.Add(500 * time.Millisecond)
	if ok, _ := l.take(a); !ok {
		t.Fatal("no token after 1/rate")
	}
	if newBucketLimiter(0, 10) != nil {
		t.Fatal("rate 0 should disable the limiter")
	}

	// A flood of distinct addresses, all still draining (not evictable as
	// refilled), must not grow the map past maxBuckets.
	for i := range 2 * maxBuckets {
		var b [16]byte
		b[0], b[1] = 0x20, 0x01
		b[12], b[13], b[14], b[15] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
		l.take(netip.AddrFrom16(b))
	}
	if n := l.len(); n > maxBuckets {
		t.Fatalf("%d buckets after a flood, want ≤ %d", n, maxBuckets)
	}
	// Once time passes, refilled buckets are the ones evicted: the next
	// eviction drops them all, not an arbitrary tenth.
	now = now.Add(time.Hour)
	for i := 0; ; i++ {
		before := l.len()
		l.take(netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)}))
		if n := l.len(); n < before {
			if n > i+1 {
				t.Fatalf("eviction after an hour idle left %d buckets, want only the %d new clients'", n, i+1)
			}
			break
		}
		if i > maxBuckets {
			t.Fatal("no eviction at the bound")
		}
	}
}

func TestParseTrustedProxies(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
		ok   bool
	}{
		{"", nil, true},
		{"10.0.0.0/8, 127.0.0.1", []string{"10.0.0.0/8", "127.0.0.1/32"}, true},
		{"::1,fd00::/8", []string{"::1/128", "fd00::/8"}, true},
		{"10.0.0.1/8", []string{"10.0.0.0/8"}, true},
		{"proxy.internal", nil, false},
		{"10.0.0.0/33", nil, false},
	} {
		got, err := ParseTrustedProxies([]string{c.in})
		if (err == nil) != c.ok {
			t.Errorf("%q: err %v, want ok=%v", c.in, err, c.ok)
			continue
		}
		var s []string
		for _, p := range got {
			s = append(s, p.String())
		}
		if c.ok && len(s) != len(c.want) {
			t.Errorf("%q: %v, want %v", c.in, s, c.want)
			continue
		}
		for i := range s {
			if s[i] != c.want[i] {
				t.Errorf("%q: %v, want %v", c.in, s, c.want)
			}
		}
	}
}
