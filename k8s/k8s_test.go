package k8s_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8slabels "k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/keyspace/redistest"
	"github.com/setlist/setlist/internal/pipeline"
	"github.com/setlist/setlist/internal/postgres/pgtest"
	"github.com/setlist/setlist/internal/store"
	"github.com/setlist/setlist/internal/synth"
	"github.com/setlist/setlist/k8s/k8stest"
)

// TestFilesDecodeStrictly decodes every YAML document under k8s/ and
// cronjobs/ into its API type, rejecting unknown and misspelt fields.
func TestFilesDecodeStrictly(t *testing.T) {
	objs := k8stest.Files(t)
	if len(objs) < 10 {
		t.Fatalf("decoded only %d objects from k8s/ and cronjobs/", len(objs))
	}
	for _, o := range objs {
		if o.Kind == "Kustomization" || o.Kind == "Component" || strings.HasPrefix(o.Source, "k8s/overlays/") {
			continue // patches carry only the fields they change
		}
		if o.Name == "" {
			t.Errorf("%s: no metadata.name", o)
		}
		labels := labelsOf(o)
		for _, l := range []string{"app.kubernetes.io/name", "app.kubernetes.io/component"} {
			if o.Kind != "Namespace" && o.Kind != "ServiceAccount" && o.Kind != "ConfigMap" && labels[l] == "" {
				t.Errorf("%s: no %s label", o, l)
			}
		}
	}
}

func labelsOf(o k8stest.Object) map[string]string {
	b, _ := json.Marshal(o.Obj)
	var m struct {
		Metadata struct {
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
	}
	_ = json.Unmarshal(b, &m)
	return m.Metadata.Labels
}

// TestStrictDecodingRejects proves the decoding is strict: each manifest
// here is valid YAML that a lax decoder would accept.
func TestStrictDecodingRejects(t *testing.T) {
	cases := []struct{ name, doc, want string }{
		{"misspelt top-level field", `
apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  replica: 2
  selector: {matchLabels: {a: b}}
  template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: i}]}}
`, `unknown field "replica"`},
		{"misspelt nested field", `
apiVersion: batch/v1
kind: CronJob
metadata: {name: x}
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: c, image: i, imagePullPolicyy: Never}]
`, "imagePullPolicyy"},
		{"duplicate field", `
apiVersion: v1
kind: ConfigMap
metadata: {name: x}
data: {a: "1"}
data: {b: "2"}
`, "already set"},
		{"unknown kind", `
apiVersion: v1
kind: Pdo
metadata: {name: x}
`, "not a kind"},
		{"misspelt PrometheusRule field", `
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: x}
spec:
  groups: [{name: g, rules: [{alert: A, expresion: up == 0}]}]
`, "expresion"},
		{"misspelt ServiceMonitor field", `
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: x}
spec:
  selector: {}
  endpoints: [{port: http, honourLabels: true}]
`, "honourLabels"},
		{"misspelt kustomization field", `
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resource: [a.yaml]
`, "resource"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := k8stest.Decode([]byte(c.doc))
			if err == nil {
				t.Fatalf("decoded without error; want one mentioning %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not mention %q", err, c.want)
			}
		})
	}
	// And through kustomize: a misspelt field in a built resource fails too.
	fs := filesys.MakeFsInMemory()
	_ = fs.WriteFile("/o/kustomization.yaml", []byte("resources: [cm.yaml]\n"))
	_ = fs.WriteFile("/o/cm.yaml", []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndatta: {a: b}\n"))
	if _, err := k8stest.BuildObjects(fs, "/o", "in-memory"); err == nil || !strings.Contains(err.Error(), "datta") {
		t.Fatalf("kustomize output with a misspelt field: err = %v, want one naming datta", err)
	}
}

// TestOverlaysBuild builds each overlay with kustomize and checks what every
// environment must have.
func TestOverlaysBuild(t *testing.T) {
	for _, ov := range k8stest.Overlays {
		t.Run(ov, func(t *testing.T) {
			objs := k8stest.Build(t, ov)
			kinds := map[string]int{}
			for _, o := range objs {
				kinds[o.Kind]++
				if o.Kind != "Namespace" && o.Namespace != "setlist" {
					t.Errorf("%s: namespace %q, want setlist", o, o.Namespace)
				}
				if l := labelsOf(o); l["app.kubernetes.io/part-of"] != "setlist" {
					t.Errorf("%s: no app.kubernetes.io/part-of=setlist label", o)
				}
			}
			for _, k := range []string{"Namespace", "ConfigMap", "Secret", "StatefulSet", "Deployment", "Service",
				"PodDisruptionBudget", "HorizontalPodAutoscaler", "Ingress", "Job", "CronJob"} {
				if kinds[k] == 0 {
					t.Errorf("overlay %s has no %s", ov, k)
				}
			}
			wantMonitoring := strings.HasPrefix(ov, "production")
			if got := kinds["ServiceMonitor"] > 0 && kinds["PrometheusRule"] > 0; got != wantMonitoring {
				t.Errorf("overlay %s: monitoring objects present = %v, want %v", ov, got, wantMonitoring)
			}
			checkSecret(t, ov, objs)
			checkExposure(t, objs)
			checkPods(t, objs)
			checkStatefulSets(t, ov, objs)
			checkCronJob(t, objs)
			checkTuneBudget(t, objs)
			checkRedis(t, ov, objs)
			checkStoreFence(t, objs)
			checkImages(t, ov, objs)
		})
	}
}

// checkImages: every container that runs a setlist binary runs the one
// image the overlay names (production's registry and tag, not the
// development image), the precompute Job's template included.
func checkImages(t *testing.T, ov string, objs []k8stest.Object) {
	t.Helper()
	images := map[string][]string{}
	for _, c := range k8stest.Containers(objs, "") {
		if c.Binary() != "" {
			images[c.Container.Image] = append(images[c.Container.Image], c.String())
		}
	}
	if len(images) != 1 {
		t.Errorf("overlay %s: setlist's containers run %d images, want one: %v", ov, len(images), images)
	}
	for img, cs := range images {
		if strings.HasPrefix(ov, "production") && !strings.HasPrefix(img, "registry.example.com/") {
			t.Errorf("overlay %s: %v run %s, not the overlay's registry image", ov, cs, img)
		}
	}
}

// TestCronjobsInEveryOverlay: every object under cronjobs/ is built by
// every overlay, so none is left outside the kustomizations, where the
// overlays' image rewrite, settings and Redis choice never reach it (the
// precompute Job template once was, hard-coding setlist:dev).
func TestCronjobsInEveryOverlay(t *testing.T) {
	var want []k8stest.Object
	for _, o := range k8stest.Files(t) {
		if strings.HasPrefix(o.Source, "cronjobs/") && o.Kind != "Kustomization" {
			want = append(want, o)
		}
	}
	if !slices.ContainsFunc(want, func(o k8stest.Object) bool { return o.Name == "setlist-precompute" }) {
		t.Fatal("no setlist-precompute under cronjobs/")
	}
	for _, ov := range k8stest.Overlays {
		built := map[string]bool{}
		for _, o := range k8stest.Build(t, ov) {
			built[o.Kind+"/"+o.Name] = true
		}
		for _, o := range want {
			if !built[o.Kind+"/"+o.Name] {
				t.Errorf("overlay %s does not build %s", ov, o)
			}
		}
	}
}

func checkSecret(t *testing.T, ov string, objs []k8stest.Object) {
	t.Helper()
	// Each Secret's key, the committed minikube placeholder's check and
	// production's value, read from a git-ignored file.
	placeholders := map[string]struct {
		key        string
		dev        func(string) bool
		production string
	}{
		"setlist-postgres": {"password", func(v string) bool { return v == "change-me-dev-only" }, k8stest.TestPassword},
		// Every token line of the minikube file ("SCOPE TOKEN") holds a
		// marked placeholder; serve/command's manifest test parses it as
		// serve does.
		"setlist-api-tokens": {"tokens", func(v string) bool {
			n := 0
			for _, l := range strings.Split(v, "\n") {
				if l = strings.TrimSpace(l); l == "" || strings.HasPrefix(l, "#") {
					continue
				}
				if f := strings.Fields(l); len(f) != 2 || !strings.HasPrefix(f[1], "change-me-dev-only") {
					return false
				}
				n++
			}
			return n > 0
		}, k8stest.TestTokens},
	}
	seen := map[string]bool{}
	for _, o := range objs {
		s, ok := o.Obj.(*corev1.Secret)
		if !ok {
			continue
		}
		var name string
		for n := range placeholders {
			if strings.HasPrefix(s.Name, n+"-") || s.Name == n {
				name = n
			}
		}
		if name == "" {
			t.Errorf("%s: unexpected Secret", o)
			continue
		}
		seen[name] = true
		want := placeholders[name]
		v := string(s.Data[want.key])
		if v == "" {
			v = s.StringData[want.key]
		}
		switch ov {
		case "minikube":
			if !want.dev(v) {
				t.Errorf("%s: the committed development %s must be the marked placeholder, got %q", o, want.key, v)
			}
		case "production", "production-cluster":
			if v != want.production {
				t.Errorf("%s: production's %s must come from the git-ignored file, got %q", o, want.key, v)
			}
		}
	}
	for n := range placeholders {
		if !seen[n] {
			t.Errorf("overlay %s has no Secret %s", ov, n)
		}
	}
}

// checkExposure: the Ingress routes only the serve Service's http port,
// never its metrics port (the ServiceMonitor scrapes that one), serve
// requires tokens and listens for metrics on that port, and the overlay
// names the ingress as a trusted proxy (else every client shares one rate
// limit bucket behind it).
func checkExposure(t *testing.T, objs []k8stest.Object) {
	t.Helper()
	for _, o := range objs {
		ing, ok := o.Obj.(*networkingv1.Ingress)
		if !ok {
			continue
		}
		for _, r := range ing.Spec.Rules {
			if r.HTTP == nil {
				continue
			}
			for _, p := range r.HTTP.Paths {
				b := p.Backend.Service
				if b == nil || b.Port.Name != "http" || strings.Contains(p.Path, "metrics") {
					t.Errorf("%s: path %q routes to %+v; only the serve Service's http port may be exposed", o, p.Path, b)
				}
			}
		}
	}
	for _, c := range k8stest.Containers(objs, "serve") {
		if c.Pod.Object.Kind != "Deployment" {
			continue
		}
		args, err := c.Args(objs)
		if err != nil {
			t.Fatal(err)
		}
		joined := strings.Join(args, " ")
		for _, want := range []string{"--api-tokens-file=", "--metrics-addr=:9464", "--trusted-proxies="} {
			if !strings.Contains(joined, want) {
				t.Errorf("%s: serve's args %q lack %s", c, joined, want)
			}
		}
		if strings.Contains(joined, "--auth=off") || strings.Contains(joined, "--auth off") {
			t.Errorf("%s: serve runs with --auth off", c)
		}
	}
}

// checkStoreFence: every store pod (the bundled PostgreSQL and Redis, and
// the Redis Cluster's pods) is selected by a NetworkPolicy; every pod that
// runs a setlist binary reaches each store's client port (a client it shut
// out would lose its stores the day the cluster's CNI enforced the policy),
// the create Job reaches the cluster's pods on 6379, and the cluster's pods
// reach each other on every port they listen on (6379 and the bus 16379);
// a pod without setlist's labels reaches nothing, and no client reaches the
// cluster bus.
func checkStoreFence(t *testing.T, objs []k8stest.Object) {
	t.Helper()
	var policies []*networkingv1.NetworkPolicy
	for _, o := range objs {
		if p, ok := o.Obj.(*networkingv1.NetworkPolicy); ok {
			policies = append(policies, p)
			sel, err := metav1.LabelSelectorAsSelector(&p.Spec.PodSelector)
			if err != nil || sel.Empty() {
				t.Errorf("NetworkPolicy %s: podSelector %v (%v) selects every pod", p.Name, p.Spec.PodSelector, err)
			}
		}
	}
	if !slices.ContainsFunc(policies, func(p *networkingv1.NetworkPolicy) bool { return p.Name == "setlist-stores" }) {
		t.Error("no NetworkPolicy setlist-stores fencing PostgreSQL and Redis")
	}
	clientPort := map[string]int32{"postgres": 5432, "redis": 6379, "redis-cluster": 6379}
	stranger := map[string]string{"run": "debug"}
	pods := k8stest.Pods(objs)
	for _, store := range pods {
		kind := store.Labels["app.kubernetes.io/component"]
		port, isStore := clientPort[kind]
		if !isStore {
			continue
		}
		if isolated, _ := admits(t, policies, store.Labels, stranger, port); !isolated {
			t.Errorf("%s: no NetworkPolicy selects the %s pods", store.Object, kind)
			continue
		}
		var listens []int32
		for _, c := range store.Spec.Containers {
			for _, cp := range c.Ports {
				listens = append(listens, cp.ContainerPort)
			}
		}
		if !slices.Contains(listens, port) {
			t.Errorf("%s: the %s pods do not listen on %d", store.Object, kind, port)
		}
		for _, p := range listens {
			if _, ok := admits(t, policies, store.Labels, stranger, p); ok {
				t.Errorf("%s: a pod without setlist's labels reaches port %d", store.Object, p)
			}
			if kind == "redis-cluster" {
				if _, ok := admits(t, policies, store.Labels, store.Labels, p); !ok {
					t.Errorf("%s: the cluster's pods do not reach each other on port %d", store.Object, p)
				}
			} else if p != port {
				t.Errorf("%s: the %s pods listen on %d, beyond their client port %d", store.Object, kind, p, port)
			}
		}
		for _, client := range pods {
			if client.Labels["app.kubernetes.io/component"] == kind {
				continue
			}
			bin := slices.ContainsFunc(client.Spec.Containers, func(c corev1.Container) bool {
				return k8stest.Container{Pod: client, Container: &c}.Binary() != ""
			})
			creates := kind == "redis-cluster" && client.Labels["app.kubernetes.io/component"] == "redis-cluster-create"
			if !bin && !creates {
				continue
			}
			if _, ok := admits(t, policies, store.Labels, client.Labels, port); !ok {
				t.Errorf("%s (labels %v) cannot reach the %s pods on %d through their NetworkPolicy", client.Object, client.Labels, kind, port)
			}
			if kind == "redis-cluster" {
				if _, ok := admits(t, policies, store.Labels, client.Labels, 16379); ok {
					t.Errorf("%s reaches the Redis Cluster's bus port 16379: only the cluster's own pods may", client.Object)
				}
			}
		}
	}
}

// admits evaluates NetworkPolicy ingress as Kubernetes does for pods in one
// namespace: dst is isolated when a policy selects it, and then traffic
// from src to port is allowed when a rule of a selecting policy matches
// both (an empty from or ports matches all). Rules naming namespaces or IP
// blocks are refused here: the fence is meant to be by pod labels alone.
func admits(t *testing.T, policies []*networkingv1.NetworkPolicy, dst, src map[string]string, port int32) (isolated, allowed bool) {
	t.Helper()
	for _, np := range policies {
		sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		if err != nil {
			t.Fatalf("NetworkPolicy %s: %v", np.Name, err)
		}
		if !sel.Matches(k8slabels.Set(dst)) || !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
			continue
		}
		isolated = true
		for _, rule := range np.Spec.Ingress {
			from := len(rule.From) == 0
			for _, peer := range rule.From {
				if peer.NamespaceSelector != nil || peer.IPBlock != nil || peer.PodSelector == nil {
					t.Fatalf("NetworkPolicy %s: a peer by namespace or IP block (%+v); fence by pod labels", np.Name, peer)
				}
				ps, err := metav1.LabelSelectorAsSelector(peer.PodSelector)
				if err != nil {
					t.Fatalf("NetworkPolicy %s: %v", np.Name, err)
				}
				from = from || ps.Matches(k8slabels.Set(src))
			}
			ports := len(rule.Ports) == 0
			for _, p := range rule.Ports {
				ports = ports || p.Port == nil || (p.Port.IntVal == port && (p.Protocol == nil || *p.Protocol == corev1.ProtocolTCP))
			}
			if from && ports {
				allowed = true
			}
		}
	}
	return isolated, allowed
}

// checkPods checks every pod of the build for the restricted security
// profile, resources and, for setlist's own binaries, GOMAXPROCS from the
// CPU limit.
func checkPods(t *testing.T, objs []k8stest.Object) {
	t.Helper()
	for _, p := range k8stest.Pods(objs) {
		sc := p.Spec.SecurityContext
		if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
			t.Errorf("%s: pod securityContext.runAsNonRoot is not true", p.Object)
		}
		if sc == nil || sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("%s: pod seccompProfile is not RuntimeDefault", p.Object)
		}
		if p.Spec.AutomountServiceAccountToken == nil || *p.Spec.AutomountServiceAccountToken {
			t.Errorf("%s: automountServiceAccountToken is not false", p.Object)
		}
	}
	for _, c := range k8stest.Containers(objs, "") {
		csc := c.Container.SecurityContext
		if csc == nil || csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem {
			t.Errorf("%s: readOnlyRootFilesystem is not true", c)
		}
		if csc == nil || csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation {
			t.Errorf("%s: allowPrivilegeEscalation is not false", c)
		}
		if csc == nil || csc.Capabilities == nil || !slices.Equal(csc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
			t.Errorf("%s: capabilities do not drop ALL", c)
		}
		if _, ok := c.Container.Resources.Limits[corev1.ResourceMemory]; !ok {
			t.Errorf("%s: no memory limit", c)
		}
		if _, ok := c.Container.Resources.Requests[corev1.ResourceCPU]; !ok {
			t.Errorf("%s: no CPU request", c)
		}
		if strings.Contains(c.Container.Image, ":latest") || !strings.Contains(c.Container.Image, ":") {
			t.Errorf("%s: image %q is not pinned to a tag", c, c.Container.Image)
		}
		if c.Binary() == "" {
			continue
		}
		if _, ok := c.Container.Resources.Limits[corev1.ResourceCPU]; !ok && c.Pod.Object.Kind != "Job" {
			t.Errorf("%s: no CPU limit for GOMAXPROCS to follow", c)
		}
		if _, ok := c.Container.Resources.Limits[corev1.ResourceCPU]; ok {
			found := false
			for _, e := range c.Container.Env {
				if e.Name == "GOMAXPROCS" && e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil &&
					e.ValueFrom.ResourceFieldRef.Resource == "limits.cpu" {
					found = true
				}
			}
			if !found && c.Pod.Object.Kind != "Job" {
				t.Errorf("%s: GOMAXPROCS is not set from limits.cpu", c)
			}
		}
	}
}

func checkStatefulSets(t *testing.T, ov string, objs []k8stest.Object) {
	t.Helper()
	for _, o := range objs {
		ss, ok := o.Obj.(*appsv1.StatefulSet)
		if !ok {
			continue
		}
		var vct []string
		for _, c := range ss.Spec.VolumeClaimTemplates {
			vct = append(vct, c.Name)
		}
		persistent := ss.Name == "setlist-postgres" || ss.Name == "setlist-redis-cluster" || (ss.Name == "setlist-redis" && ov == "production")
		if persistent != slices.Contains(vct, "data") {
			t.Errorf("%s: volumeClaimTemplates %v; want a data claim = %v", o, vct, persistent)
		}
		// Every mounted volume must exist as a volume or a claim.
		for _, c := range ss.Spec.Template.Spec.Containers {
			for _, m := range c.VolumeMounts {
				found := slices.Contains(vct, m.Name)
				for _, v := range ss.Spec.Template.Spec.Volumes {
					found = found || v.Name == m.Name
				}
				if !found {
					t.Errorf("%s: container %s mounts %q, which is neither a volume nor a claim", o, c.Name, m.Name)
				}
				if slices.Contains(vct, m.Name) {
					for _, v := range ss.Spec.Template.Spec.Volumes {
						if v.Name == m.Name {
							t.Errorf("%s: %q is both a volume and a claim", o, m.Name)
						}
					}
				}
			}
		}
		if ss.Name == "setlist-redis" {
			aof := slices.Contains(ss.Spec.Template.Spec.Containers[0].Args, "yes")
			if aof != (ov == "production") {
				t.Errorf("%s: appendonly yes = %v, want %v", o, aof, ov == "production")
			}
		}
	}
}

func checkCronJob(t *testing.T, objs []k8stest.Object) {
	t.Helper()
	for _, o := range objs {
		cj, ok := o.Obj.(*batchv1.CronJob)
		if !ok {
			continue
		}
		s := cj.Spec
		if s.ConcurrencyPolicy != batchv1.ForbidConcurrent {
			t.Errorf("%s: concurrencyPolicy %q, want Forbid", o, s.ConcurrencyPolicy)
		}
		if s.StartingDeadlineSeconds == nil || s.JobTemplate.Spec.BackoffLimit == nil ||
			s.JobTemplate.Spec.ActiveDeadlineSeconds == nil || s.JobTemplate.Spec.TTLSecondsAfterFinished == nil {
			t.Errorf("%s: startingDeadlineSeconds, backoffLimit, activeDeadlineSeconds and ttlSecondsAfterFinished must all be set", o)
		}
	}
}

// checkTuneBudget: the weekly search's Job deadline leaves at least half an
// hour beyond the budget its container gives it (loading the data and the
// last trial), so the deadline never cuts a search that obeys its budget.
func checkTuneBudget(t *testing.T, objs []k8stest.Object) {
	t.Helper()
	var budget string
	var deadline *int64
	containers := map[string]corev1.Container{}
	for _, o := range objs {
		switch v := o.Obj.(type) {
		case *batchv1.CronJob:
			containers[v.Name] = v.Spec.JobTemplate.Spec.Template.Spec.Containers[0]
			if v.Name == "setlist-tune" {
				deadline = v.Spec.JobTemplate.Spec.ActiveDeadlineSeconds
				for _, e := range containers[v.Name].Env {
					if e.Name == "SETLIST_TUNE_BUDGET" {
						budget = e.Value
					}
				}
			}
		}
	}
	// The overlays patch both batch CronJobs alike: image pull policy,
	// resources, the Pushgateway flag.
	tune, retrain := containers["setlist-tune"], containers["setlist-retrain"]
	if len(tune.Args) == 0 || tune.Args[0] != "tune" {
		t.Errorf("setlist-tune runs %q, want batch tune", tune.Args)
	}
	if len(tune.Args) != len(retrain.Args) || tune.ImagePullPolicy != retrain.ImagePullPolicy || !equality.Semantic.DeepEqual(tune.Resources, retrain.Resources) ||
		(len(tune.Args) > 1 && !slices.Equal(tune.Args[1:], retrain.Args[1:])) {
		t.Errorf("setlist-tune (args %q, pull %s, resources %v) is not patched like setlist-retrain (args %q, pull %s, resources %v)",
			tune.Args, tune.ImagePullPolicy, tune.Resources, retrain.Args, retrain.ImagePullPolicy, retrain.Resources)
	}
	d, err := time.ParseDuration(budget)
	if err != nil || d <= 0 || deadline == nil {
		t.Fatalf("SETLIST_TUNE_BUDGET %q (%v) and the setlist-tune CronJob's deadline %v: want both", budget, err, deadline)
	}
	if time.Duration(*deadline)*time.Second < d+30*time.Minute {
		t.Errorf("setlist-tune's activeDeadlineSeconds %d leaves less than 30 minutes beyond the %s budget", *deadline, d)
	}
}

// TestDockerfile checks the image's promises with a small instruction parser.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(k8stest.Root(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	type instr struct{ cmd, args string }
	var ins []instr
	var cont strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cont.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cont.WriteString(line)
		full := cont.String()
		cont.Reset()
		cmd, args, _ := strings.Cut(full, " ")
		ins = append(ins, instr{strings.ToUpper(cmd), strings.TrimSpace(args)})
	}
	var stages [][]instr
	for _, in := range ins {
		if in.cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) > 0 {
			stages[len(stages)-1] = append(stages[len(stages)-1], in)
		}
	}
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a multi-stage build", len(stages))
	}
	imageOf := func(from string) string {
		for _, f := range strings.Fields(from) {
			if !strings.HasPrefix(f, "--") {
				return f
			}
		}
		return ""
	}
	for _, st := range stages[:len(stages)-1] {
		img := imageOf(st[0].args)
		if !strings.Contains(img, ":") || strings.HasSuffix(img, ":latest") {
			t.Errorf("builder image %q is not pinned (no tag or latest)", img)
		}
	}
	final := stages[len(stages)-1]
	if img := imageOf(final[0].args); strings.HasSuffix(img, ":latest") || !strings.Contains(img, ":") {
		t.Errorf("runtime image %q is not pinned", img)
	}
	var user string
	copied := map[string]bool{}
	for _, in := range final {
		switch in.cmd {
		case "USER":
			user = in.args
		case "COPY":
			if strings.Contains(in.args, "--from=") {
				f := strings.Fields(in.args)
				copied[filepath.Base(f[len(f)-1])] = true
			}
		case "RUN":
			t.Errorf("final stage runs %q: the runtime image has no shell", in.args)
		}
	}
	if u, _, _ := strings.Cut(user, ":"); user == "" || u == "0" || u == "root" {
		t.Errorf("final stage USER is %q, want a non-root user", user)
	} else if strings.Trim(u, "0123456789") != "" {
		t.Errorf("final stage USER %q is not numeric: runAsNonRoot cannot verify a name", user)
	}
	for _, bin := range []string{"batch", "serve"} {
		if !copied[bin] {
			t.Errorf("final stage does not copy the %s binary from the build stage", bin)
		}
	}
	src := string(b)
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-X main.version=", "--mount=type=cache"} {
		if !strings.Contains(src, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}

// ruleGroups returns the PrometheusRule objects' spec as rulefmt would read
// a rule file, from the production build.
func ruleGroups(t *testing.T) []byte {
	t.Helper()
	var specs []monitoringv1.PrometheusRuleSpec
	for _, o := range k8stest.Build(t, "production") {
		if r, ok := o.Obj.(*monitoringv1.PrometheusRule); ok {
			specs = append(specs, r.Spec)
		}
	}
	if len(specs) != 1 {
		t.Fatalf("production has %d PrometheusRules, want 1", len(specs))
	}
	b, err := yaml.Marshal(specs[0])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPrometheusRules parses the rules with Prometheus' own rule parser and
// checks every alert's labels and annotations.
func TestPrometheusRules(t *testing.T) {
	groups, errs := rulefmt.Parse(ruleGroups(t), false)
	for _, err := range errs {
		t.Errorf("k8s/monitoring/prometheusrule.yaml: %v", err)
	}
	if groups == nil {
		t.FailNow()
	}
	anchors := deployAnchors(t)
	alerts := map[string]bool{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts[r.Alert] = true
			where := fmt.Sprintf("k8s/monitoring/prometheusrule.yaml: alert %s", r.Alert)
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("%s: severity %q, want critical or warning", where, s)
			}
			for _, a := range []string{"summary", "description", "runbook_url"} {
				if r.Annotations[a] == "" {
					t.Errorf("%s: no %s annotation", where, a)
				}
			}
			if time.Duration(r.For) == 0 && !strings.Contains(r.Expr, "run_status") {
				t.Errorf("%s: no for: (a single bad scrape would page)", where)
			}
			_, anchor, _ := strings.Cut(r.Annotations["runbook_url"], "#")
			if !strings.Contains(r.Annotations["runbook_url"], "docs/deploy.md#") || !anchors[anchor] {
				t.Errorf("%s: runbook_url %q does not point at a heading of docs/deploy.md", where, r.Annotations["runbook_url"])
			}
		}
	}
	for _, want := range []string{"SetlistHigh5xxRatio", "SetlistHighP99Latency", "SetlistModelTooOld", "SetlistRetrainFailed",
		"SetlistRetrainRejected", "SetlistRedisErrors", "SetlistPostgresErrors", "SetlistFoldInShareHigh", "SetlistTuneStale"} {
		if !alerts[want] {
			t.Errorf("no alert %s", want)
		}
	}
}

// deployAnchors are the GitHub anchors of docs/deploy.md's headings.
func deployAnchors(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(k8stest.Root(t), "docs", "deploy.md"))
	if err != nil {
		t.Fatalf("docs/deploy.md: %v", err)
	}
	out := map[string]bool{}
	drop := regexp.MustCompile(`[^a-z0-9 _-]`)
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "#") {
			h := strings.ToLower(strings.TrimSpace(strings.TrimLeft(l, "#")))
			out[strings.ReplaceAll(drop.ReplaceAllString(h, ""), " ", "-")] = true
		}
	}
	return out
}

type dashboard struct {
	Title  string `json:"title"`
	UID    string `json:"uid"`
	Panels []struct {
		Title   string `json:"title"`
		Type    string `json:"type"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

func readDashboard(t *testing.T) (dashboard, []byte) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(k8stest.Root(t), "k8s", "monitoring", "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("k8s/monitoring/grafana-dashboard.json: %v", err)
	}
	return d, b
}

// grafanaVars replaces Grafana's variables with values PromQL accepts.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")

// TestDashboard checks the panels the dashboard must have, that every query
// parses as PromQL, and that the production build ships the same JSON in a
// ConfigMap Grafana's sidecar picks up.
func TestDashboard(t *testing.T) {
	d, raw := readDashboard(t)
	titles := map[string]bool{}
	for _, p := range d.Panels {
		titles[p.Title] = true
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if _, err := parser.ParseExpr(grafanaVars.Replace(tg.Expr)); err != nil {
				t.Errorf("panel %q: %q: %v", p.Title, tg.Expr, err)
			}
		}
	}
	for _, want := range []string{"Request rate", "Latency p50 / p99", "5xx rate", "Recommendations by source", "Fold-in latency",
		"Near-cache hit ratio", "Model version", "Model age", "Last retrain result", "Last retrain duration", "Precision@5 and NDCG@5 per run",
		"Tuning: validation NDCG@5 of the pick and the incumbent", "Tuning: last search",
		"Catalog: hidden songs per replica", "Catalog: change number per replica", "Filtered recommendations by source"} {
		if !titles[want] {
			t.Errorf("dashboard has no panel %q", want)
		}
	}
	found := false
	for _, o := range k8stest.Build(t, "production") {
		cm, ok := o.Obj.(*corev1.ConfigMap)
		if !ok || cm.Labels["grafana_dashboard"] != "1" {
			continue
		}
		found = true
		if cm.Data["setlist-dashboard.json"] != string(raw) {
			t.Errorf("%s does not hold k8s/monitoring/grafana-dashboard.json", o)
		}
	}
	if !found {
		t.Error("production has no ConfigMap labelled grafana_dashboard=1")
	}
}

// usedMetrics returns every metric name a rule or dashboard query selects,
// found with Prometheus' PromQL parser, mapped to where it is used.
// Recording rules' outputs are excluded: they are defined, not scraped.
func usedMetrics(t *testing.T) map[string][]string {
	t.Helper()
	used := map[string][]string{}
	recorded := map[string]bool{}
	add := func(expr, where string) {
		e, err := parser.ParseExpr(expr)
		if err != nil {
			t.Errorf("%s: %v", where, err)
			return
		}
		parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
			if vs, ok := n.(*parser.VectorSelector); ok {
				name := vs.Name
				for _, m := range vs.LabelMatchers {
					if m.Name == "__name__" {
						name = m.Value
					}
				}
				used[name] = append(used[name], where)
			}
			return nil
		})
	}
	groups, errs := rulefmt.Parse(ruleGroups(t), false)
	if len(errs) > 0 {
		t.Fatalf("rules: %v", errs)
	}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				recorded[r.Record] = true
			}
			add(r.Expr, "rule "+r.Alert+r.Record)
		}
	}
	d, _ := readDashboard(t)
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			add(grafanaVars.Replace(tg.Expr), "dashboard panel "+p.Title)
		}
	}
	for r := range recorded {
		delete(used, r)
	}
	return used
}

// metricsListFile lists the metric names the rules and the dashboard use;
// TestMetricsList keeps it exact, and serve/command's manifest test checks
// the setlist_serve_ names against serve's real registry (serve's metrics
// package is internal to serve, so this package cannot build it).
const metricsListFile = "k8s/monitoring/metrics-used.txt"

// TestMetricsList checks that metrics-used.txt is exactly what the rules and
// the dashboard select.
func TestMetricsList(t *testing.T) {
	used := usedMetrics(t)
	var want []string
	for n := range used {
		want = append(want, n)
	}
	sort.Strings(want)
	b, err := os.ReadFile(filepath.Join(k8stest.Root(t), metricsListFile))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			got = append(got, l)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s is out of date; it should list exactly:\n%s", metricsListFile, strings.Join(want, "\n"))
	}
}

// TestBatchMetricsExist checks every setlist_batch_ metric the rules and the
// dashboard use against the batch's real registry after a real published
// run (the published model's series are registered only then), on a small
// synthetic data set in a throwaway database and Redis prefix.
func TestBatchMetricsExist(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	db := pgtest.DB(t)
	var csv bytes.Buffer
	if _, err := synth.Write(&csv, synth.Config{Users: 200, Songs: 150, Reactions: 4000, Seed: 7}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Import(ctx, &csv, store.ImportOptions{Source: "synth"}); err != nil {
		t.Fatal(err)
	}
	rdb, prefix := redistest.Client(t)
	reg := prometheus.NewRegistry()
	m, err := pipeline.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	// It tunes (briefly), so the search's series are registered too.
	res, err := pipeline.Run(ctx, pipeline.Config{Force: true, K: 10, TuneTrials: 2, Threads: 2},
		pipeline.Deps{Source: db, Registry: db, Locker: db, Artifacts: db, Publisher: keyspace.NewPublisher(rdb, keyspace.NewKeys(prefix)), Metrics: m})
	if err != nil {
		t.Fatalf("pipeline run: %v", err)
	}
	if res.Status != store.RunPublished {
		t.Fatalf("run status %q, want published", res.Status)
	}
	// And a refresh (batch refresh pushes to the same job).
	rm, err := pipeline.NewRefreshMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pipeline.Refresh(ctx, pipeline.RefreshConfig{}, pipeline.RefreshDeps{Source: db, Locker: db, Artifacts: db,
		Publisher: keyspace.NewPublisher(rdb, keyspace.NewKeys(prefix)), Metrics: rm}); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	have := registryNames(t, reg)
	for name, where := range usedMetrics(t) {
		if strings.HasPrefix(name, "setlist_batch_") && !have[name] {
			t.Errorf("%s: metric %s is not in the batch's registry (have %v)", strings.Join(where, ", "), name, keys(have))
		}
	}
}

// registryNames are the series names reg exports, with a histogram's
// _bucket, _sum and _count and a summary's _sum and _count.
func registryNames(t *testing.T, reg *prometheus.Registry) map[string]bool {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, mf := range mfs {
		n := mf.GetName()
		out[n] = true
		for _, s := range []string{"_bucket", "_sum", "_count"} {
			out[n+s] = true
		}
	}
	return out
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
