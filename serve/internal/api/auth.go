package api

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/setlist/setlist/serve/internal/ratelimit"
)

// Scope is what a bearer token may do. Scopes are ordered: a token of one
// scope may do everything the lower scopes allow (an admin token can also
// read and write), so a client needs one token, not one per scope.
type Scope int

const (
	// ScopeRead allows every GET (recommendations, users, reactions,
	// songs, model).
	ScopeRead Scope = iota + 1
	// ScopeWrite also allows creating users and adding or removing
	// reactions.
	ScopeWrite
	// ScopeAdmin also allows /v1/admin (rollback, reload).
	ScopeAdmin
)

var scopeNames = map[Scope]string{ScopeRead: "read", ScopeWrite: "write", ScopeAdmin: "admin"}

func (s Scope) String() string {
	if n, ok := scopeNames[s]; ok {
		return n
	}
	return "none"
}

// ParseScope reads "read", "write" or "admin".
func ParseScope(s string) (Scope, error) {
	for sc, n := range scopeNames {
		if n == s {
			return sc, nil
		}
	}
	return 0, fmt.Errorf("scope %q is not read, write or admin", s)
}

// MinTokenLen is the shortest token the tokens file accepts: 16 bytes
// already make guessing hopeless at the failed-authentication rate limit;
// `openssl rand -hex 32` (64 characters) is what the docs suggest.
const MinTokenLen = 16

// Tokens are the API's bearer tokens, kept only as SHA-256 digests: a heap
// dump or a core file does not reveal a usable token, and comparing fixed-
// size digests in constant time leaks neither a token's content nor its
// length through response timing.
type Tokens struct {
	entries []tokenEntry
}

type tokenEntry struct {
	digest [sha256.Size]byte
	scope  Scope
}

// Add adds token with scope. Tokens given twice keep the higher scope.
func (t *Tokens) Add(scope Scope, token string) {
	t.entries = append(t.entries, tokenEntry{digest: sha256.Sum256([]byte(token)), scope: scope})
}

// Len is the number of tokens.
func (t *Tokens) Len() int {
	if t == nil {
		return 0
	}
	return len(t.entries)
}

// Has reports whether some token has scope s or a higher one.
func (t *Tokens) Has(s Scope) bool {
	if t == nil {
		return false
	}
	for _, e := range t.entries {
		if e.scope >= s {
			return true
		}
	}
	return false
}

// scopeOf is the scope of token, 0 when it is none of the tokens. Every
// entry is compared, whatever matched, so the time taken does not say which
// entry (or whether any) matched.
func (t *Tokens) scopeOf(token string) Scope {
	if t == nil {
		return 0
	}
	d := sha256.Sum256([]byte(token))
	var got Scope
	for _, e := range t.entries {
		if subtle.ConstantTimeCompare(d[:], e.digest[:]) == 1 && e.scope > got {
			got = e.scope
		}
	}
	return got
}

// CheckToken is the rule every configured token meets (the tokens file's,
// --admin-token-file's and SETLIST_ADMIN_TOKEN's): at least MinTokenLen
// bytes, all printable ASCII (0x21-0x7E). A token beginning with an
// invisible character (U+200B, U+FEFF, ...) looks like the one an operator
// meant to type but is another, and a client cannot send it in a header
// anyway. The error names the length or the byte's position, never the
// token.
func CheckToken(tok string) error {
	for i := 0; i < len(tok); i++ {
		if tok[i] < 0x21 || tok[i] > 0x7e {
			return fmt.Errorf("has a byte %#x at position %d that is not printable ASCII (an invisible or non-ASCII character?): tokens are printable ASCII (openssl rand -hex 32)", tok[i], i)
		}
	}
	if len(tok) < MinTokenLen {
		return fmt.Errorf("is %d bytes, want at least %d (openssl rand -hex 32)", len(tok), MinTokenLen)
	}
	return nil
}

// bearerToken is the credentials of an "Authorization: Bearer <token>"
// header; the scheme is case-insensitive (RFC 9110 §11.1), and spaces
// around the token are ignored.
func bearerToken(header string) (string, bool) {
	scheme, rest, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(rest), true
}

// ParseTokens reads a tokens file: one token a line as "SCOPE TOKEN"
// (scope read, write or admin), blank lines and lines starting with "#"
// ignored. Errors name the line (never the token) so a typo is found
// without printing a secret into a log.
func ParseTokens(r io.Reader, name string) (*Tokens, error) {
	t := &Tokens{}
	sc := bufio.NewScanner(r)
	var errs []error
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			errs = append(errs, fmt.Errorf("%s:%d: want \"SCOPE TOKEN\" (two fields), got %d fields", name, n, len(fields)))
			continue
		}
		scope, err := ParseScope(fields[0])
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %w", name, n, err))
			continue
		}
		if err := CheckToken(fields[1]); err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: the %s token %w", name, n, scope, err))
			continue
		}
		t.Add(scope, fields[1])
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if t.Len() == 0 {
		return nil, fmt.Errorf("%s holds no token", name)
	}
	return t, nil
}

// need guards a /v1 route with scope need. With RequireAuth every request
// needs "Authorization: Bearer <token>" of that scope or a higher one (401
// without a valid token, 403 with one of a lower scope); without it (the
// loopback playground) only admin routes do. With no admin token configured
// the admin routes do not exist (404), so an unconfigured deployment
// exposes nothing.
//
// Failed attempts are charged to the client's failure bucket whatever the
// method, and a client whose bucket is empty gets 429 before its token is
// even looked at, so no route is a guessing oracle.
func (a *API) need(need Scope) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if need == ScopeAdmin && !a.cfg.Tokens.Has(ScopeAdmin) {
			return fiber.NewError(fiber.StatusNotFound, "admin endpoints are disabled (give an admin token: --api-tokens-file or --admin-token-file)")
		}
		if need != ScopeAdmin && !a.cfg.RequireAuth {
			if !rebindSafeHost(c.Get(fiber.HeaderHost)) {
				return fiber.NewError(fiber.StatusForbidden, "without authentication (--auth off) the API answers only requests "+
					"addressed to localhost or an IP address, not to the name "+c.Get(fiber.HeaderHost)+" (DNS rebinding)")
			}
			return c.Next()
		}
		return a.authenticate(c, need)
	}
}

// rebindSafeHost reports whether a request's Host header names this
// machine in a way no other site can borrow: an IP address, or localhost.
// Without authentication, that is what keeps a web page from reaching the
// playground by DNS rebinding (its own name, re-pointed at 127.0.0.1, makes
// the browser treat the API as same-origin, cross-site checks included).
func rebindSafeHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}

func (a *API) authenticate(c *fiber.Ctx, need Scope) error {
	client := a.clientAddr(c)
	if a.authFailures != nil {
		if ok, wait := a.authFailures.Allows(client); !ok {
			secs := ratelimit.RetryAfterSeconds(wait)
			c.Set(fiber.HeaderRetryAfter, strconv.Itoa(secs))
			return fiber.NewError(fiber.StatusTooManyRequests, fmt.Sprintf(
				"too many failed authentications from this client (%g a second, burst %g); retry after %d s",
				a.authFailures.Rate(), a.authFailures.Burst(), secs))
		}
	}
	token, ok := bearerToken(c.Get(fiber.HeaderAuthorization))
	got := a.cfg.Tokens.scopeOf(token)
	if !ok || got == 0 {
		if a.authFailures != nil {
			a.authFailures.Take(client)
		}
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="setlist"`)
		return fiber.NewError(fiber.StatusUnauthorized, fmt.Sprintf("this endpoint needs Authorization: Bearer <token> with scope %s", need))
	}
	if got < need {
		return fiber.NewError(fiber.StatusForbidden, fmt.Sprintf("this endpoint needs a token with scope %s; this one has scope %s", need, got))
	}
	c.Locals(tokenClient{}, tokenClientKey(strings.TrimSpace(token)))
	return c.Next()
}

// tokenClient is the c.Locals key of the authenticated token's client key.
type tokenClient struct{}

// tokenClientKey names a token as a client for fair queuing: a prefix of
// its digest, never the token.
func tokenClientKey(token string) string {
	d := sha256.Sum256([]byte(token))
	return "token " + hex.EncodeToString(d[:8])
}

// client is who a request is accounted to in fair queuing (recs): its
// token when it authenticated with one, else its address (ClientAddr: the
// trusted-proxy rules). Many users behind one token or one address are one
// client, so spreading a flood over users gains it nothing.
func (a *API) client(c *fiber.Ctx) string {
	if k, ok := c.Locals(tokenClient{}).(string); ok {
		return k
	}
	return "addr " + a.clientAddr(c).String()
}
