package command_test

import (
	"strings"
	"testing"

	"strconv"
)

// TestTrainHoldThenExperiment: train --hold writes a whole version but
// leaves readers on the current one, records the run as staged with a hint,
// and the held version is accepted as an experiment's challenger; promoting
// it makes it current.
func TestTrainHoldThenExperiment(t *testing.T) {
	c := newCLI(t)
	c.mustRun("import", "--csv", sampleCSV)
	c.mustRun("train", "--iterations", "3", "--factors", "16")
	current, _ := c.versionKeys()
	out := c.mustRun("train", "--hold", "--iterations", "3", "--factors", "16", "--force")
	if !strings.Contains(out, "staged as version") || !strings.Contains(out, "batch experiment start --challenger") {
		t.Errorf("train --hold says:\n%s", out)
	}
	if v, _ := c.versionKeys(); v != current {
		t.Fatalf("train --hold moved the pointer from %d to %d", current, v)
	}
	held := current + 1
	users := sampleUserIDs(t)
	if got := c.lists(held, users); len(got) != len(users) {
		t.Fatalf("held version %d has %d of %d users' lists", held, len(got), len(users))
	}
	c.mustRun("experiment", "start", "--challenger", strconv.FormatInt(int64(held), 10), "--share", "0.1")
	out = c.mustRun("experiment", "promote")
	if !strings.Contains(out, "promoted") {
		t.Errorf("promote says:\n%s", out)
	}
	if v, _ := c.versionKeys(); v != held {
		t.Errorf("current %d after promoting the held version %d", v, held)
	}
}
