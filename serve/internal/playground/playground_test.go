package playground

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/setlist/setlist/serve/command"
)

// TestPlayground is `make run` end to end, in process: serve-playground
// with the embedded store on a fresh data dir imports the sample, trains,
// publishes and serves a sample user's batch list; a like makes that user a
// fold-in; a restart on the same dir serves the same version without
// training again.
func TestPlayground(t *testing.T) {
	dir := t.TempDir()
	sample, err := filepath.Abs("../../../data/sample.csv.gz")
	if err != nil {
		t.Fatal(err)
	}
	const user = "00055176fea33f6e027cd3302289378b" // the sample's first user

	base, stop := startPlayground(t, dir, sample)
	var recs struct {
		Version int64  `json:"model_version"`
		Source  string `json:"source"`
		Items   []struct {
			SongID int64 `json:"song_id"`
		} `json:"items"`
	}
	getJSON(t, base+"/v1/users/"+user+"/recommendations?n=5", &recs)
	if recs.Version == 0 || recs.Source != "batch" || len(recs.Items) != 5 {
		t.Fatalf("first start: %+v; want 5 batch recommendations", recs)
	}
	first := recs.Version

	// The sample's users have readable generated names.
	var u struct {
		DisplayName string `json:"display_name"`
	}
	getJSON(t, base+"/v1/users/"+user, &u)
	if u.DisplayName != "Tomas Eriksen" {
		t.Errorf("the sample's first user is named %q, want the generated \"Tomas Eriksen\"", u.DisplayName)
	}

	// /readyz names what the embedded store really is.
	var ready struct{ Checks map[string]string }
	getJSON(t, base+"/readyz", &ready)
	if ready.Checks["sqlite"] != "ok" || ready.Checks["embedded_redis"] != "ok" || ready.Checks["postgres"] != "" || ready.Checks["redis"] != "" {
		t.Errorf("playground /readyz checks %v, want sqlite and embedded_redis, no postgres or redis", ready.Checks)
	}

	body, _ := json.Marshal(map[string]any{"song_id": recs.Items[0].SongID, "kind": "like"})
	resp, err := http.Post(base+"/v1/users/"+user+"/reactions", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var liked struct {
		Attribution struct {
			Shown    bool   `json:"shown"`
			Source   string `json:"source"`
			Position int    `json:"position"`
		} `json:"attribution"`
	}
	err = json.NewDecoder(resp.Body).Decode(&liked)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || err != nil {
		t.Fatalf("like: status %d, %v", resp.StatusCode, err)
	}
	// The embedded backend attributes the like to the answered batch
	// list's first song (the answer names neither arm nor version).
	if a := liked.Attribution; !a.Shown || a.Source != "batch" || a.Position != 1 {
		t.Errorf("like of the first batch song: attribution %+v, want shown, batch, position 1", a)
	}
	getJSON(t, base+"/v1/users/"+user+"/recommendations?n=5", &recs)
	if recs.Source != "fold-in" {
		t.Errorf("after a like: source %q; want fold-in", recs.Source)
	}
	stop()

	base, stop = startPlayground(t, dir, "/nonexistent/sample.csv.gz") // a restart must not need the sample
	defer stop()
	var m struct {
		Version int64 `json:"version"`
		Runs    []struct {
			ID int64 `json:"id"`
		} `json:"runs"`
	}
	getJSON(t, base+"/v1/model", &m)
	if m.Version != first || len(m.Runs) != 1 {
		t.Errorf("after a restart: version %d with %d runs; want version %d and no new run", m.Version, len(m.Runs), first)
	}
	getJSON(t, base+"/v1/users/"+user+"/recommendations?n=5", &recs)
	if recs.Version != first || recs.Source != "fold-in" {
		t.Errorf("after a restart: %+v; want version %d, still a fold-in (the like persisted)", recs, first)
	}
	// The first life's exposure was persisted at shutdown (SQLite and the
	// in-process Redis's HyperLogLog): two answers to one user from the
	// batch list, whose first song that user liked.
	var online struct {
		Online struct {
			Sources []struct {
				Version      int64   `json:"model_version"`
				Source       string  `json:"source"`
				Answers      int64   `json:"answers"`
				Users        int64   `json:"users"`
				Likes        int64   `json:"likes"`
				PositiveRate float64 `json:"positive_rate"`
				MRR          float64 `json:"mrr"`
			} `json:"sources"`
		} `json:"online"`
	}
	getJSON(t, base+"/v1/model", &online)
	found := false
	for _, o := range online.Online.Sources {
		if o.Version == first && o.Source == "batch" {
			found = true
			if o.Answers != 1 || o.Users != 1 || o.Likes != 1 || o.PositiveRate != 1 || o.MRR != 1 {
				t.Errorf("online metrics of the batch list after a restart: %+v; want 1 answer, 1 user, 1 like at position 1", o)
			}
		}
	}
	if !found {
		t.Errorf("no online metrics for version %d's batch list after a restart: %+v", first, online.Online.Sources)
	}
}

// startPlayground runs serve-playground on dir until stop, waiting until
// it is ready.
func startPlayground(t *testing.T, dir, sample string) (base string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	t.Setenv("SETLIST_STORE", "")
	os.Unsetenv("SETLIST_STORE")
	mode := new(Playground).Mode()
	cfg, err := command.Parse(mode, []string{"serve-playground", "--data-dir", dir, "--sample", sample, "--addr", addr, "--log-level", "warn",
		"--model-poll-interval", "200ms"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- command.Serve(ctx, "test", cfg, mode) }()
	base = "http://" + addr
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-done:
			cancel()
			t.Fatalf("serve-playground exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatal("serve-playground not ready within 60s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	return base, func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop within 30s")
		}
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, fmt.Errorf("decode: %w", err))
	}
}
