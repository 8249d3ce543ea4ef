// Package k8stest loads setlist's Kubernetes manifests for tests: every YAML
// document under k8s/ and cronjobs/, and the kustomize build of each overlay,
// decoded strictly (an unknown or misspelt field is an error) into the
// Kubernetes API types. The manifest checks of k8s, batch/command and
// serve/command share it so they all see the same objects.
package k8stest

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// Overlays are the kustomize overlays under k8s/overlays.
var Overlays = []string{"minikube", "production", "production-cluster"}

// productionSecrets are the overlays that read production's git-ignored
// secret files (production-cluster builds on production).
var productionSecrets = map[string]bool{"production": true, "production-cluster": true}

// Object is one decoded manifest.
type Object struct {
	Source     string // file (relative to the repo) or "overlay NAME"
	APIVersion string
	Kind       string
	Name       string
	Namespace  string
	Obj        any // pointer to the k8s.io/api (or prometheus-operator) type
}

// String names the object for failure messages.
func (o Object) String() string { return fmt.Sprintf("%s: %s/%s", o.Source, o.Kind, o.Name) }

// Root is the repository root (the directory holding go.mod).
func Root(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// newObject returns an empty value of the Go type for apiVersion and kind.
func newObject(apiVersion, kind string) (any, bool) {
	f, ok := map[string]func() any{
		"v1/Namespace":                                  func() any { return &corev1.Namespace{} },
		"v1/ServiceAccount":                             func() any { return &corev1.ServiceAccount{} },
		"v1/ConfigMap":                                  func() any { return &corev1.ConfigMap{} },
		"v1/Secret":                                     func() any { return &corev1.Secret{} },
		"v1/Service":                                    func() any { return &corev1.Service{} },
		"apps/v1/Deployment":                            func() any { return &appsv1.Deployment{} },
		"apps/v1/StatefulSet":                           func() any { return &appsv1.StatefulSet{} },
		"batch/v1/Job":                                  func() any { return &batchv1.Job{} },
		"batch/v1/CronJob":                              func() any { return &batchv1.CronJob{} },
		"policy/v1/PodDisruptionBudget":                 func() any { return &policyv1.PodDisruptionBudget{} },
		"autoscaling/v2/HorizontalPodAutoscaler":        func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
		"networking.k8s.io/v1/Ingress":                  func() any { return &networkingv1.Ingress{} },
		"networking.k8s.io/v1/NetworkPolicy":            func() any { return &networkingv1.NetworkPolicy{} },
		"monitoring.coreos.com/v1/ServiceMonitor":       func() any { return &monitoringv1.ServiceMonitor{} },
		"monitoring.coreos.com/v1/PrometheusRule":       func() any { return &monitoringv1.PrometheusRule{} },
		"kustomize.config.k8s.io/v1beta1/Kustomization": func() any { return &types.Kustomization{} },
		"kustomize.config.k8s.io/v1alpha1/Component":    func() any { return &types.Kustomization{} },
	}[apiVersion+"/"+kind]
	if !ok {
		return nil, false
	}
	return f(), true
}

// Decode decodes one YAML document strictly into the API type its apiVersion
// and kind name: unknown fields, duplicate fields and unknown kinds are
// errors. Strategic-merge directives ($patch, $setElementOrder/...) are
// dropped first, so patch files decode like the objects they patch.
func Decode(doc []byte) (Object, error) {
	var tm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return Object{}, err
	}
	o := Object{APIVersion: tm.APIVersion, Kind: tm.Kind, Name: tm.Metadata.Name, Namespace: tm.Metadata.Namespace}
	obj, ok := newObject(tm.APIVersion, tm.Kind)
	if !ok {
		return o, fmt.Errorf("%s %s is not a kind these tests know: add it to k8stest.newObject", tm.APIVersion, tm.Kind)
	}
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return o, err
	}
	if j, err = dropDirectives(j); err != nil {
		return o, err
	}
	if err := yaml.UnmarshalStrict(j, obj); err != nil {
		return o, fmt.Errorf("%s %q: %w", tm.Kind, tm.Metadata.Name, err)
	}
	o.Obj = obj
	return o, nil
}

// dropDirectives removes strategic-merge-patch directives (keys starting
// with $) from a JSON document.
func dropDirectives(j []byte) ([]byte, error) {
	if !bytes.Contains(j, []byte(`"$`)) {
		return j, nil
	}
	var v any
	if err := yaml.Unmarshal(j, &v); err != nil {
		return nil, err
	}
	var walk func(any) any
	walk = func(v any) any {
		switch t := v.(type) {
		case map[string]any:
			for k, e := range t {
				if strings.HasPrefix(k, "$") {
					delete(t, k)
					continue
				}
				t[k] = walk(e)
			}
		case []any:
			for i, e := range t {
				t[i] = walk(e)
			}
		}
		return v
	}
	return yaml.Marshal(walk(v))
}

var docSep = regexp.MustCompile(`(?m)^---[ \t]*$`)

// SplitDocuments splits a multi-document YAML file, skipping empty ones.
func SplitDocuments(b []byte) [][]byte {
	var out [][]byte
	for _, d := range docSep.Split(string(b), -1) {
		if strings.TrimSpace(stripComments(d)) != "" {
			out = append(out, []byte(d))
		}
	}
	return out
}

func stripComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// YAMLFiles lists every .yaml and .yml file under k8s/ and cronjobs/,
// relative to the repository root, sorted.
func YAMLFiles(tb testing.TB) []string {
	tb.Helper()
	root := Root(tb)
	var files []string
	for _, dir := range []string{"k8s", "cronjobs"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
				rel, _ := filepath.Rel(root, p)
				files = append(files, rel)
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	sort.Strings(files)
	if len(files) == 0 {
		tb.Fatal("no YAML under k8s/ or cronjobs/")
	}
	return files
}

// Files decodes every document of every YAML file under k8s/ and cronjobs/,
// failing the test (naming file and error) on any that does not decode.
func Files(tb testing.TB) []Object {
	tb.Helper()
	root := Root(tb)
	var out []Object
	for _, f := range YAMLFiles(tb) {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			tb.Fatal(err)
		}
		docs := SplitDocuments(b)
		if len(docs) == 0 {
			tb.Errorf("%s: no YAML document", f)
		}
		for i, d := range docs {
			o, err := Decode(d)
			if err != nil {
				tb.Errorf("%s (document %d): %v", f, i+1, err)
				continue
			}
			o.Source = f
			out = append(out, o)
		}
	}
	return out
}

// BuildObjects runs kustomize on overlay dir (an absolute path in fsys) and
// decodes every resulting object strictly.
func BuildObjects(fsys filesys.FileSystem, dir, source string) ([]Object, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", source, err)
	}
	var out []Object
	var errs []error
	for _, r := range rm.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		o, err := Decode(y)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", source, err))
			continue
		}
		o.Source = "overlay " + source
		out = append(out, o)
	}
	return out, errors.Join(errs...)
}

// TestPassword stands in for the production overlay's git-ignored password
// file.
const TestPassword = "0123456789abcdef0123456789abcdef"

// TestTokens stands in for the production overlay's git-ignored API tokens
// file (serve's --api-tokens-file format).
const TestTokens = "admin " + TestPassword + "\n"

// Build runs kustomize on k8s/overlays/NAME and decodes its output strictly.
// minikube is built from the real file system; production is built from an
// in-memory copy of k8s/ and cronjobs/ with TestPassword as its
// never-committed password file, as an operator would create it (a real
// file on this machine is never read); so is production-cluster, which
// builds on production.
func Build(tb testing.TB, overlay string) []Object {
	tb.Helper()
	root := Root(tb)
	dir := filepath.Join(root, "k8s", "overlays", overlay)
	fsys := filesys.MakeFsOnDisk()
	if productionSecrets[overlay] {
		// Always the in-memory copy: a real password file an operator
		// left on this machine is never read by tests.
		fsys = copyToMemory(tb, root, "k8s", "cronjobs")
		secrets := filepath.Join(root, "k8s", "overlays", "production", "secrets")
		if err := fsys.WriteFile(filepath.Join(secrets, "postgres-password"), []byte(TestPassword)); err != nil {
			tb.Fatal(err)
		}
		if err := fsys.WriteFile(filepath.Join(secrets, "api-tokens"), []byte(TestTokens)); err != nil {
			tb.Fatal(err)
		}
	}
	objs, err := BuildObjects(fsys, dir, overlay)
	if err != nil {
		tb.Fatal(err)
	}
	return objs
}

// copyToMemory copies the named top-level directories of root into an
// in-memory file system at the same absolute paths.
func copyToMemory(tb testing.TB, root string, dirs ...string) filesys.FileSystem {
	tb.Helper()
	mem := filesys.MakeFsInMemory()
	for _, d := range dirs {
		err := filepath.WalkDir(filepath.Join(root, d), func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if e.IsDir() {
				return mem.MkdirAll(p)
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return mem.WriteFile(p, b)
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
	return mem
}

// All is every overlay's build followed by every file's objects: what the
// command-line and probe checks walk over.
func All(tb testing.TB) []Object {
	tb.Helper()
	var out []Object
	for _, ov := range Overlays {
		out = append(out, Build(tb, ov)...)
	}
	return append(out, Files(tb)...)
}
