package server_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"
)

// TestOversizedBodyAlways413 (issue 24 item 13): a client that sends a
// whole body over the limit and only then reads (as curl does for an
// upload, and any simple client) always gets the 413. serve refuses such a
// body from its Content-Length without reading it; closing the connection
// with the body still arriving made the kernel answer with a reset, which
// could destroy the 413 before the client read it (2 of 80 curl uploads
// saw a reset and no status). 80 uploads, 8 at a time, of 1.5 and 64 times
// the limit (4 MiB: more than the sockets' buffers hold, so the server's
// close finds it unread).
func TestOversizedBodyAlways413(t *testing.T) {
	e := newEnv(t)
	in := e.start(t, fastConfig(), nil)
	u, err := url.Parse(in.base)
	if err != nil {
		t.Fatal(err)
	}
	const limit = 64 << 10
	upload := func(size int) (int, error) {
		conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
		if err != nil {
			return 0, err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
		var req bytes.Buffer
		fmt.Fprintf(&req, "POST /v1/users HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", u.Host, size)
		req.Write(bytes.Repeat([]byte(" "), size))
		// A reset while writing is a failure: curl reports it ("Send
		// failure: Connection reset by peer") and no status.
		if _, err := conn.Write(req.Bytes()); err != nil {
			return 0, fmt.Errorf("write the body: %w", err)
		}
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			return 0, fmt.Errorf("read the answer: %w", err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode, nil
	}
	var (
		mu       sync.Mutex
		failures []string
		wg       sync.WaitGroup
		sem      = make(chan struct{}, 8)
	)
	for i := range 80 {
		size := limit * 3 / 2
		if i%2 == 1 {
			size = 64 * limit
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			code, err := upload(size)
			if err != nil || code != http.StatusRequestEntityTooLarge {
				mu.Lock()
				failures = append(failures, fmt.Sprintf("%d bytes: status %d, %v", size, code, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Errorf("%d of 80 oversized uploads got no 413, e.g. %v", len(failures), failures[:min(3, len(failures))])
	}
}
