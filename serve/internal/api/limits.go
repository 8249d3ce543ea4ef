package api

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/serve/internal/ratelimit"
)

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
	ok, wait := a.limiter.Take(a.clientAddr(c))
	if ok {
		return c.Next()
	}
	secs := ratelimit.RetryAfterSeconds(wait)
	c.Set(fiber.HeaderRetryAfter, strconv.Itoa(secs))
	return fiber.NewError(fiber.StatusTooManyRequests, fmt.Sprintf(
		"write rate limit: %g requests/s per client, burst %g; retry after %d s", a.limiter.Rate(), a.limiter.Burst(), secs))
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
