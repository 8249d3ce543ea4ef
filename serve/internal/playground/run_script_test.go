package playground

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMakeRunAndRetrain drives the playground the way the README tells a
// person to: scripts/run.sh (make run) with SETLIST_ADDR choosing the port,
// then scripts/retrain.sh (make retrain) while it serves, which must publish
// a second model version that the running server then serves.
func TestMakeRunAndRetrain(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatalf("make retrain needs curl: %v", err)
	}
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "serve-playground")
	build := exec.Command("go", "build", "-o", bin, "./serve/playground")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build serve-playground: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	data := t.TempDir()
	env := append(os.Environ(), "SETLIST_ADDR="+addr, "SETLIST_DATA_DIR="+data, "SETLIST_SERVE_BIN="+bin,
		"SETLIST_LOG_LEVEL=warn", "SETLIST_MODEL_POLL_INTERVAL=200ms", "ADDR=", "SETLIST_STORE=", "SETLIST_ADMIN_TOKEN=")

	var logs bytes.Buffer
	run := exec.Command("bash", filepath.Join(root, "scripts", "run.sh"))
	run.Env, run.Stdout, run.Stderr = env, &logs, &logs
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- run.Wait() }()
	t.Cleanup(func() {
		_ = run.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = run.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("make run's log:\n%s", logs.String())
		}
	})
	base := "http://" + addr
	deadline := time.Now().Add(90 * time.Second)
	for {
		if res, err := http.Get(base + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("make run exited before serving at SETLIST_ADDR=%s: %v\n%s", addr, err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("make run did not serve at SETLIST_ADDR=%s within 90s\n%s", addr, logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	var m struct {
		Version int64 `json:"version"`
	}
	getJSON(t, base+"/v1/model", &m)
	first := m.Version

	// Without the token the playground wrote, the admin endpoint refuses.
	res, err := http.Post(base+"/v1/admin/retrain", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("retrain without the admin token: %d, want 401", res.StatusCode)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	retrain := exec.CommandContext(ctx, "bash", filepath.Join(root, "scripts", "retrain.sh"))
	retrain.Env = append(env, "FORCE=1") // same data and seed: the gate may call it no better
	out, err := retrain.CombinedOutput()
	if err != nil {
		t.Fatalf("make retrain: %v\n%s", err, out)
	}
	t.Logf("make retrain:\n%s", out)
	if !strings.Contains(string(out), "published model version") {
		t.Errorf("make retrain says:\n%s\nwant the published version", out)
	}
	deadline = time.Now().Add(10 * time.Second)
	for getJSON(t, base+"/v1/model", &m); m.Version == first; getJSON(t, base+"/v1/model", &m) {
		if time.Now().After(deadline) {
			t.Fatalf("after make retrain the playground still serves version %d\n%s", first, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(string(out), "version "+strconv.FormatInt(m.Version, 10)) {
		t.Errorf("make retrain reported\n%s\nbut the playground serves version %d", out, m.Version)
	}
}
