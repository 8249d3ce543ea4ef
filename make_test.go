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
	// Every description starts in one column, whatever the longest
	// target's name (issue 26 item 12: bench-serve-cluster pushed its own
	// out of line).
	col := -1
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		name := strings.Fields(line)[0]
		rest := strings.TrimLeft(line[2+len(name):], " ")
		c := len(line) - len(rest)
		if col == -1 {
			col = c
		}
		if c != col {
			t.Errorf("make help: the description of %s starts in column %d, the others in %d:\n%s", name, c, col, out)
		}
	}
	for _, target := range []string{"run", "retrain", "test"} {
		if !strings.Contains(string(out), "\n  "+target+" ") {
			t.Errorf("make help does not list %s:\n%s", target, out)
		}
	}
}
