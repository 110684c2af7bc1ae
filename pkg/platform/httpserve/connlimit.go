package httpserve

import (
	"net"
	"sync"
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

	mu     sync.Mutex
	total  int
	byAddr map[string]int
}

func limitConns(l net.Listener, max, perAddr int) *limitListener {
	return &limitListener{Listener: l, max: max, perAddr: perAddr, byAddr: map[string]int{}}
}

// Accept returns the next connection within the caps.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr := hostOf(c.RemoteAddr())
		l.mu.Lock()
		ok := l.total < l.max && l.byAddr[addr] < l.perAddr
		if ok {
			l.total++
			l.byAddr[addr]++
		}
		l.mu.Unlock()
		if !ok {
			_ = c.Close()
			continue
		}
		return &limitedConn{Conn: c, release: sync.OnceFunc(func() { l.release(addr) })}, nil
	}
}

func (l *limitListener) release(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.byAddr[addr]--; l.byAddr[addr] <= 0 {
		delete(l.byAddr, addr)
	}
}

func hostOf(a net.Addr) string {
	if tcp, ok := a.(*net.TCPAddr); ok {
		return tcp.IP.String()
	}
	return a.String()
}

// limitedConn gives its place back once, when closed.
type limitedConn struct {
	net.Conn
	release func()
}

func (c *limitedConn) Close() error {
	c.release()
	return c.Conn.Close()
}
