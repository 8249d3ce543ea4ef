// Command soak holds a real serve process under a fixed, mixed load for a
// bounded time on loopback and checks that nothing was lost:
//
//	read      GET recommendations of a user with a stored list (batch hit)
//	fold-in   GET recommendations of a user the soak reacted for, or created
//	reaction  POST a like or a play for an existing user
//	new-user  POST /v1/users with three likes
//
// Requests are sent open-loop at -rate per second (a slow server does not
// slow the generator down, so queueing shows in the latencies). At the end
// it reports requests, status classes and p50/p99 per kind, and compares
// every acknowledged (201) reaction and user with PostgreSQL. It exits 1 on
// any 5xx, transport error or lost write.
//
// The data: the database and Redis prefix given, prepared on first use with
// the real batch CLI (import of the shared Spotify export when present, else
// the committed sample, then train). serve and batch are built from this
// module into a temporary directory unless -bin-dir names built ones.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/setlist/setlist/internal/postgres"
)

type options struct {
	dbURL, redisURL, prefix, data, binDir string
	duration                              time.Duration
	rate                                  int
	workers                               int
	readPct, foldPct, reactPct            int
}

func main() {
	var o options
	flag.StringVar(&o.dbURL, "database-url", "postgres://postgres@127.0.0.1:5432/setlist_soak?sslmode=disable", "database of the soak (created and prepared if it has no model)")
	flag.StringVar(&o.redisURL, "redis-url", "redis://127.0.0.1:6379/0", "Redis")
	flag.StringVar(&o.prefix, "redis-prefix", "setlist-soak", "key prefix of the soak's model")
	flag.StringVar(&o.data, "data", defaultData(), "interactions CSV to import on first use")
	flag.StringVar(&o.binDir, "bin-dir", "", "directory with built batch and serve binaries (default: build them)")
	flag.DurationVar(&o.duration, "duration", 10*time.Minute, "how long to load")
	flag.IntVar(&o.rate, "rate", 500, "requests per second, all kinds together")
	flag.IntVar(&o.workers, "workers", 128, "concurrent requests at most (beyond, a request is counted late and sent when a worker frees)")
	flag.IntVar(&o.readPct, "read-pct", 70, "percent of batch-hit reads")
	flag.IntVar(&o.foldPct, "foldin-pct", 15, "percent of fold-in reads")
	flag.IntVar(&o.reactPct, "reaction-pct", 13, "percent of reactions (the rest are new users)")
	flag.Parse()
	if o.duration <= 0 || o.duration > time.Hour || o.rate < 1 || o.rate > 5000 || o.readPct+o.foldPct+o.reactPct > 100 {
		fmt.Fprintln(os.Stderr, "soak: need 0 < -duration ≤ 1h, 1 ≤ -rate ≤ 5000 and percentages summing to ≤ 100")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

func defaultData() string {
	for _, p := range []string{"../shared/data/spotify-playlists/interactions.csv.gz", "/work/shared/data/spotify-playlists/interactions.csv.gz"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "data/sample.csv.gz"
}

func run(ctx context.Context, o options) error {
	bin, err := binaries(o.binDir)
	if err != nil {
		return err
	}
	if err := prepare(ctx, o, bin); err != nil {
		return err
	}
	db, err := postgres.Open(ctx, o.dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	d, err := loadData(ctx, db)
	if err != nil {
		return err
	}
	fmt.Printf("data: %d users with reactions, %d songs; %d users with a stored list (batch hits)\n", len(d.users), len(d.songs), len(d.batchUsers))

	srv, err := startServe(ctx, o, bin)
	if err != nil {
		return err
	}
	defer srv.stop()
	d.batchUsers, err = batchHits(srv.base, d.batchUsers)
	if err != nil {
		return err
	}
	fmt.Printf("serve %s: load %d req/s for %v (read %d%%, fold-in %d%%, reaction %d%%, new-user %d%%)\n",
		srv.base, o.rate, o.duration, o.readPct, o.foldPct, o.reactPct, 100-o.readPct-o.foldPct-o.reactPct)
	l := newLoad(o, srv.base, d)
	l.run(ctx)
	l.report()

	fmt.Println("checking every acknowledged write in PostgreSQL")
	lost, err := l.verify(context.Background(), db)
	if err != nil {
		return err
	}
	stopErr := srv.stop()
	var problems []string
	for _, k := range kinds {
		if s := l.stats[k]; s.c5xx.Load() > 0 || s.transport.Load() > 0 {
			problems = append(problems, fmt.Sprintf("%s: %d 5xx, %d transport errors", k, s.c5xx.Load(), s.transport.Load()))
		}
	}
	if lost > 0 {
		problems = append(problems, fmt.Sprintf("%d acknowledged writes missing from PostgreSQL", lost))
	}
	if stopErr != nil {
		problems = append(problems, stopErr.Error())
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	fmt.Println("PASS: no 5xx, no transport error, every acknowledged write is in PostgreSQL, serve stopped cleanly")
	return nil
}

// binaries returns dir holding batch and serve, building them when dir is "".
func binaries(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	dir, err := os.MkdirTemp("", "setlist-soak-bin")
	if err != nil {
		return "", err
	}
	for _, name := range []string{"batch", "serve"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), "./"+name)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("build %s (run from the module root): %w", name, err)
		}
	}
	return dir, nil
}

func batchCmd(ctx context.Context, o options, bin string, args ...string) error {
	full := append([]string{"--database-url", o.dbURL, "--redis-url", o.redisURL, "--redis-prefix", o.prefix, "--log-level", "warn"}, args...)
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "batch"), full...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("batch %s: %w", args[0], err)
	}
	return nil
}

// prepare imports and trains unless the prefix already has a model.
func prepare(ctx context.Context, o options, bin string) error {
	out, err := exec.CommandContext(ctx, filepath.Join(bin, "batch"), "--database-url", o.dbURL, "--redis-url", o.redisURL,
		"--redis-prefix", o.prefix, "--log-level", "warn", "status").CombinedOutput()
	if err == nil && !strings.Contains(string(out), "No model is published") {
		return nil
	}
	fmt.Println("preparing: migrate, import", o.data)
	if err := batchCmd(ctx, o, bin, "migrate"); err != nil { // creates the database
		return err
	}
	if err := batchCmd(ctx, o, bin, "import", "--csv", o.data); err != nil {
		return err
	}
	fmt.Println("preparing: train (64 factors, top 20)")
	return batchCmd(ctx, o, bin, "train", "--factors", "64", "-k", "20", "--force", "--eval-users", "2000")
}

type data struct {
	users, batchUsers []string // users with reactions; the first ≤ 5000 of them with ≤ 200
	songs             []int64
}

func loadData(ctx context.Context, db *postgres.DB) (data, error) {
	var d data
	// One array per query keeps this free of row-scanning plumbing.
	err := db.Pool.QueryRow(ctx, `SELECT COALESCE(array_agg(external_id ORDER BY external_id), '{}') FROM (
		SELECT u.external_id FROM users u JOIN reactions r ON r.user_id = u.id
		GROUP BY u.external_id HAVING count(*) <= 200 ORDER BY u.external_id LIMIT 5000) x`).Scan(&d.users)
	if err != nil {
		return d, fmt.Errorf("pick users: %w", err)
	}
	err = db.Pool.QueryRow(ctx, `SELECT COALESCE(array_agg(id ORDER BY id), '{}') FROM (SELECT id FROM songs ORDER BY id LIMIT 20000) x`).Scan(&d.songs)
	if err != nil {
		return d, fmt.Errorf("pick songs: %w", err)
	}
	if len(d.users) < 100 || len(d.songs) < 10 {
		return d, fmt.Errorf("too little data (%d users, %d songs)", len(d.users), len(d.songs))
	}
	// Half the users are read only (batch hits); the other half receive
	// the soak's reactions (fold-ins after their first).
	d.batchUsers = d.users[:len(d.users)/2]
	d.users = d.users[len(d.users)/2:]
	return d, nil
}

// batchHits keeps the users whose answer is a batch hit now.
func batchHits(base string, users []string) ([]string, error) {
	var out []string
	for _, u := range users {
		res, err := http.Get(base + "/v1/users/" + url.PathEscape(u) + "/recommendations?n=5")
		if err != nil {
			return nil, err
		}
		var a struct{ Source string }
		_ = json.NewDecoder(res.Body).Decode(&a)
		res.Body.Close()
		if a.Source == "batch" {
			out = append(out, u)
		}
		if len(out) == 1000 {
			break
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no user gets a batch hit: is the model published for these users?")
	}
	return out, nil
}

type serveProc struct {
	base string
	cmd  *exec.Cmd
	done chan error
	once sync.Once
	err  error
}

func startServe(ctx context.Context, o options, bin string) (*serveProc, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	// The soak is one client on loopback: the per-client write and scoring
	// limits would throttle it, so they are off (their own tests cover
	// them), and so is authentication (as in the loopback playground), and
	// the metrics listener it does not read.
	cmd := exec.Command(filepath.Join(bin, "serve"), "--addr", addr, "--database-url", o.dbURL, "--redis-url", o.redisURL,
		"--redis-prefix", o.prefix, "--log-level", "warn", "--write-rate", "0", "--scoring-rate", "0", "--shutdown-timeout", "10s",
		"--auth", "off", "--metrics-addr", "", "--max-conns-per-client", "0")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start serve: %w", err)
	}
	s := &serveProc{base: "http://" + addr, cmd: cmd, done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := http.Get(s.base + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			s.stop()
			return nil, errors.New("serve was not ready within 60s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (s *serveProc) stop() error {
	s.once.Do(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-s.done:
			if err != nil {
				s.err = fmt.Errorf("serve exited with %v after SIGTERM", err)
			}
		case <-time.After(30 * time.Second):
			_ = s.cmd.Process.Kill()
			s.err = errors.New("serve did not exit within 30s of SIGTERM")
		}
	})
	return s.err
}

var kinds = []string{"read", "fold-in", "reaction", "new-user"}

type kindStats struct {
	sent, c2xx, c4xx, c5xx, transport atomic.Int64
	mu                                sync.Mutex
	lat                               []time.Duration
	other                             map[int]int // 4xx by status, for the report
}

type ack struct {
	user string
	song int64
	kind string
}

type load struct {
	o      options
	base   string
	d      data
	client *http.Client
	stats  map[string]*kindStats
	late   atomic.Int64

	mu       sync.Mutex
	reacted  []string // users with an acknowledged soak reaction
	acks     []ack
	newUsers map[string][]int64 // acknowledged users and their likes
	seq      atomic.Int64
}

func newLoad(o options, base string, d data) *load {
	l := &load{o: o, base: base, d: d, stats: map[string]*kindStats{}, newUsers: map[string][]int64{},
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: o.workers, MaxConnsPerHost: o.workers}}}
	for _, k := range kinds {
		l.stats[k] = &kindStats{other: map[int]int{}}
	}
	return l
}

// run dispatches requests at the fixed rate until the duration passes.
func (l *load) run(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, l.o.duration)
	defer cancel()
	jobs := make(chan int, l.o.workers)
	var wg sync.WaitGroup
	for w := range l.o.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			for j := range jobs {
				l.one(rng, j)
			}
		}()
	}
	interval := time.Second / time.Duration(l.o.rate)
	next := time.Now()
	progress := time.Now().Add(time.Minute)
	for i := 0; ctx.Err() == nil; i++ {
		next = next.Add(interval)
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		select {
		case jobs <- i:
		default:
			l.late.Add(1) // every worker busy: the server is behind
			select {
			case jobs <- i:
			case <-ctx.Done():
			}
		}
		if time.Now().After(progress) {
			progress = progress.Add(time.Minute)
			var sent, bad int64
			for _, s := range l.stats {
				sent += s.sent.Load()
				bad += s.c5xx.Load() + s.transport.Load()
			}
			fmt.Printf("  %v: %d requests, %d 5xx/transport errors\n", time.Since(next.Add(-time.Duration(i)*interval)).Round(time.Second), sent, bad)
		}
	}
	close(jobs)
	wg.Wait()
}

func (l *load) one(rng *rand.Rand, i int) {
	p := rng.IntN(100)
	switch {
	case p < l.o.readPct:
		u := l.d.batchUsers[rng.IntN(len(l.d.batchUsers))]
		l.do("read", http.MethodGet, "/v1/users/"+url.PathEscape(u)+"/recommendations?n=5", nil, nil)
	case p < l.o.readPct+l.o.foldPct:
		l.mu.Lock()
		var u string
		if len(l.reacted) > 0 {
			u = l.reacted[rng.IntN(len(l.reacted))]
		}
		l.mu.Unlock()
		if u == "" {
			u = l.d.users[rng.IntN(len(l.d.users))]
		}
		l.do("fold-in", http.MethodGet, "/v1/users/"+url.PathEscape(u)+"/recommendations?n=10", nil, nil)
	case p < l.o.readPct+l.o.foldPct+l.o.reactPct:
		u := l.d.users[rng.IntN(len(l.d.users))]
		song := l.d.songs[rng.IntN(len(l.d.songs))]
		kind := "like"
		if rng.IntN(2) == 0 {
			kind = "play"
		}
		body, _ := json.Marshal(map[string]any{"song_id": song, "kind": kind})
		l.do("reaction", http.MethodPost, "/v1/users/"+url.PathEscape(u)+"/reactions", body, func() {
			l.mu.Lock()
			l.acks = append(l.acks, ack{u, song, kind})
			l.reacted = append(l.reacted, u)
			l.mu.Unlock()
		})
	default:
		u := fmt.Sprintf("soak-%d-%d", time.Now().UnixNano(), l.seq.Add(1))
		likes := []int64{l.d.songs[rng.IntN(len(l.d.songs))], l.d.songs[rng.IntN(len(l.d.songs))], l.d.songs[rng.IntN(len(l.d.songs))]}
		refs := make([]map[string]int64, len(likes))
		for i, s := range likes {
			refs[i] = map[string]int64{"song_id": s}
		}
		body, _ := json.Marshal(map[string]any{"user_id": u, "display_name": "Soak " + strconv.Itoa(i), "likes": refs})
		l.do("new-user", http.MethodPost, "/v1/users", body, func() {
			l.mu.Lock()
			l.newUsers[u] = likes
			l.reacted = append(l.reacted, u)
			l.mu.Unlock()
		})
	}
}

func (l *load) do(kind, method, path string, body []byte, onCreated func()) {
	s := l.stats[kind]
	s.sent.Add(1)
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(string(body))
	}
	req, _ := http.NewRequest(method, l.base+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	start := time.Now()
	res, err := l.client.Do(req)
	if err != nil {
		s.transport.Add(1)
		return
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	d := time.Since(start)
	switch {
	case res.StatusCode >= 500:
		s.c5xx.Add(1)
	case res.StatusCode >= 400:
		s.c4xx.Add(1)
	default:
		s.c2xx.Add(1)
		if res.StatusCode == http.StatusCreated && onCreated != nil {
			onCreated()
		}
	}
	s.mu.Lock()
	s.lat = append(s.lat, d)
	if res.StatusCode >= 400 {
		s.other[res.StatusCode]++
	}
	s.mu.Unlock()
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

func (l *load) report() {
	fmt.Printf("\n%-9s %9s %9s %6s %6s %9s %9s %9s\n", "kind", "requests", "2xx", "4xx", "5xx", "transport", "p50", "p99")
	var total int64
	for _, k := range kinds {
		s := l.stats[k]
		slices.Sort(s.lat)
		total += s.sent.Load()
		fmt.Printf("%-9s %9d %9d %6d %6d %9d %9s %9s\n", k, s.sent.Load(), s.c2xx.Load(), s.c4xx.Load(), s.c5xx.Load(), s.transport.Load(),
			quantile(s.lat, 0.50).Round(10*time.Microsecond), quantile(s.lat, 0.99).Round(10*time.Microsecond))
		if len(s.other) > 0 {
			fmt.Printf("          4xx by status: %v\n", s.other)
		}
	}
	fmt.Printf("total %d requests in %v (%.0f/s); %d sent late (all workers busy)\n\n", total, l.o.duration, float64(total)/l.o.duration.Seconds(), l.late.Load())
}

// verify checks every acknowledged write against PostgreSQL: each liked
// (user, song) has its like (the soak sends no dislike, the only thing that
// removes one), each played pair has a weight of at least the plays
// acknowledged, and each created user exists with its likes.
func (l *load) verify(ctx context.Context, db *postgres.DB) (lost int, err error) {
	plays := map[[2]string]int{}
	likes := map[[2]string]bool{}
	for _, a := range l.acks {
		k := [2]string{a.user, strconv.FormatInt(a.song, 10)}
		if a.kind == "play" {
			plays[k]++
		} else {
			likes[k] = true
		}
	}
	for u, ls := range l.newUsers {
		for _, s := range ls {
			likes[[2]string{u, strconv.FormatInt(s, 10)}] = true
		}
	}
	check := func(k [2]string, kind string, min float64) error {
		// -1: no such reaction.
		var w float64
		err := db.Pool.QueryRow(ctx, `SELECT COALESCE((SELECT r.weight FROM reactions r JOIN users u ON u.id = r.user_id
			WHERE u.external_id = $1 AND r.song_id = $2 AND r.kind = $3), -1)`, k[0], k[1], kind).Scan(&w)
		switch {
		case err == nil && w < 0:
			lost++
			if lost <= 10 {
				fmt.Printf("  LOST: %s of song %s by %q\n", kind, k[1], k[0])
			}
		case err != nil:
			return err
		case w < min:
			lost++
			fmt.Printf("  LOST: %q's plays of song %s: weight %v < %v acknowledged\n", k[0], k[1], w, min)
		}
		return nil
	}
	for k, n := range plays {
		if err := check(k, "play", float64(n)); err != nil {
			return lost, err
		}
	}
	for k := range likes {
		if err := check(k, "like", 0); err != nil {
			return lost, err
		}
	}
	fmt.Printf("  %d acknowledged reactions (%d play pairs, %d like pairs incl. new users' likes), %d new users: %d lost\n",
		len(l.acks), len(plays), len(likes), len(l.newUsers), lost)
	return lost, nil
}
