package redistest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClusterNodes is the size of a test cluster: three masters, each with one
// replica, the smallest cluster in which a master can fail over.
const ClusterNodes = 6

// Cluster is a Redis Cluster of ClusterNodes redis-server processes on
// loopback ports, started from the Debian redis-server binary. Its
// processes are exposed so fault tests can kill a master and watch the
// replica take over.
type Cluster struct {
	dir   string
	mu    sync.Mutex
	nodes []*node
}

type node struct {
	port int
	cmd  *exec.Cmd
	dead bool
	log  string
}

func (n *node) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.port)) }

// NewCluster starts a cluster of its own for tb, stopped and deleted when tb
// ends. Tests that kill nodes want this; others share one (SharedCluster).
// It fails (never skips) when redis-server or redis-cli is missing.
func NewCluster(tb testing.TB) *Cluster {
	tb.Helper()
	c, err := StartCluster(tb.TempDir())
	if err != nil {
		tb.Fatalf("start a Redis Cluster: %v", err)
	}
	tb.Cleanup(c.Close)
	return c
}

var shared struct {
	mu      sync.Mutex
	main    bool
	cluster *Cluster
	err     error
}

// Main runs a test package's tests and stops the package's shared cluster
// (SharedCluster) after them. A package that uses SharedCluster calls it
// from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }
func Main(m *testing.M) int {
	shared.mu.Lock()
	shared.main = true
	shared.mu.Unlock()
	code := m.Run()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.cluster != nil {
		shared.cluster.Close()
		_ = os.RemoveAll(shared.cluster.dir)
	}
	return code
}

// SharedCluster returns the test package's one cluster, started on first
// use (~2 s) and stopped by Main: tests share it through distinct key
// prefixes (ClusterClient). Do not kill its nodes; NewCluster is for that.
func SharedCluster(tb testing.TB) *Cluster {
	tb.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.main {
		tb.Fatal("redistest.SharedCluster needs the package's TestMain to call redistest.Main, which stops the cluster")
	}
	if shared.cluster == nil && shared.err == nil {
		dir, err := os.MkdirTemp("", "setlist-cluster-")
		if err == nil {
			shared.cluster, err = StartCluster(dir)
			if err != nil {
				_ = os.RemoveAll(dir)
			}
		}
		shared.err = err
	}
	if shared.err != nil {
		tb.Fatalf("start a Redis Cluster: %v", shared.err)
	}
	return shared.cluster
}

// StartCluster starts ClusterNodes nodes with their files in dir, joins
// them into a cluster with one replica per master and waits until every
// node says the cluster is ok. The caller stops it with Close.
func StartCluster(dir string) (*Cluster, error) {
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("%s is required for the Redis Cluster tests and is not on PATH "+
				"(Debian: apt-get install redis-server; bash .ci/run installs it): %w", bin, err)
		}
	}
	c := &Cluster{dir: dir}
	ports, err := freePorts(ClusterNodes)
	if err != nil {
		return nil, err
	}
	for _, p := range ports {
		n := &node{port: p, log: filepath.Join(dir, fmt.Sprintf("redis-%d.log", p))}
		c.nodes = append(c.nodes, n)
		if err := c.start(n); err != nil {
			c.Close()
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, n := range c.nodes {
		if err := waitPing(ctx, n.addr()); err != nil {
			c.Close()
			return nil, fmt.Errorf("node %s did not start (log %s): %w", n.addr(), n.log, err)
		}
	}
	args := []string{"--cluster", "create"}
	for _, n := range c.nodes {
		args = append(args, n.addr())
	}
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		c.Close()
		return nil, fmt.Errorf("redis-cli --cluster create: %w\n%s", err, out)
	}
	if err := c.waitHealthy(ctx); err != nil {
		c.Close()
		return nil, err
	}
	if err := c.waitReplicas(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// start launches n's redis-server; its nodes file keeps its identity, so a
// restarted node rejoins the cluster.
func (c *Cluster) start(n *node) error {
	port := strconv.Itoa(n.port)
	cmd := exec.Command("redis-server",
		"--port", port, "--bind", "127.0.0.1",
		"--cluster-enabled", "yes", "--cluster-config-file", "nodes-"+port+".conf",
		// Fault tests wait for failovers: detect a dead master in 1 s.
		"--cluster-node-timeout", "1000",
		// Replicas sync at once (the default waits 5 s for more replicas).
		"--repl-diskless-sync-delay", "0",
		"--appendonly", "no", "--save", "", "--daemonize", "no",
		"--dir", c.dir, "--logfile", n.log)
	cmd.Dir = c.dir
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server on port %d: %w", n.port, err)
	}
	n.cmd, n.dead = cmd, false
	return nil
}

// Close kills every node. Files are removed by the owner of the directory
// (t.TempDir, or Main).
func (c *Cluster) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.nodes {
		if n.cmd != nil && !n.dead {
			_ = n.cmd.Process.Kill()
			_ = n.cmd.Wait()
			n.dead = true
		}
	}
}

// Addrs are the nodes' addresses, dead ones included.
func (c *Cluster) Addrs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.addr()
	}
	return out
}

// URL is the cluster in the form --redis-url takes with --redis-cluster
// (redis.ParseClusterURL): every node is a seed.
func (c *Cluster) URL() string {
	addrs := c.Addrs()
	u := "redis://" + addrs[0]
	for i, a := range addrs[1:] {
		if i == 0 {
			u += "?"
		} else {
			u += "&"
		}
		u += "addr=" + a
	}
	return u
}

// Options are the cluster client options every test client uses.
func (c *Cluster) Options() *redis.ClusterOptions {
	opts, err := redis.ParseClusterURL(c.URL())
	if err != nil {
		panic(err) // URL builds a valid one
	}
	opts.ContextTimeoutEnabled = true
	return opts
}

// Client returns a cluster client and a key prefix of tb's own; keys under
// it are deleted on every master when tb ends.
func (c *Cluster) Client(tb testing.TB) (*redis.ClusterClient, string) {
	tb.Helper()
	rdb := redis.NewClusterClient(c.Options())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		tb.Fatalf("Redis Cluster at %s does not answer: %v", c.URL(), err)
	}
	prefix := newPrefix()
	tb.Cleanup(func() {
		deletePrefix(rdb, prefix)
		_ = rdb.Close()
	})
	return rdb, prefix
}

// KillMaster kills (SIGKILL) the master serving key's slot and returns its
// address; its replica takes over after the node timeout (WaitHealthy).
func (c *Cluster) KillMaster(tb testing.TB, key string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rdb := redis.NewClusterClient(c.Options())
	defer rdb.Close()
	addr, err := masterOf(ctx, rdb, key)
	if err != nil {
		tb.Fatalf("find the master of %q: %v", key, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.nodes {
		if n.addr() == addr && !n.dead {
			_ = n.cmd.Process.Kill()
			_ = n.cmd.Wait()
			n.dead = true
			return addr
		}
	}
	tb.Fatalf("master %s of %q is not a live node of this cluster", addr, key)
	return ""
}

// ConfigSet sets a setting on every live node (CONFIG SET), as a test's
// stand-in for the production manifest's redis.conf.
func (c *Cluster) ConfigSet(tb testing.TB, name, value string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, a := range c.liveAddrs() {
		n := redis.NewClient(&redis.Options{Addr: a})
		err := n.ConfigSet(ctx, name, value).Err()
		_ = n.Close()
		if err != nil {
			tb.Fatalf("%s: CONFIG SET %s %s: %v", a, name, value, err)
		}
	}
}

func (c *Cluster) liveAddrs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, n := range c.nodes {
		if !n.dead {
			out = append(out, n.addr())
		}
	}
	return out
}

// Sync waits until every master's writes so far reached its replica
// (WAIT 1), so a kill that follows loses nothing.
func (c *Cluster) Sync(tb testing.TB, rdb *redis.ClusterClient) {
	tb.Helper()
	err := rdb.ForEachMaster(context.Background(), func(ctx context.Context, m *redis.Client) error {
		n, err := m.Do(ctx, "WAIT", 1, 2000).Int()
		if err == nil && n < 1 {
			err = fmt.Errorf("%s: no replica acknowledged", m.Options().Addr)
		}
		return err
	})
	if err != nil {
		tb.Fatalf("wait for replicas: %v", err)
	}
}

// Restart starts a killed node again; it rejoins as a replica of the master
// that replaced it.
func (c *Cluster) Restart(tb testing.TB, addr string) {
	tb.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.nodes {
		if n.addr() == addr {
			if !n.dead {
				tb.Fatalf("node %s is running", addr)
			}
			if err := c.start(n); err != nil {
				tb.Fatal(err)
			}
			return
		}
	}
	tb.Fatalf("%s is not a node of this cluster", addr)
}

// WaitHealthy waits up to timeout until every live node says
// cluster_state:ok with all slots ok and every slot is served by a live
// master (so right after KillMaster it waits for the failover, not only
// for the cluster to notice).
func (c *Cluster) WaitHealthy(tb testing.TB, timeout time.Duration) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := c.waitHealthy(ctx); err != nil {
		tb.Fatal(err)
	}
}

func (c *Cluster) waitHealthy(ctx context.Context) error {
	var last error
	for {
		if last = c.healthy(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("redis cluster in %s not healthy: %w", c.dir, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitReplicas waits until every replica's link to its master is up (the
// initial sync done), so Sync and failovers work from the start.
func (c *Cluster) waitReplicas(ctx context.Context) error {
	for _, addr := range c.Addrs() {
		rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, ContextTimeoutEnabled: true})
		for {
			info, err := rdb.Info(ctx, "replication").Result()
			if err == nil && (strings.Contains(info, "role:master") || strings.Contains(info, "master_link_status:up")) {
				break
			}
			select {
			case <-ctx.Done():
				_ = rdb.Close()
				return fmt.Errorf("replica %s did not sync with its master: %v %s", addr, err, info)
			case <-time.After(50 * time.Millisecond):
			}
		}
		_ = rdb.Close()
	}
	return nil
}

func (c *Cluster) healthy(ctx context.Context) error {
	c.mu.Lock()
	live := map[string]bool{}
	for _, n := range c.nodes {
		if !n.dead {
			live[n.addr()] = true
		}
	}
	c.mu.Unlock()
	for addr := range live {
		err := func() error {
			rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second, ContextTimeoutEnabled: true})
			defer rdb.Close()
			info, err := rdb.ClusterInfo(ctx).Result()
			if err != nil {
				return fmt.Errorf("%s: cluster info: %w", addr, err)
			}
			for _, want := range []string{"cluster_state:ok", "cluster_slots_ok:16384"} {
				if !strings.Contains(info, want) {
					return fmt.Errorf("%s: no %s in CLUSTER INFO", addr, want)
				}
			}
			slots, err := rdb.ClusterSlots(ctx).Result()
			if err != nil {
				return fmt.Errorf("%s: cluster slots: %w", addr, err)
			}
			covered := 0
			for _, s := range slots {
				if len(s.Nodes) == 0 || !live[s.Nodes[0].Addr] {
					return fmt.Errorf("%s: slots %d-%d served by %v, not a live master", addr, s.Start, s.End, s.Nodes)
				}
				covered += s.End - s.Start + 1
			}
			if covered != 16384 {
				return fmt.Errorf("%s: %d slots covered", addr, covered)
			}
			return nil
		}()
		if err != nil {
			return err
		}
	}
	return nil
}

// masterOf is the address of the master serving key's slot.
func masterOf(ctx context.Context, rdb *redis.ClusterClient, key string) (string, error) {
	slot, err := rdb.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		return "", err
	}
	slots, err := rdb.ClusterSlots(ctx).Result()
	if err != nil {
		return "", err
	}
	for _, s := range slots {
		if int64(s.Start) <= slot && slot <= int64(s.End) && len(s.Nodes) > 0 {
			return s.Nodes[0].Addr, nil
		}
	}
	return "", fmt.Errorf("slot %d is not served", slot)
}

// freePorts finds n loopback ports that are free together with their
// cluster bus ports (port + 10000).
func freePorts(n int) ([]int, error) {
	var out []int
	seen := map[int]bool{}
	for tries := 0; len(out) < n; tries++ {
		if tries > 200 {
			return nil, errors.New("no free loopback ports for a Redis Cluster")
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if p+10000 > 65535 || seen[p] || seen[p+10000] || seen[p-10000] {
			continue
		}
		bus, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p+10000)))
		if err != nil {
			continue
		}
		_ = bus.Close()
		seen[p] = true
		out = append(out, p)
	}
	return out, nil
}

// waitPing waits until addr accepts connections (dialled directly: a
// go-redis client would log every refused attempt) and answers PING.
func waitPing(ctx context.Context, addr string) error {
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = conn.Close()
			rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
			err = rdb.Ping(ctx).Err()
			_ = rdb.Close()
			if err == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Log returns the tail of the log of the node at addr, for failure messages.
func (c *Cluster) Log(addr string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.nodes {
		if n.addr() == addr {
			f, err := os.Open(n.log)
			if err != nil {
				return err.Error()
			}
			defer f.Close()
			var lines []string
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				lines = append(lines, sc.Text())
				if len(lines) > 40 {
					lines = lines[1:]
				}
			}
			return strings.Join(lines, "\n")
		}
	}
	return ""
}
