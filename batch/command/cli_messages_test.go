package command_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/setlist/setlist/batch/command"
)

// runBatch runs the batch CLI in-process with args (no program name) and
// returns the exit code, stdout and stderr.
func runBatch(args ...string) (int, string, string) {
	app := command.NewApp("test")
	var out, errOut bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errOut
	code := command.Run(context.Background(), app, append([]string{"batch"}, args...))
	return code, out.String(), errOut.String()
}

// TestNoSubcommandIsAUsageError: bare `batch` prints the help on stderr and
// exits 2, like any usage error, instead of looking like success.
func TestNoSubcommandIsAUsageError(t *testing.T) {
	code, out, errOut := runBatch()
	if code != 2 {
		t.Errorf("batch with no subcommand: exit %d, want 2", code)
	}
	if out != "" {
		t.Errorf("batch with no subcommand wrote to stdout:\n%s", out)
	}
	if !strings.Contains(errOut, "COMMANDS:") || !strings.Contains(errOut, "train") || !strings.Contains(errOut, "subcommand is required") {
		t.Errorf("stderr lacks the help and the reason:\n%s", errOut)
	}
	code, _, errOut = runBatch("trian")
	if code != 2 || !strings.Contains(errOut, `no subcommand \"trian\"`) {
		t.Errorf("batch trian: exit %d, stderr:\n%s\nwant exit 2 naming the unknown subcommand", code, errOut)
	}
	if code, out, _ := runBatch("--help"); code != 0 || !strings.Contains(out, "COMMANDS:") {
		t.Errorf("batch --help: exit %d, stdout:\n%s\nwant the help on stdout and exit 0", code, out)
	}
}

// TestFailedImportClaimsNothingFinished: an import that fails on its input
// reports the error, not a progress line saying it finished.
func TestFailedImportClaimsNothingFinished(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.csv")
	if err := os.WriteFile(bad, []byte("user,artist\nu1,a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runBatch("--store", "embedded", "--data-dir", filepath.Join(dir, "data"), "import", "--csv", bad)
	if code == 0 {
		t.Fatalf("import of a CSV with a wrong header succeeded:\n%s", errOut)
	}
	if !strings.Contains(errOut, "header") {
		t.Errorf("stderr does not say what is wrong:\n%s", errOut)
	}
	if strings.Contains(errOut, "finished") || strings.Contains(errOut, "progress=") {
		t.Errorf("a failed import logs progress as if it finished:\n%s", errOut)
	}
}
