package command_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestTuneAndTrials runs `batch tune` on each backend: it records the
// search (status tuned, every trial) without publishing, prints the trials
// as a table and as JSON, `batch runs --trials RUN` prints the same, and the
// next `batch train` starts from the search's pick.
func TestTuneAndTrials(t *testing.T) {
	for _, backend := range []string{"postgres+redis", "embedded"} {
		t.Run(backend, func(t *testing.T) {
			c := newCLI(t)
			if backend == "embedded" {
				c.global = []string{"batch", "--store", "embedded", "--data-dir", filepath.Join(t.TempDir(), "data")}
			}
			csv := filepath.Join(t.TempDir(), "synth.csv.gz")
			c.mustRun("synth", "--users", "150", "--songs", "400", "--reactions", "5000", "--clusters", "5", "--seed", "9", "--out", csv)
			c.mustRun("import", "--csv", csv)

			code, out, errOut := c.run("tune", "--trials", "3", "--budget", "0", "--threads", "2", "--output", "json")
			if code != 0 {
				t.Fatalf("tune: exit %d\n%s", code, errOut)
			}
			// A tune publishes no version and evaluates no model: its last
			// line says what the search picked (issue 26 item 12).
			if last := regexp.MustCompile(`msg="batch run finished".*`).FindString(errOut); !strings.Contains(last, "status=tuned") ||
				strings.Contains(last, "version=") || strings.Contains(last, "ndcg_at_5=0 ") || !strings.Contains(last, "best_mean_ndcg_at_5=") {
				t.Errorf("tune's summary line: %s", last)
			}
			var s struct {
				Run     int64 `json:"run"`
				Summary struct {
					Run        int64  `json:"run"`
					BestTrial  int    `json:"best_trial"`
					Trials     int    `json:"trial_count"`
					StopReason string `json:"stop_reason"`
				} `json:"summary"`
				Trials []struct {
					Number    int             `json:"number"`
					Params    json.RawMessage `json:"params"`
					NDCG      float64         `json:"ndcg_at_5"`
					BestSoFar *float64        `json:"best_so_far"`
					Incumbent bool            `json:"incumbent"`
				} `json:"trials"`
			}
			if err := json.Unmarshal([]byte(out), &s); err != nil {
				t.Fatalf("tune --output json: %v\n%s", err, out)
			}
			if s.Run < 1 || s.Summary.Run != s.Run || len(s.Trials) == 0 || s.Summary.Trials != len(s.Trials) || s.Summary.StopReason == "" {
				t.Fatalf("tune JSON = %s", out)
			}
			if !s.Trials[0].Incumbent || !strings.Contains(string(s.Trials[0].Params), `"factors"`) {
				t.Errorf("first trial %+v (params %s): want the incumbent, params in snake_case", s.Trials[0], s.Trials[0].Params)
			}
			if cur := c.rdb.Get(t.Context(), c.keys.Current()).Val(); backend != "embedded" && cur != "" {
				t.Errorf("batch tune published: pointer %q", cur)
			}
			// A search has no artifact: rollback --to it says so, and
			// claims no republish finished.
			if code, _, errOut := c.run("rollback", "--to", fmt.Sprint(s.Run)); code == 0 || !strings.Contains(errOut, "is a search (batch tune)") ||
				!strings.Contains(errOut, "batch artifacts lists") || strings.Contains(errOut, "finished") {
				t.Errorf("rollback --to the tune run: exit %d\n%s", code, errOut)
			}
			runs := c.mustRun("runs")
			if !regexp.MustCompile(fmt.Sprintf(`(?m)^%d +tuned `, s.Run)).MatchString(runs) {
				t.Errorf("runs does not list run %d as tuned:\n%s", s.Run, runs)
			}

			table := c.mustRun("runs", "--trials", fmt.Sprint(s.Run))
			lines := strings.Split(strings.TrimSpace(table), "\n")
			if len(lines) != len(s.Trials)+2 || !strings.Contains(lines[0], "NDCG@5") || !strings.Contains(lines[1], "incumbent") {
				t.Errorf("runs --trials %d: want a header, %d trial lines and a summary:\n%s", s.Run, len(s.Trials), table)
			}
			if !strings.Contains(table, "picked") || !strings.Contains(lines[len(lines)-1], "stopped: "+s.Summary.StopReason) {
				t.Errorf("runs --trials %d marks no pick or says no stop reason:\n%s", s.Run, table)
			}
			again := c.mustRun("runs", "--trials", fmt.Sprint(s.Run), "-o", "json")
			if again != out {
				t.Errorf("runs --trials -o json differs from tune's JSON:\n%s\nvs\n%s", again, out)
			}

			// --family auto is the default of a search (issue 26 item 16):
			// the run says how it chose the family.
			var params struct {
				Choice *struct {
					Chosen string `json:"chosen"`
				} `json:"family_choice"`
			}
			if backend != "embedded" {
				if r, err := c.db().Run(t.Context(), s.Run); err != nil || json.Unmarshal(r.Params, &params) != nil || params.Choice == nil {
					t.Errorf("batch tune did not compare the families by default (%v): %s", err, r.Params)
				}
			}
			c.mustRun("train", "--threads", "2", "--force")
			runs = c.mustRun("runs", "--limit", "1")
			if !strings.Contains(runs, "last-tuned") {
				t.Errorf("the train after tune did not start from the tuned parameters:\n%s", runs)
			}
			if st := c.mustRun("status"); !strings.Contains(st, fmt.Sprintf("parameters from the search of run %d: %d trials", s.Run, len(s.Trials))) {
				t.Errorf("status does not name the search behind the served parameters:\n%s", st)
			}
			if msg := c.mustRun("runs", "--trials", fmt.Sprint(s.Run+1)); !strings.Contains(msg, fmt.Sprintf("did not tune; its parameters come from the search of run %d", s.Run)) {
				t.Errorf("runs --trials of the train run: %q", msg)
			}
			if code, _, errOut := c.run("runs", "--trials", "999"); code == 0 || !strings.Contains(errOut, "run 999") {
				t.Errorf("runs --trials 999: exit %d, stderr %s", code, errOut)
			}
			if code, _, errOut := c.run("tune", "--budget", "0"); code == 0 || !strings.Contains(errOut, "budget") {
				t.Errorf("tune with no budget and no trials: exit %d, stderr %s", code, errOut)
			}
		})
	}
}
