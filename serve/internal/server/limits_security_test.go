package server_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/postgres"
	"github.com/setlist/setlist/internal/store"
	"github.com/setlist/setlist/serve/internal/fixture"
)

// doHeaders is in.do with request headers.
func (in *instance) doHeaders(t *testing.T, method, path, body string, h map[string]string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, in.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

func TestWriteRateLimit(t *testing.T) {
	w := newWorld(t)
	cfg := fastConfig()
	cfg.API.WriteRate, cfg.API.WriteBurst = 2, 3
	in := w.start(t, cfg, nil)
	in.waitModel(t, 1)
	like := fmt.Sprintf(`{"song_id": %d, "kind": "like"}`, w.songs[1])

	for i := range 3 {
		wantStatus(t, in.doHeaders(t, http.MethodPost, "/v1/users/folder/reactions", like, nil), http.StatusCreated)
		_ = i
	}
	r := in.doHeaders(t, http.MethodPost, "/v1/users/folder/reactions", like, nil)
	wantStatus(t, r, http.StatusTooManyRequests)
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
		t.Fatalf("429 Retry-After %q, want whole seconds ≥ 1", r.header.Get("Retry-After"))
	}
	if !strings.Contains(string(r.body), "write rate limit") {
		t.Fatalf("429 detail %s does not name the limit", r.body)
	}
	// DELETE is a write too; reads are never limited.
	wantStatus(t, in.doHeaders(t, http.MethodDelete, fmt.Sprintf("/v1/users/folder/reactions/%d?kind=like", w.songs[1]), "", nil), http.StatusTooManyRequests)
	for range 20 {
		wantStatus(t, in.get(t, "/v1/users/folder/reactions"), http.StatusOK)
	}
	// Without a trusted proxy, X-Forwarded-For is the client's claim and
	// must not buy a fresh bucket.
	wantStatus(t, in.doHeaders(t, http.MethodPost, "/v1/users/folder/reactions", like, map[string]string{"X-Forwarded-For": "203.0.113.9"}), http.StatusTooManyRequests)
	// The bucket refills at the rate: one token in 0.5 s.
	time.Sleep(600 * time.Millisecond)
	wantStatus(t, in.doHeaders(t, http.MethodPost, "/v1/users/folder/reactions", like, nil), http.StatusCreated)
}

func TestWriteRateLimitTrustedProxy(t *testing.T) {
	w := newWorld(t)
	cfg := fastConfig()
	cfg.API.WriteRate, cfg.API.WriteBurst = 0.01, 1
	cfg.API.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	in := w.start(t, cfg, nil)
	in.waitModel(t, 1)
	like := fmt.Sprintf(`{"song_id": %d, "kind": "like"}`, w.songs[2])
	post := func(xff string) int {
		t.Helper()
		h := map[string]string{}
		if xff != "" {
			h["X-Forwarded-For"] = xff
		}
		return in.doHeaders(t, http.MethodPost, "/v1/users/folder/reactions", like, h).status
	}
	// Behind a trusted proxy each forwarded client has its own bucket.
	for _, c := range []struct {
		xff  string
		want int
	}{
		{"198.51.100.1", http.StatusCreated},
		{"198.51.100.1", http.StatusTooManyRequests},
		{"198.51.100.2", http.StatusCreated},
		// The right-most untrusted hop is the client; what it prepended
		// is its own claim.
		{"10.9.9.9, 198.51.100.2", http.StatusTooManyRequests},
		{"198.51.100.3, 127.0.0.5", http.StatusCreated},
		{"", http.StatusCreated}, // the proxy itself (127.0.0.1)
		{"", http.StatusTooManyRequests},
		{"not-an-ip", http.StatusTooManyRequests}, // malformed chain: the proxy's bucket
	} {
		if got := post(c.xff); got != c.want {
			t.Fatalf("X-Forwarded-For %q: status %d, want %d", c.xff, got, c.want)
		}
	}
}

func TestLimits(t *testing.T) {
	w := newWorld(t)
	cfg := fastConfig()
	cfg.API.BodyLimit = 1 << 10
	cfg.API.ReadTimeout = 300 * time.Millisecond
	in := w.start(t, cfg, nil)
	in.waitModel(t, 1)

	t.Run("BodyLimit", func(t *testing.T) {
		wantStatus(t, in.oversized(t, "/v1/users", 2<<10), http.StatusRequestEntityTooLarge)
	})
	t.Run("N", func(t *testing.T) {
		for _, q := range []string{"n=101", "n=0", "n=-1", "n=1e2", "n=99999999999999999999", "n=%00"} {
			r := in.get(t, "/v1/users/batchy/recommendations?"+q)
			wantStatus(t, r, http.StatusBadRequest)
			if !strings.Contains(string(r.body), "1 to 100") {
				t.Fatalf("%s: detail %s does not name the limit", q, r.body)
			}
		}
		if a := in.recs(t, "batchy", 100); len(a.Items) == 0 {
			t.Fatal("n=100 returned nothing")
		}
	})
	t.Run("SlowLoris", func(t *testing.T) {
		// A client that sends headers a byte at a time is cut off by the
		// read timeout instead of holding a connection forever.
		conn, err := net.Dial("tcp", strings.TrimPrefix(in.base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		start := time.Now()
		_, _ = conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n"))
		for time.Since(start) < 3*time.Second {
			if _, err := conn.Write([]byte("X")); err != nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 512)
		n, err := conn.Read(buf)
		if elapsed := time.Since(start); elapsed > 4*time.Second || (err == nil && n == 0) {
			t.Fatalf("slow client held the connection %v (read %d bytes, err %v)", elapsed, n, err)
		}
		if err == nil && !strings.Contains(string(buf[:n]), "408") && !strings.Contains(string(buf[:n]), "400") {
			t.Fatalf("slow client got %q", buf[:n])
		}
	})
}

// TestStoreDeadlines checks that stores that stop answering (connections
// open, no reply: a hung server or a dropped network path, the worst case
// since nothing fails fast) cannot hold a request past --request-timeout:
// every store call on the request path derives its deadline from the
// request's.
func TestStoreDeadlines(t *testing.T) {
	w := newWorld(t)
	pg := newFaultProxy(t, "127.0.0.1:5432")
	db := openDB(t, strings.Replace(w.dbURL, "127.0.0.1:5432", pg.Addr(), 1))
	cfg := fastConfig()
	cfg.API.RequestTimeout = 500 * time.Millisecond
	in := w.start(t, cfg, db)
	in.waitModel(t, 1)
	cases := []struct{ method, path, body string }{
		{http.MethodGet, "/v1/users/folder/recommendations", ""},
		{http.MethodGet, "/v1/users?query=abc", ""},
		{http.MethodGet, "/v1/users/folder", ""},
		{http.MethodGet, "/v1/users/folder/reactions", ""},
		{http.MethodGet, "/v1/songs?query=abc", ""},
		{http.MethodPost, "/v1/users", `{"user_id": "stalled"}`},
		{http.MethodPost, "/v1/users/folder/reactions", fmt.Sprintf(`{"song_id": %d, "kind": "like"}`, w.songs[1])},
		{http.MethodDelete, fmt.Sprintf("/v1/users/folder/reactions/%d?kind=like", w.songs[1]), ""},
	}
	for _, c := range cases {
		wantStatusBelow(t, in.doHeaders(t, c.method, c.path, c.body, nil), 500)
	}
	pg.Stall()
	for _, c := range cases {
		start := time.Now()
		r := in.doHeaders(t, c.method, c.path, c.body, nil)
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s %s took %v against a silent database (request timeout 500ms)", c.method, c.path, d)
		}
		wantStatus(t, r, http.StatusServiceUnavailable)
		if r.header.Get("Retry-After") == "" {
			t.Errorf("%s %s: 503 without Retry-After", c.method, c.path)
		}
	}
	pg.Cut() // before the pool's Close, which would wait on the stalled connections
}

func wantStatusBelow(t *testing.T, r response, code int) {
	t.Helper()
	if r.status >= code {
		t.Fatalf("status %d, want < %d; body %s", r.status, code, r.body)
	}
}

func TestAdminEndpoints(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	// A registry with two published runs, as `batch train` leaves it, and a
	// second version published on top of w.v1.
	run1, err := w.db.StartRun(ctx, "v1")
	if err != nil {
		t.Fatal(err)
	}
	publishRun(t, w.db, run1)
	v2 := w.version(2, w.songs[20:60])
	run2, err := w.db.StartRun(ctx, "v2")
	if err != nil {
		t.Fatal(err)
	}
	if run1 != 1 || run2 != 2 {
		t.Fatalf("runs got ids %d, %d; the test needs them to match versions 1, 2", run1, run2)
	}
	publishVersion(t, w, v2)
	publishRun(t, w.db, run2)

	const token = "s3cret-token-0123456789"
	cfg := fastConfig()
	cfg.API.AdminToken = token
	in := w.start(t, cfg, nil)
	in.waitModel(t, 2)
	off := w.start(t, fastConfig(), nil)

	t.Run("DisabledWithoutToken", func(t *testing.T) {
		for _, p := range []string{"/v1/admin/rollback", "/v1/admin/reload"} {
			r := off.doHeaders(t, http.MethodPost, p, "", map[string]string{"Authorization": "Bearer " + token})
			wantStatus(t, r, http.StatusNotFound)
		}
	})
	t.Run("Unauthorized", func(t *testing.T) {
		for _, h := range []string{"", "Bearer", "Bearer ", "Bearer wrong", "Bearer " + token + "x", "Bearer " + token[:5], "Basic " + token, token} {
			r := in.doHeaders(t, http.MethodPost, "/v1/admin/rollback", "", map[string]string{"Authorization": h})
			wantStatus(t, r, http.StatusUnauthorized)
			if r.header.Get("WWW-Authenticate") == "" {
				t.Fatalf("401 for %q without WWW-Authenticate", h)
			}
		}
		if got := current(t, w); got != 2 {
			t.Fatalf("an unauthorized rollback moved the pointer to %d", got)
		}
	})
	t.Run("Rollback", func(t *testing.T) {
		auth := map[string]string{"Authorization": "Bearer " + token}
		r := in.doHeaders(t, http.MethodPost, "/v1/admin/rollback", `{"reason": "bad ndcg"}`, auth)
		wantStatus(t, r, http.StatusOK)
		var out struct{ Current, Previous, Served int64 }
		r.json(t, &out)
		if out.Current != 1 || out.Previous != 2 || out.Served != 1 {
			t.Fatalf("rollback answered %s, want current 1, previous 2, served 1", r.body)
		}
		if got := current(t, w); got != 1 {
			t.Fatalf("pointer %d after rollback, want 1", got)
		}
		if a := in.recs(t, "batchy", 3); a.ModelVersion != 1 {
			t.Fatalf("served version %d right after rollback, want 1", a.ModelVersion)
		}
		got, err := w.db.Run(ctx, run2)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != store.RunRolledBack || !strings.Contains(fmt.Sprint(got.Reason), "bad ndcg") {
			t.Fatalf("run 2 in the registry: %+v, want rolled_back with the reason", got)
		}
		got, err = w.db.Run(ctx, run1)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != store.RunPublished {
			t.Fatalf("run 1 in the registry: %+v, want published again", got)
		}
		// Reload is idempotent and reports what is served.
		r = in.doHeaders(t, http.MethodPost, "/v1/admin/reload", "", auth)
		wantStatus(t, r, http.StatusOK)
		// A bad body is a 400, not a rollback.
		wantStatus(t, in.doHeaders(t, http.MethodPost, "/v1/admin/rollback", `{"reason": 1}`, auth), http.StatusBadRequest)
		if got := current(t, w); got != 1 {
			t.Fatalf("a rejected rollback moved the pointer to %d", got)
		}
	})
	t.Run("RegistryUnavailable", func(t *testing.T) {
		// The swap succeeds but the registry has no rows to update: 200
		// saying so, never an error status a client would retry (a retry
		// would roll forward again).
		if _, err := w.db.Pool.Exec(ctx, `DELETE FROM model_runs`); err != nil {
			t.Fatal(err)
		}
		r := in.doHeaders(t, http.MethodPost, "/v1/admin/rollback", "", map[string]string{"Authorization": "Bearer " + token})
		wantStatus(t, r, http.StatusOK)
		if !strings.Contains(string(r.body), `"registry_error"`) || current(t, w) != 2 {
			t.Fatalf("rollback with no registry rows: %s, pointer %d; want registry_error and the pointer back on 2", r.body, current(t, w))
		}
	})
}

func current(t *testing.T, w *world) int64 {
	t.Helper()
	p, err := keyspace.NewPublisher(w.rdb, keyspace.NewKeys(w.prefix)).Pointers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return int64(p.Current)
}

// publishVersion publishes v on top of what w serves (the old current
// becomes previous).
func publishVersion(t *testing.T, w *world, v fixture.Version) {
	t.Helper()
	if err := fixture.Publish(context.Background(), w.rdb, w.prefix, v); err != nil {
		t.Fatal(err)
	}
}

// publishRun marks run id published in the registry, with its version.
func publishRun(t *testing.T, db *postgres.DB, id int64) {
	t.Helper()
	v := id
	if err := db.UpdateRun(context.Background(), id, store.RunUpdate{Status: store.RunPublished, Version: &v}); err != nil {
		t.Fatal(err)
	}
}

// TestRedisStallDeadlines: a Redis that accepts connections and never
// answers costs each read at most --redis-timeout per call (the answer is
// then a fold-in from memory and PostgreSQL), and each write at most the
// request deadline (503: the commit is in PostgreSQL, the invalidation
// could not be sent).
func TestRedisStallDeadlines(t *testing.T) {
	w := newWorld(t)
	rp := newFaultProxy(t, w.single(t).Options().Addr)
	// Dialled as both binaries dial Redis (keyspace.Dial), which makes
	// socket I/O honour the per-call deadlines; without that every call
	// waits go-redis's 3 s read timeout and this test fails.
	viaProxy, err := keyspace.Dial(context.Background(),
		fmt.Sprintf("redis://%s/%d?max_retries=-1", rp.Addr(), w.single(t).Options().DB), 0, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { viaProxy.Close() })
	e := *w.env
	e.rdb = viaProxy
	cfg := fastConfig()
	cfg.API.RequestTimeout = time.Second
	cfg.Recs.RedisTimeout = 100 * time.Millisecond
	in := e.start(t, cfg, nil)
	in.waitModel(t, 1)
	if a := in.recs(t, "batchy", 5); a.Source != "batch" {
		t.Fatalf("before the stall: %s", a.Source)
	}
	rp.Stall()
	for _, u := range []string{"batchy", "folder", "newbie"} {
		start := time.Now()
		a := in.recs(t, u, 5)
		if d := time.Since(start); d > 900*time.Millisecond {
			t.Errorf("%s: answered in %v with Redis silent, want a few Redis timeouts (100ms)", u, d)
		}
		// batchy may still come from the near cache: a silent Redis does
		// not drop the events subscription until its health check fails.
		if a.ModelVersion != 1 || (u != "batchy" && a.Source == "batch") {
			t.Errorf("%s with Redis silent: %+v, want an answer of version 1 from memory", u, a)
		}
	}
	start := time.Now()
	r := in.do(t, http.MethodPost, "/v1/users/folder/reactions", map[string]any{"song_id": w.songs[30], "kind": "like"})
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("write took %v with Redis silent (request timeout 1s)", d)
	}
	wantStatus(t, r, http.StatusServiceUnavailable)
	rp.Cut()
}
