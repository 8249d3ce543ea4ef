// Package servertest runs serve's server in process on loopback ports, for
// serve's own tests (serve/internal/server's harness) and for the figure
// harnesses under serve/bench, which measure the same server and may not
// import a test package. Nothing in a binary imports it (arch_test.go).
package servertest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/serve/internal/server"
)

// Instance is one running server: the API on Base, /metrics on Metrics.
type Instance struct {
	Server   *server.Server
	Base     string // the API listener's base URL
	Metrics  string // the metrics listener's base URL
	Registry *prometheus.Registry
	Done     chan error // Serve's result
}

// FastConfig is serve's configuration for tests: the pointer polled every
// 200 ms (a test waits for a version in fractions of a second), a 16 MiB
// near cache, three explained items, a 5 s shutdown.
func FastConfig() server.Config {
	var cfg server.Config
	cfg.Recs.PollInterval = 200 * time.Millisecond
	cfg.Recs.NearCacheBytes = 16 << 20
	cfg.Recs.Explain = 3
	cfg.ShutdownTimeout = 5 * time.Second
	return cfg
}

// Start runs a server with deps (Registry is set to a fresh one) on random
// loopback ports and shuts it down when the test ends.
func Start(t testing.TB, cfg server.Config, deps server.Deps) *Instance {
	t.Helper()
	reg := prometheus.NewRegistry()
	deps.Registry = reg
	srv, err := server.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	in := &Instance{Server: srv, Base: "http://" + ln.Addr().String(), Metrics: "http://" + mln.Addr().String(), Registry: reg, Done: make(chan error, 1)}
	go func() { in.Done <- srv.Serve(ln) }()
	go func() { _ = srv.ServeMetrics(mln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return in
}

// WaitModel waits until the instance serves version v.
func (in *Instance) WaitModel(t testing.TB, v int64) {
	t.Helper()
	WaitFor(t, fmt.Sprintf("model version %d loaded", v), func() bool {
		snap := in.Server.Recs().Current()
		return snap != nil && int64(snap.Version) == v
	})
}

// WaitNearCache asks for user's recommendations until in's near cache
// holds an answer: the cache takes answers only while the events
// subscription is up, which WaitModel does not wait for (a test counting
// near-cache hits right after start could otherwise see none).
func (in *Instance) WaitNearCache(t testing.TB, c *http.Client, user setlist.UserID) {
	t.Helper()
	path := "/v1/users/" + url.PathEscape(string(user)) + "/recommendations?n=5"
	WaitFor(t, "the near cache to take answers", func() bool {
		if r, err := Do(c, http.MethodGet, in.Base+path, nil); err != nil || r.Status != http.StatusOK {
			t.Fatalf("GET %s: %d %s %v", path, r.Status, r.Body, err)
		}
		return in.Metric(t, c, "setlist_serve_near_cache_entries") > 0
	})
}

// WaitFor polls cond every 20 ms and fails t after 10 s.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Response is one answer, read whole.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do sends method url with body (nil; a string or []byte as is; anything
// else as JSON) through c and reads the answer. It calls no t.Fatal, so
// load goroutines may use it.
func Do(c *http.Client, method, url string, body any) (Response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return Response{}, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.Do(req)
	if err != nil {
		return Response{}, fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return Response{Status: res.StatusCode, Header: res.Header, Body: b}, err
}

// Scrape is the text of in's /metrics, from the metrics listener.
func (in *Instance) Scrape(t testing.TB, c *http.Client) []byte {
	t.Helper()
	res, err := c.Get(in.Metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %v %v", res.Status, err)
	}
	return body
}

// Metric reads one sample from in's /metrics: name with labels rendered
// as in the exposition format, e.g.
// `setlist_serve_recommendations_total{source="batch"}`; 0 when absent.
func (in *Instance) Metric(t testing.TB, c *http.Client, series string) float64 {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(in.Scrape(t, c)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			return v
		}
	}
	return 0
}
