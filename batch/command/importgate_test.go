package command_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestImportedModelDoesNotBlockRetrain exports a trained version and imports
// it again (issue 26 items 6 and 7): the import records the trained run's
// parameters (its iterations, not the warm start's), its figure is measured
// the same way as a trained run's, and the next train --dry-run is not
// rejected against it.
func TestImportedModelDoesNotBlockRetrain(t *testing.T) {
	c := newCLI(t)
	c.mustRun("import", "--csv", sampleCSV)
	c.mustRun("train", "--factors", "32", "--iterations", "12")
	trained, _ := c.db().LastPublished(context.Background())
	dir := t.TempDir()
	c.mustRun("export", "--out", filepath.Join(dir, "model.npz"))
	c.mustRun("import-model", "--npz", filepath.Join(dir, "model.npz"),
		"--users", filepath.Join(dir, "users.csv"), "--items", filepath.Join(dir, "items.csv"))
	imported, _ := c.db().LastPublished(context.Background())
	if imported.ID == trained.ID {
		t.Fatal("the import did not publish")
	}
	type params struct {
		Source string `json:"source"`
		Eval   string `json:"eval"`
		ALS    struct {
			Factors    int `json:"factors"`
			Iterations int `json:"iterations"`
		} `json:"als"`
	}
	var tp, ip params
	if err := json.Unmarshal(trained.Params, &tp); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(imported.Params, &ip); err != nil {
		t.Fatal(err)
	}
	if ip.ALS.Iterations != 12 || ip.ALS.Factors != 32 {
		t.Errorf("the import recorded factors %d, iterations %d; the trained run had 32 and 12: %s", ip.ALS.Factors, ip.ALS.Iterations, imported.Params)
	}
	if ip.Eval == "" || ip.Eval != tp.Eval {
		t.Errorf("evaluation recorded as %q for the import, %q for the trained run: want the same method", ip.Eval, tp.Eval)
	}
	var tm, im map[string]float64
	_ = json.Unmarshal(trained.Metrics, &tm)
	_ = json.Unmarshal(imported.Metrics, &im)
	t.Logf("NDCG@5 trained %.4f, imported %.4f (the imported factors folded in: %.4f)", tm["ndcg_at_5"], im["ndcg_at_5"], im["imported_fold_in_ndcg_at_5"])
	if tm["ndcg_at_5"] <= 0 || im["ndcg_at_5"] > tm["ndcg_at_5"]*1.02 {
		t.Errorf("NDCG@5 %.4f trained, %.4f imported: the import must not score above its own training", tm["ndcg_at_5"], im["ndcg_at_5"])
	}
	code, out, errOut := c.run("train", "--dry-run")
	if code != 0 {
		t.Errorf("train --dry-run after the import: exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "passes the quality gate") {
		t.Errorf("train --dry-run output:\n%s", out)
	}
	// The next train starts from the imported run's parameters: 12 iterations.
	if !strings.Contains(out, "iterations 12") {
		t.Errorf("train --dry-run does not start from the trained iterations:\n%s", out)
	}
}
