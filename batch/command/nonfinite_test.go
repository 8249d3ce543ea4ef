package command_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/setlist/setlist/internal/npz"
)

// craftNPZ writes the implicit fixture's model.npz with edit applied to
// its arrays, next to copies of its id maps, and returns import-model's
// arguments for it.
func craftNPZ(t *testing.T, edit func(arrays map[string]*npz.Array)) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(implicitDir, "model.npz"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := npz.ReadBytes(b)
	if err != nil {
		t.Fatal(err)
	}
	arrays := map[string]*npz.Array{}
	for _, n := range f.Names {
		a, _ := f.Array(n)
		arrays[n] = &npz.Array{Descr: a.Descr, Shape: a.Shape, Data: bytes.Clone(a.Data)}
	}
	edit(arrays)
	var entries []npz.Entry
	for _, n := range f.Names {
		entries = append(entries, npz.Entry{Name: n, Array: arrays[n]})
	}
	dir := t.TempDir()
	var out bytes.Buffer
	if err := npz.Write(&out, entries); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model.npz"), out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"import-model", "--npz", filepath.Join(dir, "model.npz"),
		"--users", filepath.Join(implicitDir, "users.csv"), "--items", filepath.Join(implicitDir, "items.csv")}
}

// setF32 sets float32 element i of a.
func setF32(a *npz.Array, i int, v float32) {
	binary.LittleEndian.PutUint32(a.Data[4*i:], math.Float32bits(v))
}

// TestImportRefusesNonFiniteFactors (issue 24 item 5): an implicit .npz
// whose user factors are all NaN, whose float64 user factors hold 1e300
// (+Inf in float32), or with one NaN item row is refused, with and without
// --force, naming the array and row, and nothing is published. Before the
// fix the first two passed the gate (it folds in from item factors only)
// and published empty batch lists; the third, forced, made every fold-in
// fail.
func TestImportRefusesNonFiniteFactors(t *testing.T) {
	c := newCLI(t)
	c.mustRun("import", "--csv", sampleCSV)
	nan := float32(math.NaN())
	cases := []struct {
		name string
		edit func(map[string]*npz.Array)
		want string
	}{
		{"user factors all NaN", func(a map[string]*npz.Array) {
			u := a["user_factors"]
			for i := range u.Len() {
				setF32(u, i, nan)
			}
		}, "user_factors: row 0 column 0 is NaN"},
		{"1e300 in float64 user factors", func(a map[string]*npz.Array) {
			u := a["user_factors"]
			f, _ := u.Float32s()
			d := make([]byte, 8*len(f))
			for i, v := range f {
				binary.LittleEndian.PutUint64(d[8*i:], math.Float64bits(float64(v)))
			}
			binary.LittleEndian.PutUint64(d[8*(5*u.Shape[1]+3):], math.Float64bits(1e300))
			a["user_factors"] = &npz.Array{Descr: "<f8", Shape: u.Shape, Data: d}
		}, "user_factors: row 5 column 3 is +Inf"},
		{"one NaN item row", func(a map[string]*npz.Array) {
			it := a["item_factors"]
			k := it.Shape[1]
			for j := range k {
				setF32(it, 7*k+j, nan)
			}
		}, "item_factors: row 7 column 0 is NaN"},
		{"an absurd item norm", func(a map[string]*npz.Array) {
			setF32(a["item_factors"], 0, 1e30)
		}, "item_factors: row 0 has norm 1e+30"},
	}
	for _, tc := range cases {
		args := craftNPZ(t, tc.edit)
		for _, force := range []bool{false, true} {
			a := args
			if force {
				a = append(append([]string{}, args...), "--force")
			}
			code, out, errOut := c.run(a...)
			if code == 0 || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, "not finite") {
				t.Errorf("%s (force %v): exit %d, want a refusal naming %q\nstdout:\n%s\nstderr:\n%s", tc.name, force, code, tc.want, out, errOut)
			}
			if n := c.rdb.Exists(context.Background(), c.keys.Current()).Val(); n != 0 {
				t.Fatalf("%s (force %v): published", tc.name, force)
			}
		}
	}
}

// TestRollbackRefusesNonFiniteArtifact (issue 24 item 5): an artifact
// whose user factors are NaN (stored with a valid checksum, as a model
// published before the finiteness checks would be) is refused by rollback
// --to, and the current version stays. Before the fix it was republished
// with every batch list empty.
func TestRollbackRefusesNonFiniteArtifact(t *testing.T) {
	c := newCLI(t)
	c.mustRun("import", "--csv", sampleCSV)
	c.mustRun("train", "--iterations", "2", "--factors", "8", "--force")
	c.mustRun("train", "--iterations", "2", "--factors", "8", "--force")
	c.mustRun("train", "--iterations", "2", "--factors", "8", "--force")
	v, _ := c.versionKeys()
	if v != 3 {
		t.Fatalf("current version %d, want 3", v)
	}
	db := c.db()
	ctx := context.Background()
	data, _, err := db.Artifact(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Locate the user_factors section from the header and fill it with NaN.
	hlen := int(binary.LittleEndian.Uint32(data[8:]))
	var h struct {
		Sections []struct {
			Name  string
			Bytes int
		}
	}
	if err := json.Unmarshal(data[12:12+hlen], &h); err != nil {
		t.Fatal(err)
	}
	off := 12 + hlen
	for _, s := range h.Sections {
		if s.Name == "user_factors" {
			for i := off; i+4 <= off+s.Bytes; i += 4 {
				binary.LittleEndian.PutUint32(data[i:], math.Float32bits(float32(math.NaN())))
			}
		}
		off += s.Bytes
	}
	sum := sha256.Sum256(data)
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`DELETE FROM model_artifact_chunks WHERE version = 1`, nil},
		{`INSERT INTO model_artifact_chunks (version, seq, data) VALUES (1, 0, $1)`, []any{data}},
		{`UPDATE model_artifacts SET bytes = $1, sha256 = $2, chunks = 1 WHERE version = 1`, []any{len(data), hex.EncodeToString(sum[:])}},
	} {
		if _, err := db.Pool.Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errOut := c.run("rollback", "--to", "1")
	if code == 0 || !strings.Contains(errOut, "user factors: row 0 column 0 is NaN") {
		t.Errorf("rollback --to a NaN artifact: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if v, _ := c.versionKeys(); v != 3 {
		t.Errorf("current version %d after a refused rollback, want 3", v)
	}
}
