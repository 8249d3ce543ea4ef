package command_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/model"
	"github.com/setlist/setlist/internal/pipeline"
	"github.com/setlist/setlist/internal/postgres"
)

const (
	sampleCSV   = "../../data/sample.csv.gz"
	implicitDir = "../../internal/pipeline/testdata/implicit-model"
	sampleUsers = 303
	sampleSongs = 9119
)

// versionKeys returns every key of the current version (pointer
// included) with its value.
func (c *cli) versionKeys() (keyspace.Version, map[string][]byte) {
	c.t.Helper()
	ctx := context.Background()
	cur, err := c.rdb.Get(ctx, c.keys.Current()).Result()
	if err != nil {
		c.t.Fatalf("current pointer: %v", err)
	}
	v, _ := keyspace.ParseVersion(cur)
	out := map[string][]byte{}
	iter := c.rdb.Scan(ctx, 0, c.keys.VersionPrefix(v)+"*", 1000).Iterator()
	for iter.Next(ctx) {
		b, err := c.rdb.Get(ctx, iter.Val()).Bytes()
		if err != nil {
			c.t.Fatal(err)
		}
		out[iter.Val()] = b
	}
	if err := iter.Err(); err != nil {
		c.t.Fatal(err)
	}
	return v, out
}

// flush deletes every key under the test's prefix, as a Redis that lost
// its data (or was replaced) would look.
func (c *cli) flush() {
	c.t.Helper()
	ctx := context.Background()
	iter := c.rdb.Scan(ctx, 0, c.keys.Prefix()+":*", 1000).Iterator()
	for iter.Next(ctx) {
		c.rdb.Unlink(ctx, iter.Val())
	}
	if n := c.rdb.Exists(ctx, c.keys.Current()).Val(); n != 0 {
		c.t.Fatal("flush left the pointer")
	}
}

// lists returns every user's stored list under version v, decoded.
func (c *cli) lists(v keyspace.Version, users []setlist.UserID) map[setlist.UserID][]model.Rec {
	c.t.Helper()
	out := map[setlist.UserID][]model.Rec{}
	for _, u := range users {
		b, err := c.rdb.Get(context.Background(), c.keys.Recs(v, u)).Bytes()
		if err != nil {
			c.t.Fatalf("list of %s under %d: %v", u, v, err)
		}
		recs, err := model.DecodeRecs(b)
		if err != nil {
			c.t.Fatal(err)
		}
		out[u] = recs
	}
	return out
}

func (c *cli) db() *postgres.DB {
	c.t.Helper()
	db, err := postgres.Open(context.Background(), c.dbURL)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(db.Close)
	return db
}

// TestRepublishAfterRedisLoss publishes a model, loses every Redis key and
// republishes it from its artifact: every key, each user's answer among
// them, is byte-identical to before.
func TestRepublishAfterRedisLoss(t *testing.T) {
	c := newCLI(t)
	c.mustRun("import", "--csv", sampleCSV)
	out := c.mustRun("train")
	if !strings.Contains(out, "artifact:") {
		t.Errorf("train output does not report the artifact:\n%s", out)
	}
	v, before := c.versionKeys()
	if len(before) < sampleUsers+3 {
		t.Fatalf("%d keys under version %d, want every user's list and the shared keys", len(before), v)
	}
	c.flush()
	out = c.mustRun("republish")
	if !strings.Contains(out, "republished version") {
		t.Errorf("republish output:\n%s", out)
	}
	v2, after := c.versionKeys()
	if v2 != v || len(after) != len(before) {
		t.Fatalf("after republish: version %d with %d keys, want %d with %d", v2, len(after), v, len(before))
	}
	for k, b := range before {
		if !bytes.Equal(after[k], b) {
			t.Errorf("%s differs after republish (%d bytes, was %d)", k, len(after[k]), len(b))
		}
	}
	// Republishing what is served does nothing.
	if out := c.mustRun("republish"); !strings.Contains(out, "already served") {
		t.Errorf("second republish:\n%s", out)
	}
	// A corrupted artifact is refused and Redis is left as it was.
	c.flush()
	db := c.db()
	if _, err := db.Pool.Exec(context.Background(), `UPDATE model_artifact_chunks SET data = set_byte(data, 7, get_byte(data, 7) # 4) WHERE version = $1 AND seq = 0`, int64(v)); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := c.run("republish")
	if code == 0 || !strings.Contains(errOut, "sha256") {
		t.Errorf("republish of a corrupt artifact: exit %d\n%s", code, errOut)
	}
	if n := c.rdb.Exists(context.Background(), c.keys.Current()).Val(); n != 0 {
		t.Error("a refused republish set the pointer")
	}
}

// TestRetentionPinRollbackTo trains four versions with --keep 2 and one
// pin, then rolls back to the pinned one, which Redis no longer holds.
func TestRetentionPinRollbackTo(t *testing.T) {
	c := newCLI(t)
	c.mustRun("import", "--csv", sampleCSV)
	var versions []keyspace.Version
	var lists []map[setlist.UserID][]model.Rec
	users := sampleUserIDs(t)
	for i := range 4 {
		if i == 3 {
			c.mustRun("pin", "2")
		}
		c.mustRun("train", "--keep", "2", "--iterations", "3", "--factors", "16")
		v, _ := c.versionKeys()
		versions = append(versions, v)
		lists = append(lists, c.lists(v, users))
	}
	got := c.mustRun("artifacts")
	// v1 went when v3 was published (v3 current, v2 previous); v2 is pinned,
	// so after v4 the kept ones are v4, v3 (the newest two) and v2.
	var kept []string
	for _, line := range strings.Split(strings.TrimSpace(got), "\n")[1:] {
		kept = append(kept, strings.Fields(line)[0])
	}
	if want := []string{"4", "3", "2"}; !slices.Equal(kept, want) || versions[1] != 2 {
		t.Fatalf("kept artifacts %v, want %v (versions %v):\n%s", kept, want, versions, got)
	}
	if !strings.Contains(got, "pinned") {
		t.Errorf("pin not listed:\n%s", got)
	}
	// v2 is neither current nor previous: its keys were retired, so the
	// rollback republishes it from the artifact.
	out := c.mustRun("rollback", "--to", "2", "--reason", "v4 is bad")
	if !strings.Contains(out, "republished version 2") || !strings.Contains(out, "run 4 marked rolled back") {
		t.Errorf("rollback --to 2:\n%s", out)
	}
	v, _ := c.versionKeys()
	if v != 2 {
		t.Fatalf("current %d after rollback --to 2", v)
	}
	if got := c.lists(2, users); !equalLists(got, lists[1]) {
		t.Error("version 2's lists differ from what it served when it was published")
	}
	db := c.db()
	r4, _ := db.Run(context.Background(), 4)
	last, _ := db.LastPublished(context.Background())
	if r4.Status != "rolled_back" || r4.Reason != "v4 is bad" || last.ID != 2 {
		t.Errorf("registry: run 4 %s %q, last published %d", r4.Status, r4.Reason, last.ID)
	}
	// Back to v4, which is previous now: a pointer swap.
	if out := c.mustRun("rollback", "--to", "4"); !strings.Contains(out, "swapped") {
		t.Errorf("rollback --to 4:\n%s", out)
	}
	code, _, errOut := c.run("rollback", "--to", "1")
	if code == 0 || !strings.Contains(errOut, "not found") {
		t.Errorf("rollback to a pruned version: exit %d\n%s", code, errOut)
	}
	c.mustRun("unpin", "2")
	code, _, errOut = c.run("pin", "1")
	if code == 0 || !strings.Contains(errOut, "no artifact") {
		t.Errorf("pin of a pruned version: exit %d\n%s", code, errOut)
	}
}

// TestExportImportRoundTrip exports a trained version in implicit's format
// and imports it back: every user's list is identical.
func TestExportImportRoundTrip(t *testing.T) {
	c := newCLI(t)
	c.mustRun("import", "--csv", sampleCSV)
	c.mustRun("train", "--factors", "24", "--iterations", "5")
	v1, _ := c.versionKeys()
	users := sampleUserIDs(t)
	before := c.lists(v1, users)
	dir := t.TempDir()
	out := c.mustRun("export", "--out", filepath.Join(dir, "model.npz"))
	if !strings.Contains(out, "303 users × 9,119 songs × 24 factors") {
		t.Errorf("export output:\n%s", out)
	}
	out = c.mustRun("import-model", "--npz", filepath.Join(dir, "model.npz"),
		"--users", filepath.Join(dir, "users.csv"), "--items", filepath.Join(dir, "items.csv"))
	if !strings.Contains(out, "published as version") {
		t.Fatalf("import-model:\n%s", out)
	}
	v2, _ := c.versionKeys()
	if v2 == v1 {
		t.Fatal("import did not publish a new version")
	}
	if !equalLists(c.lists(v2, users), before) {
		t.Error("lists after export and import differ from the trained version's")
	}
	last, _ := c.db().LastPublished(context.Background())
	var params struct {
		Source string `json:"source"`
		ALS    struct {
			Factors int `json:"factors"`
		} `json:"als"`
	}
	if err := json.Unmarshal(last.Params, &params); err != nil || params.Source != "imported" || params.ALS.Factors != 24 {
		t.Errorf("registry params of the import: %s (%v)", last.Params, err)
	}
}

// TestImportImplicitModel imports the model implicit 0.7.2 trained on the
// committed sample: setlist's published top-5 is implicit's own, for every
// user, same songs in the same order, scores to 1e-4; fold-in and
// explanations work on the imported item side.
func TestImportImplicitModel(t *testing.T) {
	c := newCLI(t)
	// -k (the old name of --depth) 5: implicit's expected lists are top-5s.
	args := []string{"import-model", "-k", "5", "--npz", filepath.Join(implicitDir, "model.npz"),
		"--users", filepath.Join(implicitDir, "users.csv"), "--items", filepath.Join(implicitDir, "items.csv")}
	// Nothing imported yet: every user and song is unknown, and named.
	code, _, errOut := c.run(args...)
	if code == 0 || !strings.Contains(errOut, "303 users unknown to the database") ||
		!strings.Contains(errOut, "00055176fea33f6e027cd3302289378b") || !strings.Contains(errOut, "9119 songs unknown") ||
		!strings.Contains(errOut, "--create-missing") {
		t.Fatalf("import into an empty database: exit %d\n%s", code, errOut)
	}
	if n := c.rdb.Exists(context.Background(), c.keys.Current()).Val(); n != 0 {
		t.Fatal("a refused import published")
	}
	c.mustRun("import", "--csv", sampleCSV)
	out := c.mustRun(args...)
	if !strings.Contains(out, "published as version") || !strings.Contains(out, "imported: factors 32") {
		t.Fatalf("import-model:\n%s", out)
	}
	v, _ := c.versionKeys()
	db := c.db()
	ctx := context.Background()
	f, err := os.Open(filepath.Join(implicitDir, "expected_top5.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n, ties := 0, 0
	for sc.Scan() {
		var want struct {
			UserID string `json:"user_id"`
			Items  []struct {
				Artist, Track string
				Score         float64
			} `json:"items"`
		}
		if err := json.Unmarshal(sc.Bytes(), &want); err != nil {
			t.Fatal(err)
		}
		u := setlist.UserID(want.UserID)
		got := c.lists(v, []setlist.UserID{u})[u]
		ids := make([]setlist.SongID, len(got))
		for i, r := range got {
			ids[i] = r.Song
		}
		songs, err := db.SongsByID(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want.Items) {
			t.Errorf("%s: %d songs, implicit has %d", u, len(got), len(want.Items))
			continue
		}
		for i, w := range want.Items {
			s := songs[got[i].Song]
			if math.Abs(float64(got[i].Score)-w.Score) > 1e-4 {
				t.Errorf("%s #%d: score %.6f, implicit %.6f", u, i+1, got[i].Score, w.Score)
			}
			if s.Artist == w.Artist && s.Track == w.Track {
				continue
			}
			// Two songs whose float32 scores tie may come out in either
			// order: one user has such a pair (exact dot products
			// 0.0421471306 and 0.0421471290, apart by less than a float32
			// step at that magnitude). Only a swap within implicit's own
			// tie is accepted.
			tied := false
			for j, o := range want.Items {
				if j != i && o.Artist == s.Artist && o.Track == s.Track && math.Abs(o.Score-w.Score) < 1e-6 {
					tied = true
					ties++
				}
			}
			if !tied {
				t.Errorf("%s #%d: %q by %q (%.6f), implicit %q by %q (%.6f)", u, i+1, s.Track, s.Artist, got[i].Score, w.Track, w.Artist, w.Score)
			}
		}
		n++
	}
	if n != sampleUsers || ties > 2 {
		t.Fatalf("checked %d users (want %d); %d positions differ by a float32 tie (want at most the one known pair)", n, sampleUsers, ties)
	}
	// serve's fold-in and explanations run on the imported item side.
	pubd, err := keyspace.NewReader(c.rdb, c.keys.Prefix()).Load(ctx, v)
	if err != nil {
		t.Fatal(err)
	}
	reactions, err := db.UserReactions(ctx, "00055176fea33f6e027cd3302289378b", 0)
	if err != nil || len(reactions) == 0 {
		t.Fatalf("reactions: %d, %v", len(reactions), err)
	}
	ex, _, err := pubd.FoldInExplained(reactions, 5, 5)
	if err != nil || len(ex) != 5 {
		t.Fatalf("fold-in on the imported model: %d, %v", len(ex), err)
	}
	for _, e := range ex {
		if e.Because == 0 {
			t.Errorf("recommendation %d has no explanation", e.Song)
		}
	}
	if sim, ok := pubd.Similar(ex[0].Song, 3); !ok || len(sim) != 3 {
		t.Errorf("similar songs on the imported model: %v %v", sim, ok)
	}
}

// sampleUserIDs are the committed sample's users (the implicit fixture's
// users.csv lists exactly them).
func sampleUserIDs(t *testing.T) []setlist.UserID {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(implicitDir, "users.csv"))
	if err != nil {
		t.Fatal(err)
	}
	var out []setlist.UserID
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n")[1:] {
		_, id, _ := strings.Cut(line, ",")
		out = append(out, setlist.UserID(strings.TrimSpace(id)))
	}
	if len(out) != sampleUsers {
		t.Fatalf("%d users in users.csv", len(out))
	}
	return out
}

func equalLists(a, b map[setlist.UserID][]model.Rec) bool {
	if len(a) != len(b) {
		return false
	}
	for u, l := range a {
		if !slices.Equal(l, b[u]) {
			return false
		}
	}
	return true
}

// TestImportCreateMissing imports the implicit model into a database that
// knows none of its users and songs, creating them: every user gets their
// imported list (nothing to exclude: they have no reactions here).
func TestImportCreateMissing(t *testing.T) {
	c := newCLI(t)
	out := c.mustRun("import-model", "--create-missing", "--force", "--npz", filepath.Join(implicitDir, "model.npz"),
		"--users", filepath.Join(implicitDir, "users.csv"), "--items", filepath.Join(implicitDir, "items.csv"))
	if !strings.Contains(out, "published as version 1") || !strings.Contains(out, "not evaluated") {
		t.Fatalf("import-model --create-missing --force:\n%s", out)
	}
	db := c.db()
	u, err := db.User(context.Background(), "00055176fea33f6e027cd3302289378b")
	if err != nil || u.ID != "00055176fea33f6e027cd3302289378b" {
		t.Fatalf("created user: %+v, %v", u, err)
	}
	v, _ := c.versionKeys()
	lists := c.lists(v, sampleUserIDs(t))
	for u, l := range lists {
		if len(l) != pipeline.DefaultK {
			t.Fatalf("%s has %d songs, want the default depth %d", u, len(l), pipeline.DefaultK)
		}
	}
}
