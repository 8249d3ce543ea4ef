package server

import (
	"io"
	"net"
	"sync/atomic"
	"time"
)

// Lingering close of a connection answered 413 (issue 24 item 13). serve
// refuses a body over its limit from the Content-Length alone, without
// reading it, and then closes the connection. Closing a socket whose
// receive queue still holds unread bytes (the body, arriving) makes the
// kernel answer with a reset instead of a FIN; a client still uploading
// then fails its write with "connection reset by peer" and, like curl,
// often reports that and no status at all (2 of 80 uploads in the attack
// pass). So a connection that answered 413 closes the way HTTP servers
// linger (nginx's lingering_close): shut down the write side (the 413 is
// already flushed: the FIN follows it), read and discard what the client
// still sends, at most lingerBytes for at most lingerTime, and only then
// close. The bounds keep a client from holding the connection open or
// making serve read without end; past them it gets the reset as before.
const (
	lingerBytes = 8 << 20
	lingerTime  = 5 * time.Second
)

// lingerListener wraps every accepted connection in a lingerConn.
type lingerListener struct{ net.Listener }

func lingerConns(ln net.Listener) net.Listener { return lingerListener{ln} }

func (l lingerListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &lingerConn{Conn: c}, nil
}

// lingerConn closes lingering once LingerOnClose was called.
type lingerConn struct {
	net.Conn
	linger atomic.Bool
}

// LingerOnClose asks the coming Close to linger: the API's error handler
// calls it (through an interface: fasthttp hands it this connection) when
// it answers 413.
func (c *lingerConn) LingerOnClose() { c.linger.Store(true) }

func (c *lingerConn) Close() error {
	if !c.linger.Load() {
		return c.Conn.Close()
	}
	cw, ok := tcpOf(c.Conn).(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return c.Conn.Close()
	}
	// Off the server's worker: the drain may take up to lingerTime.
	go func() {
		_ = c.Conn.SetReadDeadline(time.Now().Add(lingerTime))
		_, _ = io.CopyN(io.Discard, c.Conn, lingerBytes)
		_ = c.Conn.Close()
	}()
	return nil
}

// tcpOf unwraps the listener wrappers (countedConn) to the socket.
func tcpOf(c net.Conn) net.Conn {
	for {
		w, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return c
		}
		c = w.NetConn()
	}
}
