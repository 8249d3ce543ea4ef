package command_test

// The Kubernetes manifests' view of batch, checked against the real CLI:
// every batch container's args (after kustomize, with $(VAR) expanded from
// the container's environment) and environment parse with the real flag
// definitions of batch/command.NewApp, reaching the intended subcommand
// without running it; every environment variable is one a flag reads (or
// the Go runtime's, or a part spliced into another value); and the Indexed
// precompute Job's shard count matches its completions.

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	ucli "github.com/urfave/cli/v2"

	"github.com/setlist/setlist/batch/command"
	"github.com/setlist/setlist/k8s/k8stest"
)

var goRuntimeEnv = map[string]bool{"GOMAXPROCS": true, "GOMEMLIMIT": true, "GOGC": true, "GODEBUG": true}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }

// parseOnly builds a fresh batch app whose actions only record which
// command ran, so Run exercises urfave/cli's own flag parsing (types,
// required flags, environment variables) and nothing else.
func parseOnly() (*ucli.App, *string) {
	app := command.NewApp("test")
	ran := new(string)
	app.Before, app.After = nil, nil
	app.Writer, app.ErrWriter = nopWriter{}, nopWriter{}
	app.Action = func(*ucli.Context) error { *ran = "(app)"; return nil }
	var walk func(prefix string, cmds []*ucli.Command)
	walk = func(prefix string, cmds []*ucli.Command) {
		for _, c := range cmds {
			name := strings.TrimSpace(prefix + " " + c.Name)
			// c.Before stays: it checks the required flags (usage.go).
			c.After = nil
			c.Action = func(*ucli.Context) error { *ran = name; return nil }
			walk(name, c.Subcommands)
		}
	}
	walk("", app.Commands)
	return app, ran
}

// envVarsOf collects every EnvVars name of the app's flags and its
// commands', recursively.
func envVarsOf(app *ucli.App) map[string]bool {
	out := map[string]bool{}
	add := func(flags []ucli.Flag) {
		for _, f := range flags {
			if ev, ok := f.(interface{ GetEnvVars() []string }); ok {
				for _, e := range ev.GetEnvVars() {
					out[e] = true
				}
			}
		}
	}
	add(app.Flags)
	var walk func([]*ucli.Command)
	walk = func(cmds []*ucli.Command) {
		for _, c := range cmds {
			add(c.Flags)
			walk(c.Subcommands)
		}
	}
	walk(app.Commands)
	return out
}

func TestManifestBatchCommandLines(t *testing.T) {
	objs := k8stest.All(t)
	cs := k8stest.Containers(objs, "batch")
	if len(cs) == 0 {
		t.Fatal("no container runs /usr/local/bin/batch")
	}
	known := envVarsOf(command.NewApp("test"))
	subcommands := map[string]bool{}
	for _, c := range cs {
		t.Run(c.String(), func(t *testing.T) {
			args, env := c.Start(t, objs)
			if len(args) == 0 || strings.HasPrefix(args[0], "-") {
				t.Fatalf("%s: args %q name no subcommand", c, args)
			}
			app, ran := parseOnly()
			if err := app.Run(append([]string{"batch"}, args...)); err != nil {
				t.Fatalf("%s: batch %s: %v", c, strings.Join(args, " "), err)
			}
			if *ran != args[0] {
				t.Fatalf("%s: batch %s ran %q, want subcommand %q", c, strings.Join(args, " "), *ran, args[0])
			}
			subcommands[args[0]] = true

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
			for name := range env {
				if _, placeholder := k8stest.Placeholders[name]; placeholder {
					continue
				}
				if !known[name] && !goRuntimeEnv[name] && !referenced[name] {
					t.Errorf("%s: environment variable %s is read by no batch flag (misspelt?)", c, name)
				}
			}

			if j := c.Pod.Job; j != nil && j.CompletionMode != nil && *j.CompletionMode == "Indexed" {
				checkIndexed(t, c, args)
			}
		})
	}
	for _, want := range []string{"migrate", "train", "tune", "import", "precompute"} {
		if !subcommands[want] {
			t.Errorf("no manifest runs batch %s", want)
		}
	}
}

// checkIndexed: one pod per shard, all at once, and --shards agreeing.
func checkIndexed(t *testing.T, c k8stest.Container, args []string) {
	t.Helper()
	j := c.Pod.Job
	if j.Completions == nil || j.Parallelism == nil || *j.Completions != *j.Parallelism {
		t.Errorf("%s: an Indexed Job needs completions = parallelism", c)
		return
	}
	i := slices.IndexFunc(args, func(a string) bool { return strings.HasPrefix(a, "--shards=") })
	if i < 0 {
		t.Errorf("%s: no --shards=N in %q", c, args)
		return
	}
	n, err := strconv.Atoi(strings.TrimPrefix(args[i], "--shards="))
	if err != nil || int32(n) != *j.Completions {
		t.Errorf("%s: %s but completions %d", c, args[i], *j.Completions)
	}
	if !slices.ContainsFunc(c.Container.Args, func(a string) bool { return strings.Contains(a, "$(JOB_COMPLETION_INDEX)") }) {
		t.Errorf("%s: the shard index does not come from $(JOB_COMPLETION_INDEX)", c)
	}
}
