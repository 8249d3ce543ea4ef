package setlist_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestMakeHelpPiped: `make help` into a pipe or file is plain text (no
// colour escape codes) and lists the targets a newcomer needs.
func TestMakeHelpPiped(t *testing.T) {
	out, err := exec.Command("make", "--no-print-directory", "help").Output()
	if err != nil {
		t.Fatalf("make help: %v", err)
	}
	if strings.Contains(string(out), "\x1b") {
		t.Errorf("make help into a pipe prints escape codes:\n%q", out)
	}
	for _, target := range []string{"run", "retrain", "test"} {
		if !strings.Contains(string(out), "\n  "+target+" ") {
			t.Errorf("make help does not list %s:\n%s", target, out)
		}
	}
}
