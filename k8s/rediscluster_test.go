package k8s_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/setlist/setlist/k8s/k8stest"
)

// clusterOverlay is the overlay that swaps the single Redis for the
// redis-cluster component (k8s/components/redis-cluster).
const clusterOverlay = "production-cluster"

// redisCluster is the component's objects in one build.
type redisCluster struct {
	ss  *appsv1.StatefulSet
	svc *corev1.Service
	pdb *policyv1.PodDisruptionBudget
	job *batchv1.Job
}

func findRedisCluster(objs []k8stest.Object) redisCluster {
	var rc redisCluster
	for _, o := range objs {
		switch v := o.Obj.(type) {
		case *appsv1.StatefulSet:
			if v.Name == "setlist-redis-cluster" {
				rc.ss = v
			}
		case *corev1.Service:
			if v.Name == "setlist-redis-cluster" {
				rc.svc = v
			}
		case *policyv1.PodDisruptionBudget:
			if v.Name == "setlist-redis-cluster" {
				rc.pdb = v
			}
		case *batchv1.Job:
			if v.Name == "setlist-redis-cluster-create" {
				rc.job = v
			}
		}
	}
	return rc
}

// podAddrs are the StatefulSet's pods as host:port, by their stable DNS
// names under its headless Service, in ordinal order.
func (rc redisCluster) podAddrs(t *testing.T) []string {
	t.Helper()
	port := int32(0)
	for _, p := range rc.ss.Spec.Template.Spec.Containers[0].Ports {
		if p.Name == "redis" {
			port = p.ContainerPort
		}
	}
	if port == 0 || rc.ss.Spec.Replicas == nil {
		t.Fatalf("StatefulSet %s: no redis port or no replicas", rc.ss.Name)
	}
	var out []string
	for i := range int(*rc.ss.Spec.Replicas) {
		out = append(out, fmt.Sprintf("%s-%d.%s:%d", rc.ss.Name, i, rc.ss.Spec.ServiceName, port))
	}
	return out
}

// flagValue is the value after flag in a redis-server argument list.
func flagValue(args []string, flag string) (string, bool) {
	i := slices.Index(args, flag)
	if i < 0 || i+1 >= len(args) {
		return "", false
	}
	return args[i+1], true
}

// checkRedis: production-cluster replaces the single Redis by the
// component's cluster, wired right (headless Service, anti-affinity, a PDB
// over exactly its pods, a create Job naming exactly its pods), and every
// serve and batch container is configured for a cluster client seeded with
// those pods; the other overlays keep the single Redis and a plain client.
func checkRedis(t *testing.T, ov string, objs []k8stest.Object) {
	t.Helper()
	rc := findRedisCluster(objs)
	single := false
	for _, o := range objs {
		if o.Name == "setlist-redis" && (o.Kind == "StatefulSet" || o.Kind == "Service") {
			single = true
		}
	}
	containers := append(k8stest.Containers(objs, "serve"), k8stest.Containers(objs, "batch")...)
	if len(containers) == 0 {
		t.Fatal("no serve or batch container")
	}
	if ov != clusterOverlay {
		if rc.ss != nil || rc.svc != nil || rc.pdb != nil || rc.job != nil || !single {
			t.Errorf("overlay %s: want the single Redis and no cluster objects", ov)
		}
		for _, c := range containers {
			env, err := c.Env(objs)
			if err != nil {
				t.Fatal(err)
			}
			if env["SETLIST_REDIS_CLUSTER"] == "true" || !strings.HasPrefix(env["REDIS_URL"], "redis://setlist-redis:") {
				t.Errorf("%s: REDIS_URL %q, SETLIST_REDIS_CLUSTER %q: want the single Redis", c, env["REDIS_URL"], env["SETLIST_REDIS_CLUSTER"])
			}
		}
		return
	}
	if single {
		t.Errorf("overlay %s still has the single Redis (setlist-redis)", ov)
	}
	if rc.ss == nil || rc.svc == nil || rc.pdb == nil || rc.job == nil {
		t.Fatalf("overlay %s: StatefulSet %v, Service %v, PodDisruptionBudget %v, Job %v: want all four",
			ov, rc.ss != nil, rc.svc != nil, rc.pdb != nil, rc.job != nil)
	}
	podLabels := labels.Set(rc.ss.Spec.Template.Labels)

	// The StatefulSet: 3 masters × (1 + 1 replica), all started at once.
	if rc.ss.Spec.Replicas == nil || *rc.ss.Spec.Replicas != 6 {
		t.Errorf("%s: replicas %v, want 6 (3 masters, 3 replicas)", rc.ss.Name, rc.ss.Spec.Replicas)
	}
	if rc.ss.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		t.Errorf("%s: podManagementPolicy %q: a pod is ready only once the cluster is formed, so it must be Parallel", rc.ss.Name, rc.ss.Spec.PodManagementPolicy)
	}
	sel, err := metav1.LabelSelectorAsSelector(rc.ss.Spec.Selector)
	if err != nil || !sel.Matches(podLabels) {
		t.Errorf("%s: selector %v does not match its pod labels %v", rc.ss.Name, rc.ss.Spec.Selector, podLabels)
	}
	c := rc.ss.Spec.Template.Spec.Containers[0]
	for flag, want := range map[string]string{"--cluster-enabled": "yes", "--maxmemory-policy": "noeviction",
		"--cluster-require-full-coverage": "no", "--cluster-config-file": "/data/nodes.conf"} {
		if v, _ := flagValue(c.Args, flag); v != want {
			t.Errorf("%s: %s %q, want %q", rc.ss.Name, flag, v, want)
		}
	}
	if v, ok := flagValue(c.Args, "--maxmemory"); !ok || v == "" || v == "0" {
		t.Errorf("%s: no --maxmemory", rc.ss.Name)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.Exec == nil || !strings.Contains(strings.Join(c.ReadinessProbe.Exec.Command, " "), "cluster_state:ok") {
		t.Errorf("%s: the readiness probe must ask for cluster_state:ok", rc.ss.Name)
	}
	mounted := slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == "/data" })
	claimed := slices.ContainsFunc(rc.ss.Spec.VolumeClaimTemplates, func(p corev1.PersistentVolumeClaim) bool { return p.Name == "data" })
	if !mounted || !claimed {
		t.Errorf("%s: nodes.conf must live on a per-pod claim mounted at /data (mounted %v, claim %v)", rc.ss.Name, mounted, claimed)
	}
	// Anti-affinity over nodes (and zones), selecting the cluster's pods.
	aff := rc.ss.Spec.Template.Spec.Affinity
	topologies := map[string]bool{}
	if aff != nil && aff.PodAntiAffinity != nil {
		for _, w := range aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
			s, err := metav1.LabelSelectorAsSelector(w.PodAffinityTerm.LabelSelector)
			if err == nil && s.Matches(podLabels) && w.Weight > 0 {
				topologies[w.PodAffinityTerm.TopologyKey] = true
			}
		}
	}
	if !topologies["kubernetes.io/hostname"] || !topologies["topology.kubernetes.io/zone"] {
		t.Errorf("%s: preferred podAntiAffinity over its own pods by hostname and zone: have %v", rc.ss.Name, topologies)
	}

	// The headless Service the pods' DNS names come from.
	if rc.ss.Spec.ServiceName != rc.svc.Name || rc.svc.Spec.ClusterIP != corev1.ClusterIPNone || !rc.svc.Spec.PublishNotReadyAddresses {
		t.Errorf("%s: serviceName %q; Service %s clusterIP %q publishNotReadyAddresses %v: want a headless Service of that name publishing not-ready pods",
			rc.ss.Name, rc.ss.Spec.ServiceName, rc.svc.Name, rc.svc.Spec.ClusterIP, rc.svc.Spec.PublishNotReadyAddresses)
	}
	if !labels.SelectorFromSet(rc.svc.Spec.Selector).Matches(podLabels) {
		t.Errorf("Service %s selector %v does not select the cluster's pods", rc.svc.Name, rc.svc.Spec.Selector)
	}

	// The PDB: one pod at a time, over exactly the cluster's pods.
	if rc.pdb.Spec.MaxUnavailable == nil || rc.pdb.Spec.MaxUnavailable.IntValue() != 1 || rc.pdb.Spec.MinAvailable != nil {
		t.Errorf("PodDisruptionBudget %s: maxUnavailable %v minAvailable %v, want maxUnavailable 1", rc.pdb.Name, rc.pdb.Spec.MaxUnavailable, rc.pdb.Spec.MinAvailable)
	}
	pdbSel, err := metav1.LabelSelectorAsSelector(rc.pdb.Spec.Selector)
	if err != nil || !pdbSel.Matches(podLabels) {
		t.Errorf("PodDisruptionBudget %s selects %v, not the cluster's pods %v", rc.pdb.Name, rc.pdb.Spec.Selector, podLabels)
	}
	for _, p := range k8stest.Pods(objs) {
		var l map[string]string
		switch v := p.Object.Obj.(type) {
		case *appsv1.Deployment:
			l = v.Spec.Template.Labels
		case *appsv1.StatefulSet:
			l = v.Spec.Template.Labels
		case *batchv1.Job:
			l = v.Spec.Template.Labels
		case *batchv1.CronJob:
			l = v.Spec.JobTemplate.Spec.Template.Labels
		}
		if p.Object.Name != rc.ss.Name && pdbSel.Matches(labels.Set(l)) {
			t.Errorf("PodDisruptionBudget %s also selects the pods of %s", rc.pdb.Name, p.Object)
		}
	}

	// The create Job names exactly the StatefulSet's pods.
	pods := rc.podAddrs(t)
	jenv := jobEnv(rc.job)
	if got := strings.Fields(jenv["NODES"]); !slices.Equal(got, pods) {
		t.Errorf("Job %s: NODES %q, want the StatefulSet's pods %q", rc.job.Name, got, pods)
	}
	if n, err := strconv.Atoi(jenv["REPLICAS"]); err != nil || 3*(n+1) != len(pods) {
		t.Errorf("Job %s: REPLICAS %q with %d pods: want 3 masters", rc.job.Name, jenv["REPLICAS"], len(pods))
	}

	// serve and batch: a cluster client seeded with exactly those pods.
	for _, c := range containers {
		env, err := c.Env(objs)
		if err != nil {
			t.Fatal(err)
		}
		if env["SETLIST_REDIS_CLUSTER"] != "true" {
			t.Errorf("%s: SETLIST_REDIS_CLUSTER %q, want true", c, env["SETLIST_REDIS_CLUSTER"])
		}
		opts, err := redis.ParseClusterURL(env["REDIS_URL"])
		if err != nil {
			t.Errorf("%s: REDIS_URL %q is not a cluster URL: %v", c, env["REDIS_URL"], err)
			continue
		}
		if got := slices.Sorted(slices.Values(opts.Addrs)); !slices.Equal(got, pods) {
			t.Errorf("%s: REDIS_URL seeds %q, want the StatefulSet's pods %q", c, got, pods)
		}
	}
	for _, o := range objs {
		if d, ok := o.Obj.(*appsv1.Deployment); ok && d.Name == "setlist-serve" && d.Spec.Template.Annotations["setlist.io/redis"] != "cluster" {
			t.Errorf("%s: no setlist.io/redis=cluster pod annotation: switching would not roll serve onto the cluster settings", o)
		}
	}
}

func jobEnv(j *batchv1.Job) map[string]string {
	out := map[string]string{}
	for _, e := range j.Spec.Template.Spec.Containers[0].Env {
		out[e.Name] = e.Value
	}
	return out
}

// TestRedisClusterCreateJob starts six real redis-servers with the
// StatefulSet's own arguments (ports, directory and announced host name
// moved to this machine's loopback), runs the create Job's own script
// against them twice, and checks that the first run formed 3 masters with
// a replica each covering every slot, that the second left it alone, and
// that a go-redis cluster client seeded as serve's REDIS_URL is (pod names
// mapped to the loopback ports) reads and writes through it.
func TestRedisClusterCreateJob(t *testing.T) {
	for _, bin := range []string{"redis-server", "redis-cli", "getent"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("%s is required for this test (bash .ci/run installs redis-server): %v", bin, err)
		}
	}
	objs := k8stest.Build(t, clusterOverlay)
	rc := findRedisCluster(objs)
	if rc.ss == nil || rc.job == nil {
		t.Fatal("production-cluster has no setlist-redis-cluster StatefulSet or create Job")
	}
	pods := rc.podAddrs(t)
	ports := freePorts(t, len(pods))
	local := map[string]string{} // pod host:port → 127.0.0.1:port
	var nodes, dirs []string
	var stops []func()
	for i, p := range pods {
		addr := fmt.Sprintf("127.0.0.1:%d", ports[i])
		local[p] = addr
		nodes = append(nodes, addr)
		dirs = append(dirs, t.TempDir())
		stops = append(stops, startNode(t, rc.ss, ports[i], dirs[i]))
	}

	job := rc.job.Spec.Template.Spec.Containers[0]
	if len(job.Command) != 3 || job.Command[0] != "sh" || job.Command[1] != "-c" {
		t.Fatalf("Job %s: command %q, want sh -c SCRIPT", rc.job.Name, job.Command)
	}
	run := func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "sh", "-c", job.Command[2])
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
		for k, v := range jobEnv(rc.job) {
			if k == "NODES" {
				v = strings.Join(nodes, " ")
			}
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("the create Job's script: %v\n%s", err, out)
		}
		return string(out)
	}
	if out := run(); !strings.Contains(out, "cluster formed") {
		t.Fatalf("first run did not form the cluster:\n%s", out)
	}
	if out := run(); !strings.Contains(out, "already formed") || strings.Contains(out, "Performing hash slots allocation") {
		t.Fatalf("second run must leave the formed cluster alone:\n%s", out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Serve's seeds, pod names mapped to the loopback nodes.
	var serveEnv map[string]string
	for _, c := range k8stest.Containers(objs, "serve") {
		if c.Pod.Object.Kind == "Deployment" {
			serveEnv, _ = c.Env(objs)
		}
	}
	opts, err := redis.ParseClusterURL(serveEnv["REDIS_URL"])
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range opts.Addrs {
		opts.Addrs[i] = local[a]
	}
	rdb := redis.NewClusterClient(opts)
	defer rdb.Close()
	// A replica's attachment reaches every node by gossip a moment after
	// the script returns: read the shards until they settle (for up to 30 s) and judge the last reading.
	var problems []string
	settle := time.Now().Add(30 * time.Second)
	for {
		shards, err := rdb.ClusterShards(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		problems = problems[:0]
		slots, masters := 0, 0
		for _, s := range shards {
			var m, r int
			for _, n := range s.Nodes {
				switch n.Role {
				case "master":
					m++
				case "replica":
					r++
				}
			}
			if len(s.Slots) > 0 {
				masters++
				for _, sr := range s.Slots {
					slots += int(sr.End-sr.Start) + 1
				}
				if m != 1 || r != 1 {
					problems = append(problems, fmt.Sprintf("shard %v: %d masters and %d replicas, want 1 and 1", s.Slots, m, r))
				}
			}
		}
		if masters != 3 || slots != 16384 {
			problems = append(problems, fmt.Sprintf("%d masters covering %d slots, want 3 covering 16384", masters, slots))
		}
		if len(problems) == 0 || time.Now().After(settle) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, p := range problems {
		t.Error(p)
	}
	// Keys spread over every master, each written and read back.
	seen := map[string]bool{}
	for i := range 64 {
		k := fmt.Sprintf("k8s-test:%d", i)
		if err := rdb.Set(ctx, k, i, time.Minute).Err(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
		if v, err := rdb.Get(ctx, k).Int(); err != nil || v != i {
			t.Fatalf("GET %s = %v, %v", k, v, err)
		}
		n, err := rdb.MasterForKey(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		seen[n.Options().Addr] = true
	}
	if len(seen) != 3 {
		t.Errorf("64 keys landed on %d masters, want 3", len(seen))
	}
	// Ready means synced: the probe passes on every node of the formed
	// cluster (masters, and replicas whose link is up).
	for i, port := range ports {
		waitProbe(t, rc.ss, port, fmt.Sprintf("node %d", i))
	}

	// A full restart (issue 25 item 7): every node stops and comes back on
	// a new port (a pod's new IP) with its nodes.conf and AOF, and the
	// StatefulSet's remeet sidecar runs beside each. The cluster must
	// re-form with the keys.
	time.Sleep(1500 * time.Millisecond) // appendfsync everysec
	for _, stop := range stops {
		stop()
	}
	newPorts := freePorts(t, len(pods))
	nodes = nodes[:0]
	for i := range pods {
		nodes = append(nodes, fmt.Sprintf("127.0.0.1:%d", newPorts[i]))
	}
	sidecar := rc.remeet(t)
	for i := range pods {
		startNode(t, rc.ss, newPorts[i], dirs[i])
		env := []string{"PATH=" + os.Getenv("PATH")}
		for k, v := range sidecar.env {
			switch k {
			case "NODES":
				v = strings.Join(nodes, " ")
			case "REDIS_PORT":
				v = strconv.Itoa(newPorts[i])
			case "INTERVAL":
				v = "1"
			}
			env = append(env, k+"="+v)
		}
		cmd := exec.Command("sh", "-c", sidecar.script)
		cmd.Env = env
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	}
	ctx, cancel = context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	deadline := time.Now().Add(60 * time.Second)
	for _, n := range nodes {
		c := redis.NewClient(&redis.Options{Addr: n})
		for {
			info, err := c.ClusterInfo(ctx).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after a full restart on new ports %s is not ok 60 s later: %v %s", n, err, info)
			}
			time.Sleep(200 * time.Millisecond)
		}
		// cluster_state:ok comes before every node has learned every
		// peer's new address by gossip: a client's slot map from a node
		// that still names an old port would dial a dead address. Wait
		// until this node's view names only the new ports.
		for {
			view, err := c.ClusterNodes(ctx).Result()
			if err == nil && namesOnly(view, newPorts) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after a full restart %s still names an old address 60 s later: %v\n%s", n, err, view)
			}
			time.Sleep(200 * time.Millisecond)
		}
		_ = c.Close()
	}
	after := redis.NewClusterClient(&redis.ClusterOptions{Addrs: nodes})
	defer after.Close()
	for i := range 64 {
		k := fmt.Sprintf("k8s-test:%d", i)
		if v, err := after.Get(ctx, k).Int(); err != nil || v != i {
			t.Fatalf("after the full restart GET %s = %v, %v", k, v, err)
		}
	}
	for i, port := range newPorts {
		waitProbe(t, rc.ss, port, fmt.Sprintf("restarted node %d", i))
	}
}

type sidecar struct {
	script string
	env    map[string]string
}

// remeet is the StatefulSet's remeet container: its script and env.
func (rc redisCluster) remeet(t *testing.T) sidecar {
	t.Helper()
	for _, c := range rc.ss.Spec.Template.Spec.Containers {
		if c.Name != "remeet" {
			continue
		}
		if len(c.Command) != 3 || c.Command[0] != "sh" || c.Command[1] != "-c" {
			t.Fatalf("remeet: command %q, want sh -c SCRIPT", c.Command)
		}
		env := map[string]string{}
		for _, e := range c.Env {
			env[e.Name] = e.Value
		}
		return sidecar{script: c.Command[2], env: env}
	}
	t.Fatal("the Redis Cluster StatefulSet has no remeet container: a full restart (every pod a new IP) never re-forms")
	return sidecar{}
}

// waitProbe runs the redis container's readiness probe against the node
// on port (redis-cli pointed at it) until it passes, for up to 30 s.
func waitProbe(t *testing.T, ss *appsv1.StatefulSet, port int, what string) {
	t.Helper()
	p := ss.Spec.Template.Spec.Containers[0].ReadinessProbe
	if p == nil || p.Exec == nil || len(p.Exec.Command) != 3 {
		t.Fatalf("redis container: readiness probe %v, want sh -c SCRIPT", p)
	}
	real, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatal(err)
	}
	path := shim(t, fmt.Sprintf("exec %s -p %d \"$@\"", real, port))
	script := p.Exec.Command[2]
	var out []byte
	for start := time.Now(); time.Since(start) < 30*time.Second; time.Sleep(200 * time.Millisecond) {
		cmd := exec.Command("sh", "-c", script)
		cmd.Env = []string{"PATH=" + path + ":" + os.Getenv("PATH")}
		if out, err = cmd.CombinedOutput(); err == nil {
			return
		}
	}
	t.Errorf("%s: the readiness probe never passed: %v %s", what, err, out)
}

// shim is a directory holding a redis-cli that runs body (sh), to put
// first on a probe's PATH.
func shim(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "redis-cli"), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestReadinessMeansSynced: the probe fails on a replica whose link to its
// master is down, though the cluster is ok (issue 25 item 7).
func TestReadinessMeansSynced(t *testing.T) {
	objs := k8stest.Build(t, clusterOverlay)
	rc := findRedisCluster(objs)
	p := rc.ss.Spec.Template.Spec.Containers[0].ReadinessProbe.Exec.Command[2]
	for _, c := range []struct {
		name, cluster, replication string
		ready                      bool
	}{
		{"master", "cluster_state:ok", "role:master", true},
		{"synced replica", "cluster_state:ok", "role:slave\nmaster_link_status:up\nmaster_sync_in_progress:0", true},
		{"replica syncing", "cluster_state:ok", "role:slave\nmaster_link_status:down\nmaster_sync_in_progress:1", false},
		{"replica link down", "cluster_state:ok", "role:slave\nmaster_link_status:down\nmaster_sync_in_progress:0", false},
		{"cluster fail", "cluster_state:fail", "role:master", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := shim(t, fmt.Sprintf("case \"$1\" in cluster) printf '%s\\r\\n';; info) printf '%s\\r\\n';; esac", c.cluster, c.replication))
			cmd := exec.Command("sh", "-c", p)
			cmd.Env = []string{"PATH=" + path + ":" + os.Getenv("PATH")}
			err := cmd.Run()
			if (err == nil) != c.ready {
				t.Errorf("probe ready = %v, want %v", err == nil, c.ready)
			}
		})
	}
}

// startNode runs redis-server with the StatefulSet container's arguments,
// except where a pod's surroundings differ from this machine: the port, the
// data directory (a temporary one for nodes.conf and the AOF), and the
// announced host name (the pod's DNS name does not resolve here).
func startNode(t *testing.T, ss *appsv1.StatefulSet, port int, dir string) (stop func()) {
	t.Helper()
	args := slices.Clone(ss.Spec.Template.Spec.Containers[0].Args)
	set := func(flag, v string) {
		if i := slices.Index(args, flag); i >= 0 {
			args[i+1] = v
		} else {
			args = append(args, flag, v)
		}
	}
	set("--port", strconv.Itoa(port))
	set("--cluster-config-file", filepath.Join(dir, "nodes.conf"))
	set("--cluster-announce-hostname", "127.0.0.1")
	set("--dir", dir)
	set("--bind", "127.0.0.1")
	set("--daemonize", "no")
	set("--logfile", filepath.Join(dir, "redis.log"))
	cmd := exec.Command("redis-server", args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
	}
	t.Cleanup(stop)
	rdb := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	defer rdb.Close()
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		if rdb.Ping(context.Background()).Err() == nil {
			return stop
		}
		if time.Since(start) > 10*time.Second {
			log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			t.Fatalf("redis-server %s did not start:\n%s", strings.Join(args, " "), log)
		}
	}
}

// freePorts finds n ports whose cluster-bus port (+10000) is free too.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var out []int
	for len(out) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if p+10000 > 65535 || slices.Contains(out, p) {
			continue
		}
		bus, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+10000))
		if err != nil {
			continue
		}
		_ = bus.Close()
		out = append(out, p)
	}
	return out
}

// namesOnly reports whether every node line of a CLUSTER NODES answer
// names one of ports (its address field is ip:port@busport).
func namesOnly(view string, ports []int) bool {
	for line := range strings.SplitSeq(strings.TrimSpace(view), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			return false
		}
		addr, _, _ := strings.Cut(f[1], "@")
		_, port, _ := strings.Cut(addr, ":")
		if n, err := strconv.Atoi(port); err != nil || !slices.Contains(ports, n) {
			return false
		}
	}
	return true
}
