package server_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// TestMetricsLabelsSurviveConcurrentRequests drives many concurrent requests
// of mixed methods and paths (each with its own method length, so a label
// that points into a reused request buffer shows up as a torn word such as
// "GETT" or "POS") and then checks that every series of the request
// histogram has a real method and a registered route pattern as labels.
// Fiber's strings alias fasthttp's per-request buffers, which are reused by
// later requests: anything kept past the request must be a copy.
func TestMetricsLabelsSurviveConcurrentRequests(t *testing.T) {
	w := newWorld(t)
	cfg := fastConfig()
	cfg.API.WriteRate = 0 // every write reaches its handler
	in := w.start(t, cfg, nil)
	in.waitModel(t, 1)

	type call struct{ method, path, body string }
	calls := []call{
		{http.MethodGet, "/v1/users/batchy/recommendations?n=3", ""},
		{http.MethodGet, "/v1/users?limit=2&query=fo", ""},
		{http.MethodPost, "/v1/users/folder/reactions", fmt.Sprintf(`{"song_id": %d, "kind": "play"}`, w.songs[30])},
		{http.MethodDelete, fmt.Sprintf("/v1/users/folder/reactions/%d?kind=play", w.songs[30]), ""},
		{http.MethodHead, "/healthz", ""},
		{http.MethodOptions, "/v1/model", ""},
		{http.MethodPut, "/v1/users/newbie", `{}`},
		{http.MethodPatch, "/v1/songs/1/similar", `{}`},
		{http.MethodGet, "/v1/songs?query=Track", ""},
		{http.MethodGet, "/v1/no/such/thing/at/all", ""},
		{http.MethodPost, "/v1/admin/reload", ""},
		{http.MethodGet, "/index.html", ""},
		{http.MethodGet, "/readyz", ""},
		{http.MethodDelete, "/v1/users/newbie", ""},
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 32}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 60 {
				c := calls[(g*7+i)%len(calls)]
				var body io.Reader
				if c.body != "" {
					body = strings.NewReader(c.body)
				}
				req, _ := http.NewRequest(c.method, in.base+c.path, body)
				if c.body != "" {
					req.Header.Set("Content-Type", "application/json")
				}
				res, err := hc.Do(req)
				if err != nil {
					errs <- err
					return
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	methods := map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true,
		"OPTIONS": true, "CONNECT": true, "TRACE": true, "other": true}
	routes := map[string]bool{"unmatched": true, "/*": true, "/healthz": true, "/readyz": true, "/metrics": true,
		"/v1/users": true, "/v1/users/:user_id": true, "/v1/users/:user_id/recommendations": true,
		"/v1/users/:user_id/reactions": true, "/v1/users/:user_id/reactions/:song_id": true, "/v1/songs": true,
		"/v1/songs/:song_id/similar": true, "/v1/model": true, "/v1/admin": true, // admin auth refused "/v1/admin/rollback": true,
		"/v1/admin/reload": true}
	series := regexp.MustCompile(`^setlist_serve_http_request_duration_seconds_count\{code="(\d+)",method="([^"]*)",route="([^"]*)"\} `)
	sc := bufio.NewScanner(bytes.NewReader(in.scrape(t)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	seen, seenRoute := map[string]bool{}, map[string]bool{}
	for sc.Scan() {
		m := series.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		if !methods[m[2]] {
			t.Errorf("method label %q is not an HTTP method (series %s)", m[2], sc.Text())
		}
		if !routes[m[3]] {
			t.Errorf("route label %q is not a route pattern (series %s)", m[3], sc.Text())
		}
		seen[m[2]], seenRoute[m[3]] = true, true
	}
	if !seenRoute["unmatched"] {
		t.Errorf("requests no route takes are not labelled route=\"unmatched\"")
	}
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} {
		if !seen[m] {
			t.Errorf("no series for method %s: the requests were not counted", m)
		}
	}
}
