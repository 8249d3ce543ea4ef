package server_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/setlist/setlist/serve/internal/api"
)

// Tokens of the tests below, one per scope.
const (
	readToken  = "read-token-0123456789"
	writeToken = "write-token-0123456789"
	adminToken = "admin-token-0123456789"
)

func testTokens(t *testing.T) *api.Tokens {
	t.Helper()
	tok, err := api.ParseTokens(strings.NewReader(fmt.Sprintf("# scope token\nread %s\n\nwrite %s\nadmin %s\n", readToken, writeToken, adminToken)), "tokens")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func bearer(token string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + token}
}

// TestAPITokens: with authentication required, every /v1 request needs a
// bearer token whose scope covers the route (read < write < admin); the
// probes and the web page stay open; /metrics is not on the API's port but
// on its own listener.
func TestAPITokens(t *testing.T) {
	w := newWorld(t)
	cfg := fastConfig()
	cfg.API.Tokens, cfg.API.RequireAuth = testTokens(t), true
	in := w.start(t, cfg, nil)
	in.waitModel(t, 1)
	like := fmt.Sprintf(`{"song_id": %d, "kind": "like"}`, w.songs[30])

	for _, c := range []struct {
		method, path, body string
		token              string
		want               int
	}{
		{"GET", "/v1/users/batchy/recommendations", "", "", http.StatusUnauthorized},
		{"GET", "/v1/users/batchy/reactions", "", "wrong-token-0123456789", http.StatusUnauthorized},
		{"GET", "/v1/songs?query=a", "", "", http.StatusUnauthorized},
		{"GET", "/v1/model", "", "", http.StatusUnauthorized},
		{"POST", "/v1/users/folder/reactions", like, "", http.StatusUnauthorized},
		{"DELETE", fmt.Sprintf("/v1/users/folder/reactions/%d?kind=play", w.songs[6]), "", "", http.StatusUnauthorized},
		{"GET", "/v1/users/batchy/recommendations", "", readToken, http.StatusOK},
		{"GET", "/v1/model", "", readToken, http.StatusOK},
		{"POST", "/v1/users/folder/reactions", like, readToken, http.StatusForbidden},
		{"POST", "/v1/admin/reload", "", readToken, http.StatusForbidden},
		{"POST", "/v1/users/folder/reactions", like, writeToken, http.StatusCreated},
		{"GET", "/v1/users/folder/reactions", "", writeToken, http.StatusOK},
		{"POST", "/v1/admin/reload", "", writeToken, http.StatusForbidden},
		{"POST", "/v1/admin/reload", "", adminToken, http.StatusOK},
		{"DELETE", fmt.Sprintf("/v1/users/folder/reactions/%d?kind=like", w.songs[30]), "", adminToken, http.StatusNoContent},
	} {
		h := map[string]string{}
		if c.token != "" {
			h = bearer(c.token)
		}
		r := in.doHeaders(t, c.method, c.path, c.body, h)
		if r.status != c.want {
			t.Errorf("%s %s with token %q: %d %s, want %d", c.method, c.path, c.token, r.status, r.body, c.want)
			continue
		}
		wantStatus(t, r, c.want)
		if c.want == http.StatusUnauthorized && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s %s: 401 without WWW-Authenticate: Bearer", c.method, c.path)
		}
	}
	// The scheme is case-insensitive (RFC 9110).
	for _, scheme := range []string{"bearer", "BEARER"} {
		r := in.doHeaders(t, "GET", "/v1/model", "", map[string]string{"Authorization": scheme + " " + readToken})
		wantStatus(t, r, http.StatusOK)
	}
	// Probes and the page need no token.
	for _, p := range []string{"/healthz", "/readyz", "/", "/js/api.js"} {
		wantStatus(t, in.get(t, p), http.StatusOK)
	}
	// /metrics is not served where the ingress routes...
	if r := in.get(t, "/metrics"); r.status == http.StatusOK {
		t.Fatalf("GET /metrics on the API port answered %d", r.status)
	}
	// ...but on the metrics listener.
	if in.metric(t, `setlist_serve_http_request_duration_seconds_count{code="401",method="GET",route="/v1/users/:user_id/recommendations"}`) < 1 {
		t.Fatal("the metrics listener does not count the 401s")
	}
}

// TestCrossSiteWrites: with no token in play (the playground), a page on
// another site must not be able to write through the visitor's browser: a
// "simple" cross-origin POST (text/plain, no preflight) and anything a
// browser marks cross-site are refused, and write bodies must be JSON.
// Same-origin writes (the page's own) and non-browser clients pass.
func TestCrossSiteWrites(t *testing.T) {
	w := newWorld(t)
	in := w.start(t, fastConfig(), nil)
	in.waitModel(t, 1)
	like := fmt.Sprintf(`{"song_id": %d, "kind": "like"}`, w.songs[31])
	host := strings.TrimPrefix(in.base, "http://")
	del := fmt.Sprintf("/v1/users/folder/reactions/%d?kind=play", w.songs[6])
	for _, c := range []struct {
		name, method, path, body string
		h                        map[string]string
		want                     int
	}{
		{"evil simple POST", "POST", "/v1/users/folder/reactions", like, map[string]string{"Origin": "https://evil.example", "Content-Type": "text/plain"}, http.StatusForbidden},
		{"evil JSON POST", "POST", "/v1/users/folder/reactions", like, map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		{"evil DELETE", "DELETE", del, "", map[string]string{"Origin": "http://evil.example"}, http.StatusForbidden},
		{"null origin", "POST", "/v1/users", `{"user_id": "nullo"}`, map[string]string{"Origin": "null"}, http.StatusForbidden},
		{"cross-site fetch metadata", "POST", "/v1/users/folder/reactions", like, map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"same-site fetch metadata", "POST", "/v1/users/folder/reactions", like, map[string]string{"Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
		{"text/plain without Origin", "POST", "/v1/users/folder/reactions", like, map[string]string{"Content-Type": "text/plain"}, http.StatusUnsupportedMediaType},
		{"form", "POST", "/v1/users", "user_id=formy", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, http.StatusUnsupportedMediaType},
		{"no content type", "POST", "/v1/users", `{"user_id": "untyped"}`, map[string]string{"Content-Type": ""}, http.StatusUnsupportedMediaType},
		{"same origin", "POST", "/v1/users/folder/reactions", like, map[string]string{"Origin": "http://" + host, "Sec-Fetch-Site": "same-origin"}, http.StatusCreated},
		{"JSON with charset", "POST", "/v1/users", `{"user_id": "charset"}`, map[string]string{"Content-Type": "application/json; charset=utf-8"}, http.StatusCreated},
		{"same-origin DELETE", "DELETE", del, "", map[string]string{"Origin": "http://" + host}, http.StatusNoContent},
	} {
		r := in.doHeaders(t, c.method, c.path, c.body, c.h)
		if r.status != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, r.status, r.body, c.want)
			continue
		}
		wantStatus(t, r, c.want)
	}
	// Nothing refused was written.
	for _, u := range []string{"nullo", "formy", "untyped"} {
		wantStatus(t, in.get(t, "/v1/users/"+u), http.StatusNotFound)
	}

	// DNS rebinding: a site re-points its own name at this address, so the
	// browser sees the API as same-origin. Without authentication only
	// IP addresses and localhost are accepted as Host.
	_, port, _ := net.SplitHostPort(host)
	for _, c := range []struct {
		host   string
		method string
		want   int
	}{
		{"rebind.evil.example:" + port, http.MethodGet, http.StatusForbidden},
		{"rebind.evil.example:" + port, http.MethodPost, http.StatusForbidden},
		{"localhost:" + port, http.MethodGet, http.StatusOK},
		{"app.localhost:" + port, http.MethodGet, http.StatusOK},
		{"[::1]:" + port, http.MethodGet, http.StatusOK},
		{"192.0.2.10:" + port, http.MethodGet, http.StatusOK},
	} {
		var body io.Reader
		if c.method == http.MethodPost {
			body = strings.NewReader(like)
		}
		req, err := http.NewRequest(c.method, in.base+"/v1/users/folder/reactions", body)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = c.host
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", "http://"+c.host)
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != c.want {
			t.Errorf("%s with Host %s: %d, want %d", c.method, c.host, res.StatusCode, c.want)
		}
	}
}

// TestAuthFailureLimit: failed authentication is rate-limited per client
// whatever the method (GETs included), and a client over the limit gets
// 429 before its token is checked, even a right one: the endpoints are no
// guessing oracle. Other clients (behind the trusted proxy) are unaffected.
func TestAuthFailureLimit(t *testing.T) {
	w := newWorld(t)
	cfg := fastConfig()
	cfg.API.Tokens, cfg.API.RequireAuth = testTokens(t), true
	cfg.API.AuthFailRate, cfg.API.AuthFailBurst = 0.01, 5
	cfg.API.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	in := w.start(t, cfg, nil)
	in.waitModel(t, 1)
	from := func(client string, h map[string]string) map[string]string {
		out := map[string]string{"X-Forwarded-For": client}
		for k, v := range h {
			out[k] = v
		}
		return out
	}
	// Guesses by GET (never write-limited) and on the admin route.
	for i := range 5 {
		method, path := http.MethodGet, "/v1/users/batchy/recommendations"
		if i%2 == 1 {
			method, path = http.MethodPost, "/v1/admin/reload"
		}
		r := in.doHeaders(t, method, path, "", from("198.51.100.1", bearer(fmt.Sprintf("guess-%d", i))))
		wantStatus(t, r, http.StatusUnauthorized)
	}
	for _, c := range []struct{ method, path, token string }{
		{http.MethodGet, "/v1/users/batchy", "guess-6"},
		{http.MethodPost, "/v1/admin/reload", adminToken},
		{http.MethodGet, "/v1/users/batchy/recommendations", readToken},
	} {
		r := in.doHeaders(t, c.method, c.path, "", from("198.51.100.1", bearer(c.token)))
		wantStatus(t, r, http.StatusTooManyRequests)
		if r.header.Get("Retry-After") == "" {
			t.Fatalf("%s %s: 429 without Retry-After", c.method, c.path)
		}
	}
	// Another client still authenticates; successes cost nothing.
	for range 10 {
		wantStatus(t, in.doHeaders(t, http.MethodGet, "/v1/users/batchy/recommendations", "", from("198.51.100.2", bearer(readToken))), http.StatusOK)
	}
	wantStatus(t, in.doHeaders(t, http.MethodPost, "/v1/admin/reload", "", from("198.51.100.2", bearer(adminToken))), http.StatusOK)
}

// TestForwardedForLines: a client behind a trusted proxy that sends its
// own X-Forwarded-For line, to which the proxy appends a second line (as
// HAProxy's option forwardfor does), is still one client: every line is
// read, the right-most untrusted hop wins.
func TestForwardedForLines(t *testing.T) {
	w := newWorld(t)
	cfg := fastConfig()
	cfg.API.WriteRate, cfg.API.WriteBurst = 0.01, 2
	cfg.API.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	in := w.start(t, cfg, nil)
	in.waitModel(t, 1)
	like := fmt.Sprintf(`{"song_id": %d, "kind": "like"}`, w.songs[32])
	post := func(lines ...string) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, in.base+"/v1/users/folder/reactions", strings.NewReader(like))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		for _, l := range lines {
			req.Header.Add("X-Forwarded-For", l)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	// 203.0.113.5 forges a fresh first line each time; the proxy's line
	// (the last) names it.
	var got []int
	for i := range 4 {
		got = append(got, post(fmt.Sprintf("10.1.2.%d", i), "203.0.113.5"))
	}
	if fmt.Sprint(got) != "[201 201 429 429]" {
		t.Fatalf("statuses %v with a forged first line, want [201 201 429 429] (burst 2)", got)
	}
	// A proxy chain over several lines: the trusted hop on the last line
	// is skipped, the client is on the line before.
	if s := post("10.9.9.9", "198.51.100.9", "127.0.0.9"); s != http.StatusCreated {
		t.Fatalf("new client over two proxies: %d", s)
	}
	if s := post("10.9.9.8, 198.51.100.9", "127.0.0.9"); s != http.StatusCreated {
		t.Fatalf("second write within the burst: %d", s)
	}
	if s := post("198.51.100.9", "127.0.0.8"); s != http.StatusTooManyRequests {
		t.Fatalf("third write of 198.51.100.9: %d, want 429", s)
	}
}

// TestSecurityHeaders: the page and its assets carry a Content-Security-
// Policy (frame-ancestors included), a Referrer-Policy and nosniff; API and
// error answers carry nosniff; If-None-Match matches weakly and in lists.
func TestSecurityHeaders(t *testing.T) {
	w := newWorld(t)
	cfg := fastConfig()
	cfg.API.BodyLimit = 1 << 10
	in := w.start(t, cfg, nil)
	in.waitModel(t, 1)
	for _, p := range []string{"/", "/index.html", "/js/app.js", "/style.css"} {
		r := in.get(t, p)
		wantStatus(t, r, http.StatusOK)
		csp := r.header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'self'", "frame-ancestors 'none'", "script-src 'self'", "object-src 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: Content-Security-Policy %q lacks %q", p, csp, want)
			}
		}
		if r.header.Get("Referrer-Policy") == "" || r.header.Get("X-Content-Type-Options") != "nosniff" || r.header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: headers %v lack Referrer-Policy, X-Frame-Options or nosniff", p, r.header)
		}
	}
	for _, r := range []response{
		in.get(t, "/v1/users/batchy/recommendations"),
		in.get(t, "/v1/users/nobody-here"),
		in.get(t, "/v1/nowhere"),
		in.get(t, "/nowhere.html"),
		in.get(t, "/healthz"),
		in.oversized(t, "/v1/users", 2<<10),
	} {
		if r.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("answer %d %.80s without X-Content-Type-Options: nosniff", r.status, r.body)
		}
	}
	etag := in.get(t, "/js/app.js").header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag on /js/app.js")
	}
	for _, c := range []struct {
		inm  string
		want int
	}{
		{etag, http.StatusNotModified},
		{"W/" + etag, http.StatusNotModified},
		{`"nope", ` + etag, http.StatusNotModified},
		{`W/"nope",W/` + etag, http.StatusNotModified},
		{"*", http.StatusNotModified},
		{`"nope"`, http.StatusOK},
		{`"nope", W/"other"`, http.StatusOK},
	} {
		if r := in.doHeaders(t, http.MethodGet, "/js/app.js", "", map[string]string{"If-None-Match": c.inm}); r.status != c.want {
			t.Errorf("If-None-Match %s: %d, want %d", c.inm, r.status, c.want)
		}
	}
}

// TestConnectionCap: one client address may hold at most MaxConnsPerClient
// connections; the next is answered 429 and closed, and a slot comes back
// when a connection closes.
func TestConnectionCap(t *testing.T) {
	w := newWorld(t)
	cfg := fastConfig()
	cfg.MaxConnsPerClient = 5
	in := w.start(t, cfg, nil)
	in.waitModel(t, 1)
	addr := strings.TrimPrefix(in.base, "http://")
	// The shared test client's idle keep-alive connections count too.
	client.CloseIdleConnections()
	get := func(c net.Conn) string {
		t.Helper()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			return err.Error()
		}
		buf := make([]byte, 512)
		n, err := c.Read(buf)
		if n == 0 {
			return fmt.Sprint(err)
		}
		line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
		return line
	}
	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range 5 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if got := get(c); got != "HTTP/1.1 200 OK" {
			t.Fatalf("connection %d within the cap: %q", len(conns), got)
		}
	}
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	if got := get(extra); got != "HTTP/1.1 429 Too Many Requests" {
		t.Fatalf("connection over the cap: %q, want a 429", got)
	}
	conns[0].Close()
	waitFor(t, "a slot freed by a closed connection", func() bool {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return false
		}
		defer c.Close()
		return get(c) == "HTTP/1.1 200 OK"
	})
}
