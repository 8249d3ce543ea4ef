package command_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/setlist/setlist/batch/command"
)

// TestExperimentEmbedded runs batch experiment on the playground's backend
// (SQLite and the in-process Redis, saved between commands): start against
// the previous version, a second start refused, status in both formats,
// stop, and a second experiment promoted, which swaps the pointers.
func TestExperimentEmbedded(t *testing.T) {
	dir := t.TempDir()
	run := func(args ...string) (int, string, string) {
		t.Helper()
		app := command.NewApp("test")
		var out, errOut bytes.Buffer
		app.Writer, app.ErrWriter = &out, &errOut
		code := command.Run(context.Background(), app, append([]string{"batch", "--store", "embedded", "--data-dir", dir}, args...))
		return code, out.String(), errOut.String()
	}
	must := func(args ...string) string {
		t.Helper()
		code, out, errOut := run(args...)
		if code != 0 {
			t.Fatalf("batch %v: exit %d\n%s\n%s", args, code, out, errOut)
		}
		return out
	}
	must("import", "--csv", sampleCSV)
	must("train", "--factors", "8", "--iterations", "3", "--force")
	must("train", "--factors", "12", "--iterations", "3", "--force")

	if code, _, errOut := run("experiment", "status"); code == 0 || !strings.Contains(errOut, "no experiment was ever started") {
		t.Errorf("status before any experiment: exit %d, %s", code, errOut)
	}
	if code, _, errOut := run("experiment", "start", "--challenger", "2"); code == 0 || !strings.Contains(errOut, "current version") {
		t.Errorf("current as challenger: exit %d, %s", code, errOut)
	}
	if code, _, errOut := run("experiment", "start", "--challenger", "1", "--share", "1.5"); code == 0 || !strings.Contains(errOut, "share") {
		t.Errorf("share 1.5: exit %d, %s", code, errOut)
	}
	out := must("experiment", "start", "--challenger", "1", "--share", "0.2", "--name", "older model")
	if !strings.Contains(out, `experiment 1 "older model" running: 20.0% of users get version 1 (challenger), the rest the current version 2`) {
		t.Errorf("start said: %s", out)
	}
	if code, _, errOut := run("experiment", "start", "--challenger", "1"); code == 0 || !strings.Contains(errOut, "challenger version 1) is running: stop or promote it first") {
		t.Errorf("second start: exit %d, %s", code, errOut)
	}
	var st struct {
		Experiment struct {
			ID     int64   `json:"id"`
			Status string  `json:"status"`
			Share  float64 `json:"share"`
		} `json:"experiment"`
		Readout struct {
			Verdict string `json:"verdict"`
		} `json:"readout"`
		Routing string `json:"routing"`
	}
	if err := json.Unmarshal([]byte(must("experiment", "status", "-o", "json")), &st); err != nil {
		t.Fatal(err)
	}
	if st.Experiment.ID != 1 || st.Experiment.Status != "running" || st.Experiment.Share != 0.2 || st.Routing != "ok" || st.Readout.Verdict != "too early" {
		t.Errorf("status: %+v", st)
	}
	if out := must("experiment", "status"); !strings.Contains(out, "verdict: too early") || !strings.Contains(out, "challenger: v1 for 20.0% of users") {
		t.Errorf("status table:\n%s", out)
	}
	if out := must("experiment", "stop"); !strings.Contains(out, "experiment 1 stopped") {
		t.Errorf("stop said: %s", out)
	}
	if out := must("experiment", "status", "--id", "1"); !strings.Contains(out, "stopped") {
		t.Errorf("status after stop:\n%s", out)
	}
	if out := must("experiment", "stop"); !strings.Contains(out, "no experiment is running") {
		t.Errorf("second stop said: %s", out)
	}

	must("experiment", "start", "--challenger", "1")
	if out := must("experiment", "promote"); !strings.Contains(out, "experiment 2 promoted: readers now use version 1 (swapped); version 2 is kept as previous") {
		t.Errorf("promote said: %s", out)
	}
	if out := must("status"); !strings.Contains(out, "1") {
		t.Errorf("status after promote:\n%s", out)
	}
	if code, _, errOut := run("experiment", "promote"); code == 0 || !strings.Contains(errOut, "none") {
		t.Errorf("promote without an experiment: exit %d, %s", code, errOut)
	}
}
