package discovery_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/httpserve"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/metrics"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/procbench"
)

// BenchmarkServeKeys is the handler alone: routing, the host check and the
// prepared response, without a network.
func BenchmarkServeKeys(b *testing.B) {
	for _, tc := range []struct {
		name   string
		header http.Header
	}{
		{"plain", nil},
		{"gzip", http.Header{"Accept-Encoding": {"gzip"}}},
		{"not-modified", nil},
	} {
		b.Run(tc.name, func(b *testing.B) {
			src := newSource()
			f := &fixture{src: src}
			var err error
			if f.issuer, err = newIssuer(src); err != nil {
				b.Fatal(err)
			}
			if f.handler, err = newHandler(f.issuer); err != nil {
				b.Fatal(err)
			}
			src.publish(newRSA(b, "a", 2048).jwk, newRSA(b, "b", 2048).jwk)
			f.issuer.Run(canceled())
			req := httptest.NewRequest(http.MethodGet, "https://oidc.example.org/keys", nil)
			for k, v := range tc.header {
				req.Header[k] = v
			}
			if tc.name == "not-modified" {
				rec := httptest.NewRecorder()
				f.handler.ServeHTTP(rec, req)
				req.Header.Set("If-None-Match", rec.Header().Get("ETag"))
			}
			w := &discardWriter{header: http.Header{}}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				clear(w.header)
				f.handler.ServeHTTP(w, req)
			}
		})
	}
}

type discardWriter struct{ header http.Header }

func (w *discardWriter) Header() http.Header         { return w.header }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkProvider serves both documents through the gateway's chain
// (metrics.Instrument over the handler, as pkg/gateway builds it) beside
// procbench's bare handler writing the same bytes with the same headers:
// level=handler calls the handlers alone, level=server serves them
// in-process through net/http (the gateway on httpserve's public listener,
// the bare handler on procbench's bare server), so that allocs/op and the
// process's CPU time per request hold everything a server does per request
// but the system calls; level=tcp serves them so over loopback TCP to
// in-process clients (loopbackLoad), deadlines and system calls included.
func BenchmarkProvider(b *testing.B) {
	f := &fixture{src: newSource()}
	var err error
	if f.issuer, err = newIssuer(f.src); err != nil {
		b.Fatal(err)
	}
	if f.handler, err = newHandler(f.issuer); err != nil {
		b.Fatal(err)
	}
	f.src.publish(newRSA(b, "a", 2048).jwk, newRSA(b, "b", 2048).jwk)
	f.issuer.Run(canceled())
	chain := metrics.New().Instrument("oidc", f.handler.Route, f.handler)
	var docs []procbench.Document
	for _, path := range []string{"/keys", discoveryPath} {
		rec := httptest.NewRecorder()
		chain.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "https://oidc.example.org"+path, nil))
		docs = append(docs, procbench.Document{Path: path, Header: rec.Header(), Body: rec.Body.Bytes()})
	}
	bare := procbench.Bare(docs...)
	// servers serve l until stop is closed.
	servers := map[string]func(l net.Listener, stop <-chan struct{}){
		"gateway": func(l net.Listener, stop <-chan struct{}) {
			ctx, cancel := context.WithCancel(context.Background())
			go func() { <-stop; cancel() }()
			_ = httpserve.Serve(ctx, slog.New(slog.DiscardHandler), httpserve.Listener{Name: "oidc", Net: l, Handler: chain, Public: true})
		},
		"bare": func(l net.Listener, stop <-chan struct{}) {
			srv := procbench.NewServer(bare)
			go func() { <-stop; _ = srv.Close() }()
			_ = srv.Serve(l)
		},
	}
	handlers := map[string]http.Handler{"gateway": chain, "bare": bare}
	for _, doc := range []string{"keys", "discovery"} {
		path := map[string]string{"keys": "/keys", "discovery": discoveryPath}[doc]
		for _, name := range []string{"gateway", "bare"} {
			b.Run("doc="+doc+"/server="+name+"/level=handler", func(b *testing.B) {
				req := httptest.NewRequest(http.MethodGet, "https://oidc.example.org"+path, nil)
				w := &discardWriter{header: http.Header{}}
				b.ReportAllocs()
				for range b.N {
					clear(w.header)
					handlers[name].ServeHTTP(w, req)
				}
			})
			b.Run("doc="+doc+"/server="+name+"/level=server", func(b *testing.B) {
				c := &replayConn{req: []byte("GET " + path + " HTTP/1.1\r\nHost: oidc.example.org\r\nUser-Agent: Go-http-client/1.1\r\n\r\n"),
					left: b.N, answered: true, closed: make(chan struct{})}
				c.cond.L = &c.mu
				b.ReportAllocs()
				cpu := processCPU(b)
				b.ResetTimer()
				servers[name](&oneConn{conn: c, done: make(chan struct{})}, c.closed)
				b.StopTimer()
				// The machine's cores are shared: the process's own CPU time
				// per request holds better than the wall clock's ns/op.
				b.ReportMetric(float64(processCPU(b)-cpu)/float64(b.N), "cpu-ns/op")
				if !bytes.HasPrefix(c.first, []byte("HTTP/1.1 200 OK\r\n")) {
					b.Fatalf("the first response:\n%s", c.first)
				}
			})
			b.Run("doc="+doc+"/server="+name+"/level=tcp", func(b *testing.B) {
				loopbackLoad(b, servers[name], "GET "+path+" HTTP/1.1\r\nHost: oidc.example.org\r\nUser-Agent: Go-http-client/1.1\r\n\r\n")
			})
		}
	}
}

// processCPU is the user and system time the process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// oneConn is a listener that accepts conn once.
type oneConn struct {
	conn     *replayConn
	accepted bool
	done     chan struct{}
	once     sync.Once
}

func (l *oneConn) Accept() (net.Conn, error) {
	if !l.accepted {
		l.accepted = true
		return l.conn, nil
	}
	<-l.done
	return nil, net.ErrClosed
}

func (l *oneConn) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *oneConn) Addr() net.Addr { return l.conn.LocalAddr() }

// replayConn sends req left times, each once the previous response has been
// written, as a keep-alive client with one request in flight does. A
// one-byte read (net/http's background read while a handler runs) waits,
// as on a socket, until a read deadline in the past ends it.
type replayConn struct {
	req    []byte
	mu     sync.Mutex
	cond   sync.Cond
	left   int
	unread []byte // of the request being read
	// answered: a response was written since the last request was sent.
	answered, pastDeadline bool
	first                  []byte // the first response
	closed                 chan struct{}
	closeOnce              sync.Once
}

func (c *replayConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for !c.pastDeadline && len(c.unread) == 0 && (len(p) == 1 || !c.answered) {
		c.cond.Wait()
	}
	switch {
	case c.pastDeadline:
		return 0, os.ErrDeadlineExceeded
	case len(c.unread) == 0 && c.left == 0:
		return 0, io.EOF
	case len(c.unread) == 0:
		c.left--
		c.unread, c.answered = c.req, false
	}
	n := copy(p, c.unread)
	c.unread = c.unread[n:]
	return n, nil
}

func (c *replayConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.first == nil {
		c.first = bytes.Clone(p)
	}
	c.answered = true
	c.cond.Broadcast()
	return len(p), nil
}

func (c *replayConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pastDeadline = !t.IsZero() && !t.After(time.Now())
	c.cond.Broadcast()
	return nil
}

func (c *replayConn) Close() error                     { c.closeOnce.Do(func() { close(c.closed) }); return nil }
func (c *replayConn) SetDeadline(t time.Time) error    { return c.SetReadDeadline(t) }
func (c *replayConn) SetWriteDeadline(time.Time) error { return nil }
func (c *replayConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 443} }
func (c *replayConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000}
}
