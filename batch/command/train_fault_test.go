package command_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/setlist/setlist/internal/keyspace"
	"github.com/setlist/setlist/internal/postgres"
	"github.com/setlist/setlist/internal/store"
)

// buildBatch compiles the real batch binary, so a test can SIGKILL it: a
// process killed outright runs no deferred code, unlike a cancelled context.
func buildBatch(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "batch")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/setlist/setlist/batch").CombinedOutput()
	if err != nil {
		t.Fatalf("build batch: %v\n%s", err, out)
	}
	return bin
}

type logLine struct {
	Msg   string `json:"msg"`
	Phase string `json:"phase"`
	Run   int64  `json:"run"`
}

// trainProc is a running `batch train` whose JSON log is scanned line by
// line.
type trainProc struct {
	cmd   *exec.Cmd
	lines chan logLine
	all   bytes.Buffer
	done  chan error
}

func (c *cli) startTrain(t *testing.T, bin string, args ...string) *trainProc {
	t.Helper()
	full := append(append(append([]string{}, c.global[1:]...), "--log-format", "json", "train"), args...)
	cmd := exec.Command(bin, full...)
	r, w := io.Pipe()
	cmd.Stdout, cmd.Stderr = w, w
	p := &trainProc{cmd: cmd, lines: make(chan logLine, 1000), done: make(chan error, 1)}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			p.all.WriteString(sc.Text() + "\n")
			var l logLine
			if json.Unmarshal(sc.Bytes(), &l) == nil {
				p.lines <- l
			}
		}
		close(p.lines)
	}()
	go func() { err := cmd.Wait(); w.Close(); p.done <- err }()
	return p
}

// waitLine returns the first line matching, or fails when the process ends
// first.
func (p *trainProc) waitLine(t *testing.T, match func(logLine) bool) logLine {
	t.Helper()
	timeout := time.After(2 * time.Minute)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				t.Fatalf("batch train ended without the expected log line:\n%s", p.all.String())
			}
			if match(l) {
				return l
			}
		case <-timeout:
			t.Fatalf("no expected log line within 2 minutes:\n%s", p.all.String())
		}
	}
}

func (p *trainProc) wait(t *testing.T) (exitCode int) {
	t.Helper()
	for range p.lines {
	}
	err := <-p.done
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}

// waitKeys waits until some key matches pattern.
func waitKeys(t *testing.T, c *cli, pattern string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		keys, _, err := c.rdb.Scan(context.Background(), 0, pattern, 100000).Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no key matching %s within 30s", pattern)
		}
		time.Sleep(time.Millisecond)
	}
}

func countKeys(t *testing.T, c *cli, pattern string) int {
	t.Helper()
	n := 0
	iter := c.rdb.Scan(context.Background(), 0, pattern, 1000).Iterator()
	for iter.Next(context.Background()) {
		n++
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestTrainKilledAndConcurrent runs the real batch binary: SIGKILLed inside
// each phase it publishes nothing (pointer and the old version's reads
// unchanged) and leaves no run claiming success; the next run succeeds,
// deletes the partial keys and marks the killed runs failed. Two runs at
// once: without --wait-lock the second exits 4 naming the holder; with it,
// the second waits and then publishes.
func TestTrainKilledAndConcurrent(t *testing.T) {
	bin := buildBatch(t)
	c := newCLI(t)
	dir := t.TempDir()
	csv := filepath.Join(dir, "r.csv.gz")
	// Sized so each phase lasts long enough (≥ ~50 ms even for top-K and
	// publish) for the kill to land inside it.
	c.mustRun("synth", "--users", "12000", "--songs", "2000", "--reactions", "300000", "--out", csv)
	c.mustRun("import", "--csv", csv)
	trainArgs := []string{"--force", "-k", "50", "--iterations", "4", "--eval-users", "500"}
	c.mustRun(append([]string{"train"}, trainArgs...)...)
	pub := keyspace.NewPublisher(c.rdb, c.keys)
	ctx := context.Background()
	before, err := pub.Pointers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, reads := c.reads(200)
	db, err := postgres.Open(ctx, c.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	var killed []int64
	for _, k := range []struct{ phase, after string }{
		{"load", ""}, // killed right after "batch run started"
		{"eval", "split"},
		{"train", "eval"},
		{"topk", "train"},
		{"publish", "topk"},
	} {
		t.Run("Kill/"+k.phase, func(t *testing.T) {
			p := c.startTrain(t, bin, trainArgs...)
			started := p.waitLine(t, func(l logLine) bool { return l.Msg == "batch run started" })
			if k.after != "" {
				p.waitLine(t, func(l logLine) bool { return l.Msg == "phase done" && l.Phase == k.after })
			}
			if k.phase == "publish" {
				// Kill once the publish has written some of the version's
				// keys: a half-written version is what must not be served.
				waitKeys(t, c, c.keys.VersionPrefix(keyspace.Version(started.Run))+"*")
			}
			if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			code := p.wait(t)
			if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
				t.Fatalf("batch train was not killed (exit %d); the phase finished first:\n%s", code, p.all.String())
			}
			if strings.Contains(p.all.String(), fmt.Sprintf(`"msg":"phase done","run":%d,"phase":"%s"`, started.Run, k.phase)) {
				t.Fatalf("phase %s completed before the kill landed:\n%s", k.phase, p.all.String())
			}
			killed = append(killed, started.Run)
			now, err := pub.Pointers(ctx)
			if err != nil || now != before {
				t.Fatalf("pointers %+v (%v) after a run killed in %s, want %+v", now, err, k.phase, before)
			}
			_, after := c.reads(200)
			for u, b := range reads {
				if !bytes.Equal(after[u], b) {
					t.Fatalf("user %d's read changed after a run killed in %s", u, k.phase)
				}
			}
			run, err := db.Run(ctx, started.Run)
			if err != nil || run.Status == store.RunPublished || run.PublishedAt != nil {
				t.Fatalf("killed run %d in the registry: %+v (%v); it must not claim success", started.Run, run, err)
			}
		})
	}
	if t.Failed() {
		return
	}
	// A killed publish leaves keys of its version behind; the next run
	// deletes them.
	partial := 0
	for _, v := range killed {
		partial += countKeys(t, c, c.keys.VersionPrefix(keyspace.Version(v))+"*")
	}
	out := c.mustRun(append([]string{"train"}, trainArgs...)...)
	if !strings.Contains(out, "published as version") {
		t.Fatalf("the run after the kills:\n%s", out)
	}
	for _, v := range killed {
		if n := countKeys(t, c, c.keys.VersionPrefix(keyspace.Version(v))+"*"); n != 0 {
			t.Errorf("%d keys of killed version %d remain after the next run", n, v)
		}
		run, err := db.Run(ctx, v)
		if err != nil || run.Status != store.RunFailed || !strings.Contains(run.Reason, "interrupted") {
			t.Errorf("killed run %d after the next run: %s %q (%v), want failed, interrupted", v, run.Status, run.Reason, err)
		}
	}
	if partial == 0 {
		t.Fatal("the runs killed in publish left no keys: the cleanup was not exercised")
	}
	t.Logf("killed runs %v left %d partial keys; the next run published and cleaned them", killed, partial)

	t.Run("Concurrent", func(t *testing.T) {
		a := c.startTrain(t, bin, trainArgs...)
		a.waitLine(t, func(l logLine) bool { return l.Msg == "batch run started" })
		code, _, errOut := c.run(append([]string{"train"}, trainArgs...)...)
		if code != 4 || !strings.Contains(errOut, "another batch train holds the lock") {
			t.Errorf("second train without --wait-lock: exit %d, %s", code, errOut)
		}
		b := c.startTrain(t, bin, append([]string{"--wait-lock"}, trainArgs...)...)
		b.waitLine(t, func(l logLine) bool { return l.Msg == "waiting for the training lock" })
		if code := a.wait(t); code != 0 {
			t.Fatalf("first train: exit %d\n%s", code, a.all.String())
		}
		started := b.waitLine(t, func(l logLine) bool { return l.Msg == "batch run started" })
		if code := b.wait(t); code != 0 {
			t.Fatalf("waiting train: exit %d\n%s", code, b.all.String())
		}
		ptr, err := pub.Pointers(ctx)
		if err != nil || int64(ptr.Current) != started.Run {
			t.Fatalf("pointer %+v (%v), want the waiting run's version %d", ptr, err, started.Run)
		}
	})
}
