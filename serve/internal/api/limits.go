package api

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/setlist/setlist"
)

// maxBuckets bounds the rate limiter's memory: one bucket per client address
// seen within a refill period. A flood of distinct (spoofed or IPv6) sources
// evicts idle buckets first and then arbitrary ones, so the map never grows
// past this (about 100 bytes a bucket: a few MB at most).
const maxBuckets = 1 << 16

// bucketLimiter is a token bucket per client address. Two are used: one for
// the write endpoints (POST and DELETE: a client may send burst writes at
// once and rate writes a second after that; reads are not limited, they cost
// memory lookups and the fold-in semaphore bounds the expensive ones), and
// one spent only by failed authentication, whatever the method (auth.go).
type bucketLimiter struct {
	rate  float64 // tokens per second
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[netip.Addr]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time // when tokens was last brought up to date
}

// newBucketLimiter returns nil (no limit) when rate ≤ 0.
func newBucketLimiter(rate float64, burst int) *bucketLimiter {
	if rate <= 0 {
		return nil
	}
	return &bucketLimiter{rate: rate, burst: float64(max(burst, 1)), now: time.Now, buckets: make(map[netip.Addr]*bucket)}
}

// ParseTrustedProxies parses --trusted-proxies: comma-separated addresses
// or CIDR prefixes ("10.0.0.0/8,127.0.0.1").
func ParseTrustedProxies(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range list {
		for _, s := range strings.Split(item, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			if p, err := netip.ParsePrefix(s); err == nil {
				out = append(out, p.Masked())
				continue
			}
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q is neither an address nor a CIDR prefix", s)
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
		}
	}
	return out, nil
}

// Trusted reports whether a is one of the trusted reverse proxies.
func Trusted(trusted []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientAddr is the address a request is accounted to: the peer, or, when
// the peer is a trusted proxy, the right-most X-Forwarded-For entry that is
// not itself a trusted proxy (the entries left of it are whatever the client
// chose to send and cannot be believed). xff is every X-Forwarded-For header
// line in order: a proxy may append its own line after one the client sent
// (HAProxy's "option forwardfor" does), and the lines together are one list
// (RFC 9110 §5.3), so reading only the first would believe the client.
func ClientAddr(peer netip.Addr, xff [][]byte, trusted []netip.Prefix) netip.Addr {
	peer = peer.Unmap()
	if !Trusted(trusted, peer) {
		return peer
	}
	for i := len(xff) - 1; i >= 0; i-- {
		hops := strings.Split(string(xff[i]), ",")
		for j := len(hops) - 1; j >= 0; j-- {
			h := strings.TrimSpace(hops[j])
			if h == "" {
				continue // "a,,b" and trailing commas are empty list elements
			}
			a, err := netip.ParseAddr(h)
			if err != nil {
				return peer // a malformed chain: limit the proxy, not a guess
			}
			if a = a.Unmap(); !Trusted(trusted, a) {
				return a
			}
		}
	}
	return peer
}

// clientAddr is ClientAddr of a request.
func (a *API) clientAddr(c *fiber.Ctx) netip.Addr {
	peer, _ := netip.AddrFromSlice(c.Context().RemoteIP())
	if len(a.cfg.TrustedProxies) == 0 {
		return peer.Unmap()
	}
	return ClientAddr(peer, c.Request().Header.PeekAll(fiber.HeaderXForwardedFor), a.cfg.TrustedProxies)
}

// take spends one token of addr's bucket; when none is left it returns how
// long until one is.
func (l *bucketLimiter) take(addr netip.Addr) (ok bool, wait time.Duration) {
	return l.spend(addr, true)
}

// allows reports whether addr's bucket holds a token, without spending it
// (failed authentication is charged only once it has failed).
func (l *bucketLimiter) allows(addr netip.Addr) (ok bool, wait time.Duration) {
	return l.spend(addr, false)
}

func (l *bucketLimiter) spend(addr netip.Addr, spend bool) (ok bool, wait time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[addr]
	if b == nil {
		if !spend {
			return true, 0 // a full bucket, not worth storing yet
		}
		if len(l.buckets) >= maxBuckets {
			l.evict(now)
		}
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[addr] = b
	}
	if dt := now.Sub(b.at).Seconds(); dt > 0 {
		b.tokens = math.Min(l.burst, b.tokens+dt*l.rate)
		b.at = now
	}
	if b.tokens >= 1 {
		if spend {
			b.tokens--
		}
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

// evict drops buckets that have refilled (forgetting them changes nothing),
// and if that frees nothing, an arbitrary tenth of them: under a flood of
// sources the limit gets looser for some, memory stays bounded.
func (l *bucketLimiter) evict(now time.Time) {
	full := time.Duration(l.burst / l.rate * float64(time.Second))
	for a, b := range l.buckets {
		if now.Sub(b.at) >= full {
			delete(l.buckets, a)
		}
	}
	for a := range l.buckets {
		if len(l.buckets) < maxBuckets*9/10 {
			break
		}
		delete(l.buckets, a)
	}
}

func (l *bucketLimiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// limitWrites is the middleware: 429 with Retry-After (whole seconds, at
// least 1) once a client's bucket is empty.
func (a *API) limitWrites(c *fiber.Ctx) error {
	if a.limiter == nil {
		return c.Next()
	}
	switch c.Method() {
	case fiber.MethodPost, fiber.MethodDelete, fiber.MethodPut, fiber.MethodPatch:
	default:
		return c.Next()
	}
	ok, wait := a.limiter.take(a.clientAddr(c))
	if ok {
		return c.Next()
	}
	secs := int(math.Ceil(wait.Seconds()))
	c.Set(fiber.HeaderRetryAfter, strconv.Itoa(max(secs, 1)))
	return fiber.NewError(fiber.StatusTooManyRequests, fmt.Sprintf(
		"write rate limit: %g requests/s per client, burst %g; retry after %d s", a.limiter.rate, a.limiter.burst, max(secs, 1)))
}

// maxQueryLen bounds search queries: longer ones are not typed by people and
// cost trigram work in proportion to their length.
const maxQueryLen = 200

// searchQuery is the trimmed "query" parameter: at most maxQueryLen bytes of
// text PostgreSQL can hold (valid UTF-8, no NUL), else a 400 saying so.
func searchQuery(c *fiber.Ctx) (string, error) {
	q := strings.TrimSpace(c.Query("query"))
	if len(q) > maxQueryLen || !utf8.ValidString(q) || strings.IndexByte(q, 0) >= 0 {
		return "", fmt.Errorf("query must be at most %d bytes of UTF-8 without NUL: %w", maxQueryLen, setlist.ErrInvalid)
	}
	return q, nil
}
