package command_test

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestUsageExitCodes runs the real binary: every kind of usage error exits
// 2 and names the fix, and the global flags work after the subcommand
// (issue 26 item 13).
func TestUsageExitCodes(t *testing.T) {
	bin := buildBatch(t)
	data := filepath.Join(t.TempDir(), "data")
	for _, tt := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{}, 2, "a subcommand is required"},
		{[]string{"trian"}, 2, `did you mean \"train\"`},
		{[]string{"import-m"}, 2, `did you mean \"import-model\"`},
		{[]string{"train", "--factrs", "3"}, 2, "unknown flag --factrs; did you mean --factors?"},
		{[]string{"train", "-k", "x"}, 2, `invalid value \"x\" for flag -k`},
		{[]string{"import"}, 2, "required flag not set: --csv (or SETLIST_IMPORT_CSV)"},
		{[]string{"import-model", "--npz", "m.npz"}, 2, "required flags not set: --users (or SETLIST_IMPORT_MODEL_USERS), --items"},
		{[]string{"catalog"}, 2, "batch catalog needs a subcommand: import, hide, show"},
		{[]string{"catalog", "improt"}, 2, `did you mean \"import\"`},
		{[]string{"experiment", "strat"}, 2, `did you mean \"start\"`},
		{[]string{"pin"}, 2, "takes one version number"},
		{[]string{"--store", "embedded", "--data-dir", data, "runs"}, 0, ""},
		// The global flags after the subcommand, as a user types them.
		{[]string{"runs", "--store", "embedded", "--data-dir", data, "--limit", "3"}, 0, ""},
		{[]string{"catalog", "hide", "--store=embedded", "--data-dir", data, "--bogus"}, 2, "batch catalog hide: unknown flag --bogus"},
		{[]string{"--help"}, 0, ""},
	} {
		cmd := exec.Command(bin, tt.args...)
		cmd.Env = append(cmd.Environ(), "DATABASE_URL=", "SETLIST_LOG_FORMAT=text")
		out, err := cmd.CombinedOutput()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tt.code || !strings.Contains(string(out), tt.says) {
			t.Errorf("batch %s: exit %d, want %d and %q in:\n%s", strings.Join(tt.args, " "), code, tt.code, tt.says, out)
		}
		if tt.code == 2 && strings.Contains(string(out), "COMMANDS:") != (len(tt.args) == 0) {
			t.Errorf("batch %s: the whole help printed with a usage error:\n%s", strings.Join(tt.args, " "), out)
		}
	}
}
