package command_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/setlist/setlist/internal/postgres"
	"github.com/setlist/setlist/internal/store"
)

// storedPlays is what the database holds, read back through the store's
// own API: each user's reactions as "kind artist/track=weight", sorted.
func storedPlays(t *testing.T, db *postgres.DB) map[string][]string {
	t.Helper()
	ctx := context.Background()
	page, err := db.SearchUsers(ctx, store.UserQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, u := range page.Users {
		rs, err := db.ReactionList(ctx, u.ID, 100)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range rs {
			got = append(got, string(r.Kind)+" "+r.Song.Artist+"/"+r.Song.Track+"="+strconv.FormatFloat(r.Weight, 'g', -1, 64))
		}
		slices.Sort(got)
		out[string(u.ID)] = got
	}
	return out
}

// TestImportCommand runs `batch import` end to end: gzip detected by
// content, the summary on stdout and one progress line on stderr, a bad row
// failing the whole file with its line and field named once and nothing
// written, --skip-invalid importing the rest, a missing file named.
func TestImportCommand(t *testing.T) {
	c := newCLI(t)
	dir := t.TempDir()
	const csv = "user_id,artist,track,count\nu1,Adele,Hello,3\nu1,\"Dear, Maria\",\"Count Me In\",2\nu2,Adele,Hello,1.5\nu1,Adele,Hello,1\n"
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	if _, err := w.Write([]byte(csv)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "plays.csv") // gzip despite the name
	if err := os.WriteFile(good, gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.csv")
	if err := os.WriteFile(bad, []byte("user_id,artist,track,count\nnew1,A,T,1\nnew2,B,T,2\nnew3,A,T,-1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := postgres.Open(context.Background(), c.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	code, out, errOut := c.run("import", "--csv", good)
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	if !strings.Contains(out, "reactions: 3 inserted") {
		t.Errorf("summary does not report 3 inserted reactions:\n%s", out)
	}
	if !strings.Contains(errOut, "import "+good+" finished") {
		t.Errorf("no final progress log line on a non-terminal stderr:\n%s", errOut)
	}
	// Repeated rows are summed, quoted commas kept.
	want := map[string][]string{
		"u1": {"play Adele/Hello=4", "play Dear, Maria/Count Me In=2"},
		"u2": {"play Adele/Hello=1.5"},
	}
	if got := storedPlays(t, db); !reflect.DeepEqual(got, want) {
		t.Fatalf("stored %v, want %v", got, want)
	}

	code, _, errOut = c.run("import", "--csv", bad)
	if code == 0 {
		t.Fatal("bad file: exit code 0")
	}
	if wantMsg := bad + ":4: count \\\"-1\\\" is negative (field count)"; !strings.Contains(errOut, wantMsg) {
		t.Errorf("stderr lacks %q:\n%s", wantMsg, errOut)
	}
	if strings.Count(errOut, "is negative") != 1 {
		t.Errorf("error logged %d times, want once:\n%s", strings.Count(errOut, "is negative"), errOut)
	}
	if got := storedPlays(t, db); !reflect.DeepEqual(got, want) {
		t.Fatalf("a failed import wrote: stored %v, want %v", got, want)
	}

	code, out, errOut = c.run("import", "--csv", bad, "--skip-invalid")
	if code != 0 {
		t.Fatalf("--skip-invalid: exit %d, stderr:\n%s", code, errOut)
	}
	if !strings.Contains(out, "skipped:   1 invalid rows (lines 4)") {
		t.Errorf("--skip-invalid summary lacks the skipped line:\n%s", out)
	}
	want["new1"], want["new2"] = []string{"play A/T=1"}, []string{"play B/T=2"}
	if got := storedPlays(t, db); !reflect.DeepEqual(got, want) {
		t.Fatalf("after --skip-invalid: stored %v, want %v", got, want)
	}

	code, _, errOut = c.run("import", "--csv", filepath.Join(dir, "missing.csv"))
	if code == 0 || !strings.Contains(errOut, "missing.csv") {
		t.Errorf("missing file: exit %d, stderr:\n%s", code, errOut)
	}
}
