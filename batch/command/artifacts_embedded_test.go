package command_test

import (
	"bytes"
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/setlist/setlist/batch/command"
	"github.com/setlist/setlist/internal/embedded"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/sqlite"
)

// embeddedKeys returns every key the embedded store keeps, with its value.
func embeddedKeys(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	emb, err := embedded.Open(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := emb.Close(); err != nil {
			t.Error(err)
		}
	}()
	rdb, err := emb.StartKV(ctx, keyspace.DefaultPrefix)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, k := range rdb.Keys(ctx, keyspace.DefaultPrefix+":v*").Val() {
		out[k], _ = rdb.Get(ctx, k).Bytes()
	}
	return out
}

// TestRepublishEmbedded is TestRepublishAfterRedisLoss on the embedded
// backend (SQLite keeps the artifact, the in-process Redis loses its keys),
// plus export and import through it.
func TestRepublishEmbedded(t *testing.T) {
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
	run("import", "--csv", sampleCSV)
	run("train", "--factors", "16", "--iterations", "4")
	before := embeddedKeys(t, dir)
	if len(before) < sampleUsers+3 {
		t.Fatalf("%d keys after train", len(before))
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, sqlite.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DELETE FROM kv`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if n := len(embeddedKeys(t, dir)); n != 0 {
		t.Fatalf("%d keys left after the loss", n)
	}
	if out := run("republish"); !strings.Contains(out, "republished version 1") {
		t.Errorf("republish:\n%s", out)
	}
	after := embeddedKeys(t, dir)
	if len(after) != len(before) {
		t.Fatalf("%d keys after republish, %d before", len(after), len(before))
	}
	for k, v := range before {
		if !bytes.Equal(after[k], v) {
			t.Errorf("%s differs after republish", k)
		}
	}
	out := filepath.Join(t.TempDir(), "m.npz")
	run("export", "--out", out)
	run("import-model", "--npz", out, "--users", filepath.Join(filepath.Dir(out), "users.csv"), "--items", filepath.Join(filepath.Dir(out), "items.csv"))
	imported := embeddedKeys(t, dir)
	for k, v := range before {
		if !strings.Contains(k, ":recs:") {
			continue
		}
		if !bytes.Equal(imported[strings.Replace(k, ":v1:", ":v2:", 1)], v) {
			t.Fatalf("%s: the imported version's list differs", k)
		}
	}
}
