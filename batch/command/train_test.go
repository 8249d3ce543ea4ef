package command_test

import (
	"bytes"
	"context"

	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/setlist/setlist"
	"github.com/setlist/setlist/batch/command"
	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/keyspace/redistest"
	"github.com/setlist/setlist/internal/postgres"
	"github.com/setlist/setlist/internal/postgres/pgtest"
	"github.com/setlist/setlist/internal/synth"
)

// cli runs the batch CLI in-process against one test database and prefix.
type cli struct {
	t      *testing.T
	global []string
	dbURL  string
	rdb    *redis.Client
	keys   keyspace.Keys
}

func newCLI(t *testing.T) *cli {
	rdb, prefix := redistest.Client(t)
	dbURL := pgtest.URL(t)
	return &cli{t: t, rdb: rdb, keys: keyspace.NewKeys(prefix), dbURL: dbURL, global: []string{"batch",
		"--database-url", dbURL, "--redis-url", redistest.ServerURL(), "--redis-prefix", prefix}}
}

// run returns the exit code, stdout and stderr.
func (c *cli) run(args ...string) (int, string, string) {
	c.t.Helper()
	app := command.NewApp("test")
	var out, errOut bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errOut
	code := command.Run(context.Background(), app, append(append([]string{}, c.global...), args...))
	return code, out.String(), errOut.String()
}

func (c *cli) mustRun(args ...string) string {
	c.t.Helper()
	code, out, errOut := c.run(args...)
	if code != 0 {
		c.t.Fatalf("batch %v: exit %d\nstdout:\n%s\nstderr:\n%s", args, code, out, errOut)
	}
	return out
}

// reads returns every user's list bytes under the version the pointer names.
func (c *cli) reads(users int) (string, map[int][]byte) {
	c.t.Helper()
	ctx := context.Background()
	cur := c.rdb.Get(ctx, c.keys.Current()).Val()
	v, _ := keyspace.ParseVersion(cur)
	out := map[int][]byte{}
	for i := range users {
		b, err := c.rdb.Get(ctx, c.keys.Recs(v, userID(i))).Bytes()
		if err != nil {
			c.t.Fatalf("read user%d under %s: %v", i, cur, err)
		}
		out[i] = b
	}
	return cur, out
}

func TestTrainStatusRollbackRuns(t *testing.T) {
	c := newCLI(t)
	csv := filepath.Join(t.TempDir(), "synth.csv.gz")
	c.mustRun("synth", "--users", "200", "--songs", "600", "--reactions", "8000", "--clusters", "6", "--seed", "5", "--out", csv)
	if st, err := os.Stat(csv); err != nil || st.Size() == 0 {
		t.Fatalf("synth wrote nothing: %v", err)
	}
	c.mustRun("import", "--csv", csv)

	small := []string{"train", "--factors", "16", "--iterations", "6", "--threads", "2"}
	out := c.mustRun(small...)
	if !strings.Contains(out, "run 1: published as version 1") || !strings.Contains(out, "NDCG@5") {
		t.Errorf("train output:\n%s", out)
	}
	_, first := c.reads(200)
	out = c.mustRun(small...)
	if !strings.Contains(out, "published as version 2") {
		t.Fatalf("second train output:\n%s", out)
	}
	out = c.mustRun("status")
	for _, want := range []string{"current version: 2 (previous 1)", "200 users with top-20 lists", "RUN", "published"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}

	out = c.mustRun("rollback", "--reason", "test says so")
	if !strings.Contains(out, "readers now use version 1") {
		t.Errorf("rollback output:\n%s", out)
	}
	cur, after := c.reads(200)
	if cur != "1" {
		t.Fatalf("pointer after rollback = %s, want 1", cur)
	}
	for i, b := range first {
		if !bytes.Equal(after[i], b) {
			t.Fatalf("user%d's list after rollback differs from version 1's", i)
		}
	}
	out = c.mustRun("runs")
	if !strings.Contains(out, "rolled_back") || !strings.Contains(out, "test says so") {
		t.Errorf("runs after rollback:\n%s", out)
	}

	// A deliberately bad model is rejected with exit code 3; the pointer stays.
	bad := []string{"train", "--factors", "1", "--iterations", "1", "--regularization", "1000", "--threads", "2"}
	code, out, errOut := c.run(bad...)
	if code != 3 || !strings.Contains(errOut, "rejected by the quality gate") {
		t.Errorf("bad model: exit %d\n%s\n%s", code, out, errOut)
	}
	if cur := c.rdb.Get(context.Background(), c.keys.Current()).Val(); cur != "1" {
		t.Errorf("pointer after a rejection = %s, want 1", cur)
	}
	code, _, _ = c.run(append(bad, "--dry-run")...)
	if code != 3 {
		t.Errorf("dry run of a bad model: exit %d, want 3", code)
	}
	out = c.mustRun(append(small, "--dry-run")...)
	if !strings.Contains(out, "passes the quality gate (not published)") {
		t.Errorf("dry run output:\n%s", out)
	}
	out = c.mustRun("runs", "--limit", "2")
	if got := strings.Count(out, "\n"); got != 3 {
		t.Errorf("runs --limit 2 printed %d lines:\n%s", got, out)
	}
	if !strings.Contains(out, "rejected") {
		t.Errorf("runs lacks the rejected run:\n%s", out)
	}
	out = c.mustRun(append(bad, "--force")...)
	if !strings.Contains(out, "published as version") {
		t.Errorf("forced train output:\n%s", out)
	}
}

func TestTrainEnvAndLock(t *testing.T) {
	c := newCLI(t)
	// Every flag reads an environment variable.
	t.Setenv("SETLIST_TRAIN_K", "-1")
	code, _, errOut := c.run("train", "--dry-run")
	if code != 1 || !strings.Contains(errOut, "k must be") {
		t.Errorf("SETLIST_TRAIN_K=-1: exit %d, %s", code, errOut)
	}
	t.Setenv("SETLIST_TRAIN_K", "")

	// A second train exits at once with code 4 while another holds the lock.
	db, err := postgres.Open(context.Background(), c.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c.mustRun("migrate")
	release, err := db.LockTraining(context.Background(), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	code, _, errOut = c.run("train")
	if code != 4 || !strings.Contains(errOut, "another batch train holds the lock (setlist batch train pid") {
		t.Errorf("train while locked: exit %d, %s", code, errOut)
	}
}

func TestRollbackWithNothingPublished(t *testing.T) {
	c := newCLI(t)
	code, _, errOut := c.run("rollback")
	if code != 1 || !strings.Contains(errOut, "no previous version") {
		t.Errorf("rollback on empty: exit %d, %s", code, errOut)
	}
	out := c.mustRun("status")
	if !strings.Contains(out, "no model is published") || !strings.Contains(out, "no runs recorded") {
		t.Errorf("status on empty:\n%s", out)
	}
}

func userID(i int) setlist.UserID { return setlist.UserID(synth.UserID(i)) }
