package httpserve

import (
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Connection caps of every listener: in all, and from one address, so
// that one client cannot hold every file descriptor with idle connections.
// A proxy in front reaches the per-address cap first; 256 keep-alive
// connections per proxy instance are far more than a discovery provider
// or a token endpoint needs.
const (
	maxConns        = 4096
	maxConnsPerAddr = 256
)

// limitListener closes, as soon as they are accepted, connections beyond
// max in all or perAddr from one address.
type limitListener struct {
	net.Listener
	max, perAddr int
	// writeTimeout, when set, bounds every write on the listener's
	// connections in place of http.Server.WriteTimeout, and readSlack lets
	// a read deadline stand when asked to move it later by less (see
	// limitedConn).
	writeTimeout, readSlack time.Duration

	mu     sync.Mutex
	total  int
	byAddr map[string]int
	conns  map[*limitedConn]struct{} // open
}

func limitConns(l net.Listener, max, perAddr int) *limitListener {
	return &limitListener{Listener: l, max: max, perAddr: perAddr, byAddr: map[string]int{}, conns: map[*limitedConn]struct{}{}}
}

// Accept returns the next connection within the caps.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		lc := &limitedConn{Conn: c, l: l, addr: hostOf(c.RemoteAddr()), writeTimeout: l.writeTimeout, readSlack: l.readSlack}
		l.mu.Lock()
		ok := l.total < l.max && l.byAddr[lc.addr] < l.perAddr
		if ok {
			l.total++
			l.byAddr[lc.addr]++
			l.conns[lc] = struct{}{}
		}
		l.mu.Unlock()
		if !ok {
			_ = c.Close()
			continue
		}
		return lc, nil
	}
}

func (l *limitListener) release(c *limitedConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.byAddr[c.addr]--; l.byAddr[c.addr] <= 0 {
		delete(l.byAddr, c.addr)
	}
	delete(l.conns, c)
}

// inFlight is how many open connections have a request in flight.
func (l *limitListener) inFlight() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for c := range l.conns {
		if c.active.Load() {
			n++
		}
	}
	return n
}

// markActive is an http.Server's ConnState hook: it flags whether a request
// is in flight on each connection, for inFlight. A flag of the
// connection's own, rather than a counter of the listener's, which every
// request would write twice from both cores; and a connection closed after
// its response (never idle) is no longer counted once it is closed.
func markActive(nc net.Conn, st http.ConnState) {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	if c, ok := nc.(*limitedConn); ok {
		c.active.Store(st == http.StateActive)
	}
}

func hostOf(a net.Addr) string {
	if tcp, ok := a.(*net.TCPAddr); ok {
		return tcp.IP.String()
	}
	return a.String()
}

// limitedConn gives its place back once, when closed.
//
// With a writeTimeout it also owns its write deadline: net/http's
// WriteTimeout costs two deadline changes and three clock reads on every
// request (set after the request is read, cleared after the response),
// each deadline change a lock and a runtime timer's move. Here a write
// finds the deadline set within the last sixteenth of the bound and leaves
// it, or sets it again: every write may block for at least 15/16 of the
// bound and at most the bound, for the price of one monotonic clock read,
// and the deadline moves about once per sixteenth of the bound per
// connection. The write deadlines net/http, crypto/tls and handlers (through
// http.ResponseController) set are ignored.
//
// With a readSlack it leaves its read deadline in place when asked to move
// it later by less than readSlack, or to set it again: net/http sets the
// header's deadline when a request's first bytes arrive and, microseconds
// later, the whole request's, the same when the two bounds are (as on a
// public listener), and clears a cleared deadline. A request is then bound
// at most readSlack more tightly than asked, and each request spares a
// deadline change.
type limitedConn struct {
	net.Conn
	l        *limitListener
	addr     string
	released atomic.Bool
	active   atomic.Bool // a request is in flight (markActive)

	writeTimeout time.Duration
	armed        atomic.Int64 // when the write deadline was set, as time.Since(epoch); 0: never

	readSlack    time.Duration
	readDeadline atomic.Int64 // the read deadline set, in Unix nanoseconds; 0: none
}

func (c *limitedConn) Close() error {
	if c.released.CompareAndSwap(false, true) {
		c.l.release(c)
	}
	return c.Conn.Close()
}

// epoch is what write deadlines are measured from: time.Since(epoch) reads
// the monotonic clock alone.
var epoch = time.Now()

func (c *limitedConn) Write(p []byte) (int, error) {
	if c.writeTimeout > 0 {
		now := time.Since(epoch)
		if armed := c.armed.Load(); armed == 0 || now-time.Duration(armed) > c.writeTimeout/16 {
			if err := c.Conn.SetWriteDeadline(epoch.Add(now + c.writeTimeout)); err != nil {
				return 0, err
			}
			c.armed.Store(int64(now))
		}
	}
	return c.Conn.Write(p)
}

func (c *limitedConn) SetWriteDeadline(t time.Time) error {
	if c.writeTimeout > 0 {
		return nil
	}
	return c.Conn.SetWriteDeadline(t)
}

func (c *limitedConn) SetDeadline(t time.Time) error {
	if c.writeTimeout > 0 {
		return c.SetReadDeadline(t)
	}
	return c.Conn.SetDeadline(t)
}

func (c *limitedConn) SetReadDeadline(t time.Time) error {
	if c.readSlack == 0 {
		return c.Conn.SetReadDeadline(t)
	}
	var next int64
	if !t.IsZero() {
		next = t.UnixNano()
	}
	if cur := c.readDeadline.Load(); next == cur || cur != 0 && next > cur && next-cur < int64(c.readSlack) {
		return nil
	}
	if err := c.Conn.SetReadDeadline(t); err != nil {
		return err
	}
	c.readDeadline.Store(next)
	return nil
}
