package command_test

// The Kubernetes manifests' view of serve, checked against the real thing:
// every serve container's command line and environment parse with serve's
// flag definitions (ParseConfig), the pod's grace period outlasts the
// shutdown, the probes' paths answer on a real in-process server wired as
// the binary wires it (real PostgreSQL and Redis), and every setlist_serve_
// metric the alerts and dashboard use exists on that server's registry.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/urfave/cli/v2"
	corev1 "k8s.io/api/core/v1"

	batchcommand "github.com/setlist/setlist/batch/command"
	"github.com/setlist/setlist/internal/keyspace/redistest"
	"github.com/setlist/setlist/internal/postgres/pgtest"
	"github.com/setlist/setlist/k8s/k8stest"
	"github.com/setlist/setlist/serve/command"
	"github.com/setlist/setlist/serve/internal/api"
	"github.com/setlist/setlist/serve/internal/server"
	"github.com/setlist/setlist/serve/internal/servertest"
	"github.com/setlist/setlist/web"
)

// goRuntimeEnv are variables the Go runtime reads, not serve's flags.
var goRuntimeEnv = map[string]bool{"GOMAXPROCS": true, "GOMEMLIMIT": true, "GOGC": true, "GODEBUG": true}

// serveContainers is every serve container in every overlay build and file.
func serveContainers(t *testing.T) ([]k8stest.Object, []k8stest.Container) {
	t.Helper()
	objs := k8stest.All(t)
	cs := k8stest.Containers(objs, "serve")
	if len(cs) == 0 {
		t.Fatal("no container runs /usr/local/bin/serve")
	}
	return objs, cs
}

// parse parses c's args and environment with serve's real flags.
func parse(t *testing.T, objs []k8stest.Object, c k8stest.Container) command.Config {
	t.Helper()
	args, _ := c.Start(t, objs)
	cfg, err := command.ParseConfig(append([]string{"serve"}, args...))
	if err != nil {
		t.Fatalf("%s: serve %s: %v", c, strings.Join(args, " "), err)
	}
	return cfg
}

// envVarsOf collects every EnvVars name of serve's flags.
func envVarsOf(t *testing.T) map[string]bool {
	t.Helper()
	out := appEnvVars(command.NewApp("test"))
	if len(out) == 0 {
		t.Fatal("serve's flags read no environment variables")
	}
	return out
}

// appEnvVars collects every EnvVars name of app's flags, its subcommands'
// included.
func appEnvVars(app *cli.App) map[string]bool {
	out := map[string]bool{}
	var walk func(flags []cli.Flag, cmds []*cli.Command)
	walk = func(flags []cli.Flag, cmds []*cli.Command) {
		for _, f := range flags {
			if ev, ok := f.(interface{ GetEnvVars() []string }); ok {
				for _, e := range ev.GetEnvVars() {
					out[e] = true
				}
			}
		}
		for _, c := range cmds {
			walk(c.Flags, c.Subcommands)
		}
	}
	walk(app.Flags, app.Commands)
	return out
}

func TestManifestServeCommandLines(t *testing.T) {
	objs, cs := serveContainers(t)
	known := envVarsOf(t)
	// setlist-config is read by both binaries (envFrom), so a variable
	// there may be batch's (SETLIST_TUNE_BUDGET); a misspelt one is
	// neither's.
	batchVars := appEnvVars(batchcommand.NewApp("test"))
	for _, c := range cs {
		t.Run(c.String(), func(t *testing.T) {
			cfg := parse(t, objs, c)

			// Every variable is a flag's, the Go runtime's, or a part
			// spliced into another value with $(VAR).
			referenced := map[string]bool{}
			for _, e := range c.Container.Env {
				for _, r := range k8stest.Refs(e.Value) {
					referenced[r] = true
				}
			}
			for _, a := range c.Container.Args {
				for _, r := range k8stest.Refs(a) {
					referenced[r] = true
				}
			}
			env, _ := c.Env(objs)
			for name := range env {
				if _, placeholder := k8stest.Placeholders[name]; placeholder {
					continue
				}
				if !known[name] && !goRuntimeEnv[name] && !referenced[name] && !(batchVars[name] && fromConfigMap(c, objs, name)) {
					t.Errorf("%s: environment variable %s is read by no serve flag (misspelt?)", c, name)
				}
			}

			// The grace period outlasts preStop + shutdown delay + drain.
			grace := int64(30)
			if g := c.Pod.Spec.TerminationGracePeriodSeconds; g != nil {
				grace = *g
			}
			var preStop time.Duration
			if l := c.Container.Lifecycle; l != nil && l.PreStop != nil && l.PreStop.Sleep != nil {
				preStop = time.Duration(l.PreStop.Sleep.Seconds) * time.Second
			}
			need := preStop + cfg.Server.ShutdownDelay + cfg.Server.ShutdownTimeout
			if time.Duration(grace)*time.Second <= need {
				t.Errorf("%s: terminationGracePeriodSeconds %d ≤ preStop %v + --shutdown-delay %v + --shutdown-timeout %v",
					c, grace, preStop, cfg.Server.ShutdownDelay, cfg.Server.ShutdownTimeout)
			}

			// Probes and the named port point at the port serve listens on.
			_, port, err := net.SplitHostPort(cfg.Addr)
			if err != nil {
				t.Fatalf("%s: --addr %q: %v", c, cfg.Addr, err)
			}
			for _, p := range probes(c.Container) {
				if p.HTTPGet == nil {
					t.Errorf("%s: %s is not an HTTP probe", c, p.kind)
					continue
				}
				if got := resolvePort(c.Container, p.HTTPGet.Port.String()); got != port {
					t.Errorf("%s: %s probes port %s (%s), serve listens on %s", c, p.kind, p.HTTPGet.Port.String(), got, port)
				}
			}
			if c.Pod.Object.Kind == "Deployment" && len(probes(c.Container)) < 3 {
				t.Errorf("%s: want startup, readiness and liveness probes", c)
			}
		})
	}
}

type probe struct {
	kind string
	*corev1.Probe
}

func probes(c *corev1.Container) []probe {
	var out []probe
	for _, p := range []probe{{"startupProbe", c.StartupProbe}, {"readinessProbe", c.ReadinessProbe}, {"livenessProbe", c.LivenessProbe}} {
		if p.Probe != nil {
			out = append(out, p)
		}
	}
	return out
}

// resolvePort turns a named container port into its number.
func resolvePort(c *corev1.Container, p string) string {
	for _, cp := range c.Ports {
		if cp.Name == p {
			return fmt.Sprint(cp.ContainerPort)
		}
	}
	return p
}

// startServer runs serve's server in-process as serve/command's run wires
// it, on a free port (and its metrics on another), against a throwaway
// database and Redis prefix. It returns both base URLs.
func startServer(t *testing.T, cfg command.Config) (string, string, *prometheus.Registry) {
	t.Helper()
	rdb, prefix := redistest.Client(t)
	in := servertest.Start(t, cfg.Server, server.Deps{DB: pgtest.DB(t), Redis: rdb, RedisPrefix: prefix,
		Log: slog.New(slog.DiscardHandler), Static: web.Static()})
	in.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return in.Base, in.Metrics, in.Registry
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestManifestServeProbesAndMetrics starts the real server with the
// Deployment's configuration, GETs every probe path (anything but 404 and
// 405 is a route that exists: /readyz answers 503 until a model is loaded),
// then checks the metrics the alerts and dashboard use.
func TestManifestServeProbesAndMetrics(t *testing.T) {
	objs, cs := serveContainers(t)
	var dep *k8stest.Container
	for i := range cs {
		if cs[i].Pod.Object.Kind == "Deployment" {
			dep = &cs[i]
			break
		}
	}
	if dep == nil {
		t.Fatal("no serve Deployment")
	}
	cfg := parse(t, objs, *dep)
	cfg.Server.API.Tokens = secretTokens(t, objs, *dep)
	base, metricsBase, reg := startServer(t, cfg)
	for _, c := range cs {
		for _, p := range probes(c.Container) {
			if p.HTTPGet == nil {
				continue
			}
			code, body := get(t, base+p.HTTPGet.Path)
			if code == http.StatusNotFound || code == http.StatusMethodNotAllowed {
				t.Errorf("%s: %s GET %s answered %d %.200q: no such route", c, p.kind, p.HTTPGet.Path, code, body)
			}
		}
	}
	// The API itself is closed without a token.
	if code, body := get(t, base+"/v1/model"); code != http.StatusUnauthorized {
		t.Errorf("GET /v1/model without a token under the Deployment's flags: %d %.200q, want 401", code, body)
	}
	// Scrape the real /metrics (after the probe requests, so the request
	// histogram has children), and take the registry's descriptors too: a
	// labelled vector with no observation yet (store errors on a healthy
	// test) is on no scrape but is exported as soon as it counts.
	code, scrape := get(t, metricsBase+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d", code)
	}
	have := map[string]bool{}
	for _, l := range strings.Split(scrape, "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			name, _, _ := strings.Cut(l, "{")
			name, _, _ = strings.Cut(name, " ")
			have[name] = true
		}
	}
	descs := make(chan *prometheus.Desc, 64)
	go func() { reg.Describe(descs); close(descs) }()
	fq := regexp.MustCompile(`fqName: "([^"]+)"`)
	for d := range descs {
		if m := fq.FindStringSubmatch(d.String()); m != nil {
			for _, s := range []string{"", "_bucket", "_sum", "_count"} {
				have[m[1]+s] = true
			}
		}
	}
	b, err := os.ReadFile(filepath.Join(k8stest.Root(t), "k8s", "monitoring", "metrics-used.txt"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, name := range strings.Split(string(b), "\n") {
		name = strings.TrimSpace(name)
		if !strings.HasPrefix(name, "setlist_serve_") {
			continue
		}
		n++
		if !have[name] {
			t.Errorf("k8s/monitoring/metrics-used.txt: %s (used by a rule or the dashboard) is not exported by serve", name)
		}
	}
	if n == 0 {
		t.Error("metrics-used.txt lists no setlist_serve_ metric")
	}
}

// secretTokens parses, as serve would, the tokens file the container mounts
// at its --api-tokens-file: the Secret from the same overlay build.
func secretTokens(t *testing.T, objs []k8stest.Object, c k8stest.Container) *api.Tokens {
	t.Helper()
	cfg := parse(t, objs, c)
	dir, file := filepath.Split(cfg.APITokensFile)
	var secretName string
	for _, m := range c.Container.VolumeMounts {
		if filepath.Clean(m.MountPath) == filepath.Clean(dir) {
			for _, v := range c.Pod.Spec.Volumes {
				if v.Name == m.Name && v.Secret != nil {
					secretName = v.Secret.SecretName
				}
			}
		}
	}
	if secretName == "" {
		t.Fatalf("%s: --api-tokens-file %q is on no Secret volume", c, cfg.APITokensFile)
	}
	for _, o := range objs {
		s, ok := o.Obj.(*corev1.Secret)
		// Generated Secrets carry a hash suffix the kustomize build also
		// writes into the volume, so the names match exactly.
		if !ok || o.Source != c.Pod.Object.Source || s.Name != secretName {
			continue
		}
		tok, err := api.ParseTokens(strings.NewReader(string(s.Data[file])+s.StringData[file]), o.String())
		if err != nil {
			t.Fatalf("%s: key %s: %v", o, file, err)
		}
		if !tok.Has(api.ScopeAdmin) {
			t.Errorf("%s: no admin token", o)
		}
		return tok
	}
	t.Fatalf("%s: Secret %s not found in %s", c, secretName, c.Pod.Object.Source)
	return nil
}

// fromConfigMap reports whether the container gets name from one of its
// envFrom ConfigMaps rather than its own env list.
func fromConfigMap(c k8stest.Container, objs []k8stest.Object, name string) bool {
	for _, e := range c.Container.Env {
		if e.Name == name {
			return false
		}
	}
	for _, ef := range c.Container.EnvFrom {
		if ef.ConfigMapRef == nil {
			continue
		}
		for _, o := range objs {
			if cm, ok := o.Obj.(*corev1.ConfigMap); ok && cm.Name == ef.ConfigMapRef.Name {
				if _, ok := cm.Data[strings.TrimPrefix(name, ef.Prefix)]; ok {
					return true
				}
			}
		}
	}
	return false
}
