package command

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// Usage errors (issue 26 item 13). urfave/cli reports them three ways: a
// flag it cannot parse through OnUsageError, a missing required flag after
// printing the whole help (exit 1), an unknown subcommand of a command with
// subcommands by printing that command's help (exit 0). guardUsage makes
// all of them one usageError (exit 2) that names the nearest valid name,
// and hoistGlobalFlags lets the global flags follow the subcommand too.

// guardUsage sets every command's usage handling, recursively; NewApp
// calls it once the commands are built.
func guardUsage(app *cli.App) {
	app.OnUsageError = func(c *cli.Context, err error, _ bool) error {
		return flagUsageError("batch", err, app.Flags)
	}
	var walk func(path string, cmds []*cli.Command)
	walk = func(path string, cmds []*cli.Command) {
		for _, cmd := range cmds {
			name := path + " " + cmd.Name
			flags := append(slices.Clone(cmd.Flags), app.Flags...)
			cmd.OnUsageError = func(c *cli.Context, err error, _ bool) error {
				return flagUsageError(name, err, flags)
			}
			if required := takeRequired(cmd.Flags); len(required) > 0 {
				before := cmd.Before
				cmd.Before = func(c *cli.Context) error {
					if err := checkRequired(c, name, required); err != nil {
						return err
					}
					if before != nil {
						return before(c)
					}
					return nil
				}
			}
			if len(cmd.Subcommands) > 0 && cmd.Action == nil {
				subs := cmd.Subcommands
				cmd.Action = func(c *cli.Context) error { return unknownCommand(name, c.Args().First(), subs) }
			}
			walk(name, cmd.Subcommands)
		}
	}
	walk("batch", app.Commands)
}

// flagUsageError turns a flag parsing error of command (its path, e.g.
// "batch train") into a usageError, suggesting the nearest of flags for a
// flag it does not define.
func flagUsageError(command string, err error, flags []cli.Flag) error {
	msg := err.Error()
	const undefined = "flag provided but not defined: "
	if bad, ok := strings.CutPrefix(msg, undefined); ok {
		bad = strings.TrimLeft(bad, "-")
		msg = fmt.Sprintf("%s: unknown flag --%s", command, bad)
		if s := nearest(bad, flagNames(flags)); s != "" {
			msg += fmt.Sprintf("; did you mean --%s?", s)
		}
		return usageError(msg + fmt.Sprintf(" (%s --help lists them)", command))
	}
	return usageError(fmt.Sprintf("%s: %s (see %s --help)", command, msg, command))
}

// flagNames lists every name and alias of flags (the help flag included).
func flagNames(flags []cli.Flag) []string {
	names := []string{"help"}
	for _, f := range flags {
		names = append(names, f.Names()...)
	}
	return names
}

// unknownCommand is the usage error for a missing or unknown subcommand
// of command (its path), naming the nearest of cmds.
func unknownCommand(command, given string, cmds []*cli.Command) error {
	var names []string
	for _, c := range cmds {
		if !c.Hidden {
			names = append(names, c.Names()...)
		}
	}
	if given == "" {
		return usageError(fmt.Sprintf("%s needs a subcommand: %s (see %s --help)", command, strings.Join(names, ", "), command))
	}
	msg := fmt.Sprintf("%s: no subcommand %q", command, given)
	if s := nearest(given, names); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	}
	return usageError(msg + fmt.Sprintf(" (%s --help lists them)", command))
}

// takeRequired clears the Required mark of flags and returns their names:
// urfave/cli would check them itself, printing the whole help and exiting
// 1; checkRequired checks them instead. The help still says "required" in
// the usage text where it matters.
func takeRequired(flags []cli.Flag) []cli.Flag {
	var out []cli.Flag
	for _, f := range flags {
		r, ok := f.(cli.RequiredFlag)
		if !ok || !r.IsRequired() {
			continue
		}
		switch f := f.(type) {
		case *cli.StringFlag:
			f.Required = false
		case *cli.IntFlag:
			f.Required = false
		case *cli.Int64Flag:
			f.Required = false
		case *cli.Float64Flag:
			f.Required = false
		case *cli.BoolFlag:
			f.Required = false
		case *cli.DurationFlag:
			f.Required = false
		default:
			panic(fmt.Sprintf("batch: required flag %v of type %T: teach takeRequired its type", f.Names(), f))
		}
		out = append(out, f)
	}
	return out
}

// checkRequired is a usageError naming the required flags of command that
// neither the command line nor their environment variables set.
func checkRequired(c *cli.Context, command string, required []cli.Flag) error {
	var missing []string
	for _, f := range required {
		if c.IsSet(f.Names()[0]) {
			continue
		}
		m := "--" + f.Names()[0]
		if ev, ok := f.(interface{ GetEnvVars() []string }); ok && len(ev.GetEnvVars()) > 0 {
			m += " (or " + ev.GetEnvVars()[0] + ")"
		}
		missing = append(missing, m)
	}
	if len(missing) == 0 {
		return nil
	}
	word := "flag"
	if len(missing) > 1 {
		word = "flags"
	}
	return usageError(fmt.Sprintf("%s: required %s not set: %s (%s --help)", command, word, strings.Join(missing, ", "), command))
}

// nearest is the name a mistyped given most likely meant, or "": the one
// name given is a prefix of ("import-m" for "import-model"), else the name
// nearest by Damerau-Levenshtein distance if that is small for its length
// (at most 1 for up to 4 letters, 2 up to 8, 3 beyond), the first in names
// on a tie.
func nearest(given string, names []string) string {
	if given == "" {
		return ""
	}
	var prefixed []string
	for _, n := range names {
		if strings.HasPrefix(n, given) && !slices.Contains(prefixed, n) {
			prefixed = append(prefixed, n)
		}
	}
	if len(prefixed) == 1 {
		return prefixed[0]
	}
	limit := 1 + (len(given)-1)/4
	best, bestD := "", limit+1
	for _, n := range names {
		if d := editDistance(given, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// editDistance is the Damerau-Levenshtein distance (optimal string
// alignment: insertions, deletions, substitutions and transpositions of
// adjacent letters, each costing 1) between a and b, by bytes.
func editDistance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// hoistGlobalFlags moves the app's own flags (--database-url, --redis-url,
// …) that follow the subcommand in front of it, where urfave/cli parses
// them: `batch train --database-url X` works as `batch --database-url X
// train`. A flag the subcommand defines itself stays where it is, as does
// everything after "--". args[0] is the program name.
func hoistGlobalFlags(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	global := flagArity(app.Flags)
	var (
		before  = []string{args[0]}
		hoisted []string
		rest    []string
		local   = map[string]bool{} // the flags of the command chain so far
		cmds    = app.Commands
		inCmd   bool
	)
	for i := 1; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		name, hasValue, isFlag := splitFlag(a)
		if !isFlag {
			if cmd := findCommand(cmds, a); cmd != nil {
				inCmd, cmds = true, cmd.Subcommands
				maps.Copy(local, flagArity(cmd.Flags))
			} else {
				cmds = nil // a positional argument ends the command chain
			}
			if inCmd {
				rest = append(rest, a)
			} else {
				before = append(before, a)
			}
			continue
		}
		takes, isGlobal := global[name]
		_, isLocal := local[name]
		switch {
		case !inCmd:
			before = append(before, a)
			if isGlobal && takes && !hasValue && i+1 < len(args) {
				i++
				before = append(before, args[i])
			}
		case isGlobal && !isLocal:
			hoisted = append(hoisted, a)
			if takes && !hasValue && i+1 < len(args) {
				i++
				hoisted = append(hoisted, args[i])
			}
		default:
			rest = append(rest, a)
			if localTakes := local[name]; isLocal && localTakes && !hasValue && i+1 < len(args) {
				i++
				rest = append(rest, args[i])
			}
		}
	}
	if len(hoisted) == 0 {
		return args
	}
	// before is the program and its flags; rest starts with the command.
	out := append(before, hoisted...)
	return append(out, rest...)
}

// findCommand is the command of cmds named (or aliased) name, or nil.
func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if slices.Contains(c.Names(), name) {
			return c
		}
	}
	return nil
}

// flagArity maps every name of flags to whether it takes a value.
func flagArity(flags []cli.Flag) map[string]bool {
	out := map[string]bool{}
	for _, f := range flags {
		takes := true
		if tv, ok := f.(interface{ TakesValue() bool }); ok {
			takes = tv.TakesValue()
		}
		for _, n := range f.Names() {
			out[n] = takes
		}
	}
	return out
}

// splitFlag reads "-name", "--name" or "--name=value".
func splitFlag(a string) (name string, hasValue, isFlag bool) {
	if len(a) < 2 || a[0] != '-' || a == "-" {
		return "", false, false
	}
	name = strings.TrimLeft(a, "-")
	if n, _, ok := strings.Cut(name, "="); ok {
		return n, true, true
	}
	return name, false, true
}
