package server

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/setlist/setlist/serve/internal/api"
)

// limitListener caps the connections one client address holds open. Every
// connection costs a file descriptor until it closes (an idle keep-alive one
// up to --idle-timeout), so without a cap one client opening thousands of
// idle connections exhausts the process's file limit and slows everyone
// else. A connection over the cap is answered 429 and closed at once.
//
// Trusted proxies are exempt: every client behind the ingress arrives from
// its few addresses, and capping those would cap everyone together (the
// ingress bounds its own upstream connections).
type limitListener struct {
	net.Listener
	max     int
	trusted []netip.Prefix

	mu    sync.Mutex
	conns map[netip.Addr]int
}

// refusal is written to a connection over the cap: a complete HTTP answer,
// so a client sees why instead of a reset.
var refusal = func() []byte {
	body := `{"error":"too many requests","detail":"too many open connections from this client; close some first"}`
	return []byte(fmt.Sprintf("HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nConnection: close\r\n"+
		"X-Content-Type-Options: nosniff\r\nRetry-After: 1\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
}()

func limitConns(ln net.Listener, maxPerClient int, trusted []netip.Prefix) net.Listener {
	if maxPerClient <= 0 {
		return ln
	}
	return &limitListener{Listener: ln, max: maxPerClient, trusted: trusted, conns: make(map[netip.Addr]int)}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr := remoteAddr(c)
		if !addr.IsValid() || api.Trusted(l.trusted, addr) {
			return c, nil
		}
		l.mu.Lock()
		n := l.conns[addr]
		if n < l.max {
			l.conns[addr] = n + 1
		}
		l.mu.Unlock()
		if n < l.max {
			return &countedConn{Conn: c, release: func() { l.release(addr) }}, nil
		}
		// Refused off the accept loop: a slow reader must not stall it.
		go func() {
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = c.Write(refusal)
			_ = c.Close()
		}()
	}
}

func (l *limitListener) release(addr netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conns[addr]--; l.conns[addr] <= 0 {
		delete(l.conns, addr)
	}
}

func remoteAddr(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		a, _ := netip.AddrFromSlice(ta.IP)
		return a.Unmap()
	}
	return netip.Addr{}
}

// countedConn gives its slot back once, on the first Close.
type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

// NetConn is the wrapped connection (for a lingering close's CloseWrite).
func (c *countedConn) NetConn() net.Conn { return c.Conn }

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
