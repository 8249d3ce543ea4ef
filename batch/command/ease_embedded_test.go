package command_test

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/setlist/setlist/batch/command"
	"github.com/setlist/setlist/internal/npz"
	"github.com/setlist/setlist/internal/sqlite"
	"github.com/setlist/setlist/internal/synth"
)

// TestEASEEmbedded trains and publishes EASE on the embedded backend
// (SQLite registry and artifact, in-process Redis): batch runs names the
// family, republish after losing every key restores the same keys from the
// EASE artifact, and export writes B's kept entries, not implicit's format.
func TestEASEEmbedded(t *testing.T) {
	dir := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		app := command.NewApp("test")
		var out, errOut bytes.Buffer
		app.Writer, app.ErrWriter = &out, &errOut
		if code := command.Run(context.Background(), app, append([]string{"batch", "--store", "embedded", "--data-dir", dir}, args...)); code != 0 {
			t.Fatalf("batch %v: exit %d\n%s\n%s", args, code, out.String(), errOut.String())
		}
		return out.String()
	}
	// A small synthetic catalog: EASE inverts songs × songs, and the
	// committed sample's catalog would cost minutes on the shared machine.
	var csv bytes.Buffer
	if _, err := synth.Write(&csv, synth.Config{Users: 200, Songs: 300, Reactions: 5000, Clusters: 6, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	csvPath := filepath.Join(dir, "synth.csv")
	if err := os.WriteFile(csvPath, csv.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	run("import", "--csv", csvPath)
	if out := run("train", "--family", "ease", "--ease-lambda", "30"); !strings.Contains(out, "EASE, λ 30") {
		t.Fatalf("train:\n%s", out)
	}
	runs := run("runs")
	if !strings.Contains(runs, "FAMILY") || !strings.Contains(runs, " ease ") {
		t.Fatalf("runs does not name the family:\n%s", runs)
	}
	before := embeddedKeys(t, dir)
	db, err := sql.Open("sqlite", filepath.Join(dir, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DELETE FROM kv`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	run("republish")
	after := embeddedKeys(t, dir)
	if len(after) != len(before) || len(after) < 200+3 {
		t.Fatalf("%d keys after republish, %d before", len(after), len(before))
	}
	for k, v := range before {
		if !bytes.Equal(after[k], v) && !strings.HasSuffix(k, ":meta") {
			t.Fatalf("key %s differs after republish", k)
		}
	}
	out := filepath.Join(dir, "ease.npz")
	if o := run("export", "--out", out); !strings.Contains(o, "(ease)") || !strings.Contains(o, "not implicit's format") {
		t.Fatalf("export:\n%s", o)
	}
	f, err := readNPZ(out)
	if err != nil {
		t.Fatal(err)
	}
	if !f.Has("b_indices") || !f.Has("b_values") || f.Has("user_factors") || f.Has("item_factors") {
		t.Fatal("the EASE export lacks B or carries ALS factors")
	}
	// The id maps: B's rows and columns are items.csv's rows; users.csv
	// lists the users with a stored list.
	bi, err := f.Array("b_indices")
	if err != nil {
		t.Fatal(err)
	}
	itemRows := csvRows(t, filepath.Join(dir, "items.csv"))
	if len(bi.Shape) != 2 || bi.Shape[0] != itemRows || bi.Shape[1] < 1 || bi.Shape[1] >= itemRows {
		t.Fatalf("b_indices shape %v for %d rows of items.csv", bi.Shape, itemRows)
	}
	if n := csvRows(t, filepath.Join(dir, "users.csv")); n < 200*9/10 || n > 200 {
		t.Fatalf("users.csv has %d users, want ≈ the 200 with reactions", n)
	}
}

// csvRows counts a CSV file's data rows (after the header).
func csvRows(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(strings.TrimSpace(string(b)), "\n")
}

func readNPZ(path string) (*npz.File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return npz.ReadBytes(b)
}
