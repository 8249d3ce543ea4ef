package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/keyspace/redistest"
	"github.com/setlist/setlist/internal/openapi/contract"
	"github.com/setlist/setlist/internal/postgres"
	"github.com/setlist/setlist/internal/postgres/pgtest"
	"github.com/setlist/setlist/serve/internal/server"
	"github.com/setlist/setlist/serve/internal/servertest"
	"github.com/setlist/setlist/web"
)

// env is one test's PostgreSQL database and Redis prefix, shared by every
// server instance the test starts (as replicas share them).
type env struct {
	dbURL  string
	db     *postgres.DB
	rdb    redis.UniversalClient
	prefix string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvOn(t, redistest.Single)
}

// newEnvOn is newEnv with the models in target's Redis (a single server or
// the package's shared cluster).
func newEnvOn(t testing.TB, target redistest.Target) *env {
	t.Helper()
	e := &env{dbURL: pgtest.URL(t)}
	e.db = openDB(t, e.dbURL)
	if _, err := e.db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.rdb, e.prefix = target.Client(t)
	return e
}

// single is e's Redis client as a single server's, for tests that reach
// the server's address (proxies, restarts).
func (e *env) single(t testing.TB) *redis.Client {
	t.Helper()
	c, ok := e.rdb.(*redis.Client)
	if !ok {
		t.Fatalf("this test needs a single Redis server, not %T", e.rdb)
	}
	return c
}

// TestMain also fails the run when any exchange disagreed with the OpenAPI
// document, even one whose error a test tolerated.
func TestMain(m *testing.M) {
	code := redistest.Main(m)
	if n := contractTap.Report(os.Stderr); n > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: %d exchanges disagreed with %s (above)\n", n, contract.File)
		code = 1
	}
	os.Exit(code)
}

// eachTarget runs test with its models in a single Redis and in a Redis
// Cluster (the package's shared one).
func eachTarget(t *testing.T, test func(t *testing.T, target redistest.Target)) {
	for _, target := range redistest.Targets() {
		t.Run(target.Name, func(t *testing.T) { test(t, target) })
	}
}

func openDB(t testing.TB, u string) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}

// instance is one running server on a random loopback port.
type instance struct {
	srv     *server.Server
	base    string
	metrics string // the metrics listener's base URL
	reg     *prometheus.Registry
	done    chan error
	started *servertest.Instance
}

func fastConfig() server.Config { return servertest.FastConfig() }

// start runs a server against e (db may differ from e.db, e.g. behind a
// proxy) and shuts it down when the test ends.
func (e *env) start(t testing.TB, cfg server.Config, db *postgres.DB) *instance {
	t.Helper()
	if db == nil {
		db = e.db
	}
	return e.startDeps(t, cfg, func(d *server.Deps) { d.DB = db })
}

// startDeps is start with the dependencies adjusted by edit (a logger to
// read, a gated database).
func (e *env) startDeps(t testing.TB, cfg server.Config, edit func(*server.Deps)) *instance {
	t.Helper()
	deps := server.Deps{DB: e.db, Redis: e.rdb, RedisPrefix: e.prefix, Static: web.Static()}
	edit(&deps)
	s := servertest.Start(t, cfg, deps)
	return &instance{srv: s.Server, base: s.Base, metrics: s.Metrics, reg: s.Registry, done: s.Done, started: s}
}

// waitModel waits until the instance serves version v.
func (in *instance) waitModel(t testing.TB, v int64) {
	t.Helper()
	in.started.WaitModel(t, v)
}

// waitNearCache asks for u's answer until in's near cache holds one: the
// cache takes answers only while the events subscription is up, which
// waitModel does not wait for (a test counting near-cache hits right after
// start could otherwise see none).
func (in *instance) waitNearCache(t *testing.T, u string) {
	t.Helper()
	in.started.WaitNearCache(t, client, setlist.UserID(u))
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// contractTap checks every request the tests make, and every response they
// get, against the OpenAPI document (internal/openapi/contract).
var contractTap = contract.NewTransport(nil)

var client = &http.Client{Timeout: 10 * time.Second, Transport: contractTap}

func (in *instance) do(t testing.TB, method, path string, body any) response {
	t.Helper()
	r, err := in.try(method, path, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// try is do for goroutines, which must not call t.Fatal.
func (in *instance) try(method, path string, body any) (response, error) {
	r, err := servertest.Do(client, method, in.base+path, body)
	return response{status: r.Status, header: r.Header, body: r.Body}, err
}

func (in *instance) get(t testing.TB, path string) response {
	return in.do(t, http.MethodGet, path, nil)
}

// wantStatus fails unless r has status code and, for errors, the JSON error
// shape.
func wantStatus(t testing.TB, r response, code int) {
	t.Helper()
	if r.status != code {
		t.Fatalf("status %d, want %d; body %s", r.status, code, r.body)
	}
	if code >= 400 && code != http.StatusNotModified {
		var e struct{ Error, Detail string }
		if err := json.Unmarshal(r.body, &e); err != nil || e.Error == "" || e.Detail == "" {
			t.Fatalf("error body %s is not {error, detail}", r.body)
		}
	}
}

type recsAnswer struct {
	UserID       string `json:"user_id"`
	ModelVersion int64  `json:"model_version"`
	Source       string `json:"source"`
	Items        []struct {
		SongID  setlist.SongID `json:"song_id"`
		Artist  string         `json:"artist"`
		Track   string         `json:"track"`
		Score   float64        `json:"score"`
		Because *struct {
			SongID setlist.SongID `json:"song_id"`
			Artist string         `json:"artist"`
		} `json:"because"`
	} `json:"items"`
}

func (a recsAnswer) songs() []setlist.SongID {
	out := make([]setlist.SongID, len(a.Items))
	for i, it := range a.Items {
		out[i] = it.SongID
	}
	return out
}

func (in *instance) recs(t *testing.T, user string, n int) recsAnswer {
	t.Helper()
	r := in.get(t, fmt.Sprintf("/v1/users/%s/recommendations?n=%d", url.PathEscape(user), n))
	wantStatus(t, r, http.StatusOK)
	var a recsAnswer
	r.json(t, &a)
	return a
}

// scrape is the text of /metrics, from the metrics listener.
func (in *instance) scrape(t testing.TB) []byte {
	t.Helper()
	return in.started.Scrape(t, client)
}

// metric reads one sample from /metrics: name with labels rendered as in
// the exposition format, e.g. `setlist_serve_recommendations_total{source="batch"}`.
func (in *instance) metric(t *testing.T, series string) float64 {
	t.Helper()
	return in.started.Metric(t, client, series)
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	servertest.WaitFor(t, what, cond)
}

// faultProxy forwards TCP to target and fails the ways a store does:
// Stall keeps every connection open but drops all bytes both ways (a store
// that stops answering); Down closes every connection and refuses new ones
// (a crash or a cut network path) until Up; Cut is Down for good.
type faultProxy struct {
	ln              net.Listener
	stalled, isDown atomic.Bool
	mu              sync.Mutex
	conns           []net.Conn
}

func newFaultProxy(t *testing.T, target string) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{ln: ln}
	pipe := func(dst, src net.Conn) {
		defer dst.Close()
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 && !p.stalled.Load() {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if p.isDown.Load() {
				c.Close()
				continue
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go pipe(up, c)
			go pipe(c, up)
		}
	}()
	t.Cleanup(p.Cut)
	return p
}

func (p *faultProxy) Addr() string { return p.ln.Addr().String() }

// Stall silently drops every byte from now on.
func (p *faultProxy) Stall() { p.stalled.Store(true) }

// Down closes every open connection and refuses new ones until Up.
func (p *faultProxy) Down() {
	p.isDown.Store(true)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// Up forwards new connections again.
func (p *faultProxy) Up() { p.isDown.Store(false) }

// Cut closes the listener and every connection, for good: clients blocked
// on a stalled connection fail.
func (p *faultProxy) Cut() {
	p.ln.Close()
	p.Down()
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func bufioReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }

// oversized sends a POST whose Content-Length is n bytes over a raw
// connection, headers only, and reads the answer: serve refuses a body over
// its limit from the header alone. (A client that does send the body gets
// the 413 too, not a reset: TestOversizedBodyAlways413.)
func (in *instance) oversized(t testing.TB, path string, n int) response {
	t.Helper()
	u, err := url.Parse(in.base)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", path, u.Host, n)
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("POST %s with a %d-byte Content-Length: %v", path, n, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}
