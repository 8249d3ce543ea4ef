package k8stest

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// Pod is one pod template found in a manifest.
type Pod struct {
	Object Object
	Labels map[string]string // the template's
	Spec   *corev1.PodSpec
	Job    *batchv1.JobSpec // the Job or CronJob's job spec; nil for others
}

// Pods returns the pod templates of Deployments, StatefulSets, Jobs and
// CronJobs among objs.
func Pods(objs []Object) []Pod {
	var out []Pod
	for _, o := range objs {
		switch t := o.Obj.(type) {
		case *appsv1.Deployment:
			out = append(out, Pod{Object: o, Labels: t.Spec.Template.Labels, Spec: &t.Spec.Template.Spec})
		case *appsv1.StatefulSet:
			out = append(out, Pod{Object: o, Labels: t.Spec.Template.Labels, Spec: &t.Spec.Template.Spec})
		case *batchv1.Job:
			out = append(out, Pod{Object: o, Labels: t.Spec.Template.Labels, Spec: &t.Spec.Template.Spec, Job: &t.Spec})
		case *batchv1.CronJob:
			tpl := &t.Spec.JobTemplate.Spec.Template
			out = append(out, Pod{Object: o, Labels: tpl.Labels, Spec: &tpl.Spec, Job: &t.Spec.JobTemplate.Spec})
		}
	}
	return out
}

// Container is one container of a pod template, named for failure messages.
type Container struct {
	Pod       Pod
	Container *corev1.Container
}

func (c Container) String() string {
	return fmt.Sprintf("%s container %q", c.Pod.Object, c.Container.Name)
}

// Binary is the setlist binary a container runs ("batch", "serve"), or "".
func (c Container) Binary() string {
	if len(c.Container.Command) == 0 {
		return ""
	}
	switch c.Container.Command[0] {
	case "/usr/local/bin/batch":
		return "batch"
	case "/usr/local/bin/serve":
		return "serve"
	}
	return ""
}

// Containers returns every container (init containers included) of pods
// whose binary is bin ("" for all).
func Containers(objs []Object, bin string) []Container {
	var out []Container
	for _, p := range Pods(objs) {
		for _, list := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
			for i := range list {
				c := Container{Pod: p, Container: &list[i]}
				if bin == "" || c.Binary() == bin {
					out = append(out, c)
				}
			}
		}
	}
	return out
}

// Placeholders stand in for values only the cluster knows when expanding
// $(VAR) references: secrets, resource fields, the Job's completion index.
var Placeholders = map[string]string{
	"JOB_COMPLETION_INDEX": "0",
}

var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// Env is the container's environment as the kubelet builds it: envFrom
// ConfigMaps (looked up among objs) first, then env in order, each value's
// $(VAR) references expanded with what is defined before it. Values from
// Secrets and resource fields become placeholders.
func (c Container) Env(objs []Object) (map[string]string, error) {
	env := map[string]string{}
	for k, v := range Placeholders {
		env[k] = v
	}
	for _, ef := range c.Container.EnvFrom {
		if ef.ConfigMapRef == nil {
			continue
		}
		cm := findConfigMap(objs, c.Pod.Object, ef.ConfigMapRef.Name)
		if cm == nil {
			if ef.ConfigMapRef.Optional != nil && *ef.ConfigMapRef.Optional {
				continue
			}
			return nil, fmt.Errorf("%s: envFrom ConfigMap %q not found", c, ef.ConfigMapRef.Name)
		}
		for k, v := range cm.Data {
			env[ef.Prefix+k] = v
		}
	}
	for _, e := range c.Container.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = Expand(e.Value, env)
		case e.ValueFrom.SecretKeyRef != nil:
			env[e.Name] = "secret-" + strings.ToLower(e.Name)
		case e.ValueFrom.ResourceFieldRef != nil:
			env[e.Name] = "2"
		case e.ValueFrom.ConfigMapKeyRef != nil:
			cm := findConfigMap(objs, c.Pod.Object, e.ValueFrom.ConfigMapKeyRef.Name)
			if cm == nil {
				return nil, fmt.Errorf("%s: env %s: ConfigMap %q not found", c, e.Name, e.ValueFrom.ConfigMapKeyRef.Name)
			}
			v, ok := cm.Data[e.ValueFrom.ConfigMapKeyRef.Key]
			if !ok {
				return nil, fmt.Errorf("%s: env %s: ConfigMap %q has no key %q", c, e.Name, cm.Name, e.ValueFrom.ConfigMapKeyRef.Key)
			}
			env[e.Name] = v
		default:
			env[e.Name] = "field-" + strings.ToLower(e.Name)
		}
	}
	return env, nil
}

// Expand replaces $(VAR) with env[VAR] as the kubelet does; an undefined
// reference is left as written.
func Expand(s string, env map[string]string) string {
	return varRef.ReplaceAllStringFunc(s, func(m string) string {
		if v, ok := env[m[2:len(m)-1]]; ok {
			return v
		}
		return m
	})
}

// Refs lists the variable names referenced as $(VAR) in s.
func Refs(s string) []string {
	var out []string
	for _, m := range varRef.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}

// Args is the container's args with $(VAR) expanded from its environment;
// an undefined reference is an error (the kubelet would pass it literally).
func (c Container) Args(objs []Object) ([]string, error) {
	env, err := c.Env(objs)
	if err != nil {
		return nil, err
	}
	args := make([]string, len(c.Container.Args))
	for i, a := range c.Container.Args {
		args[i] = Expand(a, env)
		if r := Refs(args[i]); len(r) > 0 {
			return nil, fmt.Errorf("%s: args[%d] %q references undefined variables %v", c, i, a, r)
		}
	}
	return args, nil
}

// Start resolves c's args and sets its environment for the test, as the
// kubelet would start the container, so a binary's real flag parsing (which
// reads env vars) sees exactly what the pod would.
func (c Container) Start(tb testing.TB, objs []Object) (args []string, env map[string]string) {
	tb.Helper()
	args, err := c.Args(objs)
	if err != nil {
		tb.Fatal(err)
	}
	env, err = c.Env(objs)
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range env {
		tb.Setenv(k, v)
	}
	return args, env
}

// findConfigMap finds ConfigMap name among the objects from the same source
// (the same overlay build, or for a standalone file, any ConfigMap in the
// base, which is what the file is applied next to).
func findConfigMap(objs []Object, from Object, name string) *corev1.ConfigMap {
	var fallback *corev1.ConfigMap
	for _, o := range objs {
		cm, ok := o.Obj.(*corev1.ConfigMap)
		if !ok || cm.Name != name {
			continue
		}
		if o.Source == from.Source {
			return cm
		}
		if strings.HasPrefix(o.Source, "k8s/base/") {
			fallback = cm
		}
	}
	return fallback
}
