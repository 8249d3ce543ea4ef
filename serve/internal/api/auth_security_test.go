package api

import (
	"net/netip"
	"strings"
	"testing"
)

// TestClientAddr: every X-Forwarded-For line counts, read right to left
// past trusted proxies; without a trusted peer the header is ignored.
func TestClientAddr(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	proxy, outsider := netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("192.0.2.7")
	for _, c := range []struct {
		name  string
		peer  netip.Addr
		lines []string
		want  string
	}{
		{"untrusted peer ignores the header", outsider, []string{"198.51.100.1"}, "192.0.2.7"},
		{"no header", proxy, nil, "10.0.0.2"},
		{"one line", proxy, []string{"198.51.100.1"}, "198.51.100.1"},
		{"forged entry left of the real one", proxy, []string{"203.0.113.9, 198.51.100.1"}, "198.51.100.1"},
		{"forged first line, proxy's line last", proxy, []string{"203.0.113.9", "198.51.100.1"}, "198.51.100.1"},
		{"trusted hops skipped across lines", proxy, []string{"203.0.113.9", "198.51.100.1, 10.1.1.1", "10.2.2.2"}, "198.51.100.1"},
		{"only trusted hops", proxy, []string{"10.1.1.1", "10.2.2.2"}, "10.0.0.2"},
		{"empty elements", proxy, []string{"198.51.100.1,,", " "}, "198.51.100.1"},
		{"malformed hop: the proxy", proxy, []string{"198.51.100.1", "garbage"}, "10.0.0.2"},
		{"IPv4-mapped", proxy, []string{"::ffff:198.51.100.1"}, "198.51.100.1"},
		{"IPv6 peer trusted", netip.MustParseAddr("::1"), []string{"2001:db8::1"}, "2001:db8::1"},
	} {
		var xff [][]byte
		for _, l := range c.lines {
			xff = append(xff, []byte(l))
		}
		if got := ClientAddr(c.peer, xff, trusted); got.String() != c.want {
			t.Errorf("%s: %v, want %s", c.name, got, c.want)
		}
	}
}

// TestParseTokens: "SCOPE TOKEN" lines, comments and blanks skipped; bad
// lines are named by number without echoing the token; scopes are ordered.
func TestParseTokens(t *testing.T) {
	tok, err := ParseTokens(strings.NewReader("# comment\n\nread  rrrrrrrrrrrrrrrr\nwrite wwwwwwwwwwwwwwww\n  admin aaaaaaaaaaaaaaaa  \n"), "f")
	if err != nil {
		t.Fatal(err)
	}
	for token, want := range map[string]Scope{"rrrrrrrrrrrrrrrr": ScopeRead, "wwwwwwwwwwwwwwww": ScopeWrite, "aaaaaaaaaaaaaaaa": ScopeAdmin, "nope": 0, "": 0} {
		if got := tok.scopeOf(token); got != want {
			t.Errorf("scope of %q: %v, want %v", token, got, want)
		}
	}
	if !tok.Has(ScopeAdmin) || tok.Len() != 3 {
		t.Errorf("Has(admin) %v, Len %d", tok.Has(ScopeAdmin), tok.Len())
	}
	for _, c := range []struct{ in, want string }{
		{"", "holds no token"},
		{"# only a comment\n", "holds no token"},
		{"read\n", "f:1: want \"SCOPE TOKEN\""},
		{"read a b\n", "f:1: want \"SCOPE TOKEN\""},
		{"\nowner 0123456789abcdef0\n", "f:2: scope \"owner\" is not read, write or admin"},
		{"write short-secret\n", "f:1: the write token is 12 bytes, want at least 16"},
		// Invisible first characters (issue 24 item 14): strings.Fields
		// does not split on them, so they were part of an accepted token.
		{"write \u200bwwwwwwwwwwwwwwww\n", "f:1: the write token has a byte 0xe2 at position 0 that is not printable ASCII"},
		{"read \ufeffrrrrrrrrrrrrrrrr\n", "f:1: the read token has a byte 0xef at position 0"},
		{"admin aaaaaaaa\u2060aaaaaaaaa\n", "f:1: the admin token has a byte 0xe2 at position 8"},
	} {
		_, err := ParseTokens(strings.NewReader(c.in), "f")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.in, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "short-secret") {
			t.Errorf("the error %q prints the token", err)
		}
	}
	if (*Tokens)(nil).Has(ScopeRead) || (*Tokens)(nil).scopeOf("x") != 0 {
		t.Error("no tokens must grant nothing")
	}
}

// TestBearerToken: the scheme is case-insensitive (RFC 9110 §11.1; issue
// 24 item 14: "bearer" was refused).
func TestBearerToken(t *testing.T) {
	for _, c := range []struct {
		header, token string
		ok            bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer abc", "abc", true},
		{"BEARER   abc  ", "abc", true},
		{"bEaReR abc", "abc", true},
		{"Basic abc", "", false},
		{"Bearerabc", "", false},
		{"Bearer", "", false},
		{"", "", false},
	} {
		tok, ok := bearerToken(c.header)
		if tok != c.token || ok != c.ok {
			t.Errorf("%q: %q %v, want %q %v", c.header, tok, ok, c.token, c.ok)
		}
	}
}

// TestAdminTokenRule: the admin token (--admin-token-file or
// SETLIST_ADMIN_TOKEN) meets the tokens file's rule (issue 24 item 11:
// one byte was accepted).
func TestAdminTokenRule(t *testing.T) {
	for tok, want := range map[string]string{
		"x":                      "is 1 bytes, want at least 16",
		"0123456789abcde":        "is 15 bytes",
		"\u200b0123456789abcdef": "not printable ASCII",
	} {
		_, err := New(Config{AdminToken: tok}, Deps{})
		if err == nil || !strings.Contains(err.Error(), "admin token") || !strings.Contains(err.Error(), want) {
			t.Errorf("admin token %q: %v, want %q", tok, err, want)
		}
	}
}
