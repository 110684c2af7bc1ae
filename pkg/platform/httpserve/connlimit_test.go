package httpserve

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestConnectionsCappedPerAddress holds connections open from one address
// up to the cap: the next is closed at once, and a place freed is reused.
func TestConnectionsCappedPerAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })}
	go func() { _ = srv.Serve(limitConns(ln, 10, 2)) }()
	defer srv.Close()

	get := func(c net.Conn) error {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := get(c); err != nil {
			t.Fatalf("a connection within the cap: %v", err)
		}
		held = append(held, c)
	}
	third, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	if err := get(third); err == nil {
		t.Fatal("a third connection from one address was served")
	}
	held[0].Close()
	time.Sleep(100 * time.Millisecond) // the server sees the close
	again, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if err := get(again); err != nil {
		t.Fatalf("a connection after one closed: %v", err)
	}
}

func TestPublicListenerHasShorterTimeouts(t *testing.T) {
	pub, pubLn := prepare(Listener{Public: true}, discard())
	internal, internalLn := prepare(Listener{}, discard())
	// A public listener's connections bound each write instead of the
	// server (TestPublicListenerBoundsSlowReaders).
	if pub.WriteTimeout != 0 || pubLn.writeTimeout <= 0 || pubLn.writeTimeout > internal.WriteTimeout || internalLn.writeTimeout != 0 {
		t.Errorf("write bounds: public server %v, connections %v; internal server %v, connections %v", pub.WriteTimeout, pubLn.writeTimeout, internal.WriteTimeout, internalLn.writeTimeout)
	}
	if pub.IdleTimeout >= internal.IdleTimeout || pub.ReadHeaderTimeout >= internal.ReadHeaderTimeout || pub.IdleTimeout > 30*time.Second {
		t.Errorf("public idle %v header %v; internal idle %v header %v", pub.IdleTimeout, pub.ReadHeaderTimeout, internal.IdleTimeout, internal.ReadHeaderTimeout)
	}
	if pub.MaxHeaderBytes != 64<<10 || internal.MaxHeaderBytes != 64<<10 {
		t.Errorf("MaxHeaderBytes %d and %d", pub.MaxHeaderBytes, internal.MaxHeaderBytes)
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// servePublic serves h as a public listener does, with its bounds changed
// by adjust, and returns its address.
func servePublic(t *testing.T, h http.Handler, adjust func(*http.Server, *limitListener)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, limited := prepare(Listener{Net: ln, Handler: h, Public: true}, discard())
	adjust(srv, limited)
	go func() { _ = srv.Serve(limited) }()
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// writeBound sets the public listener's write bound.
func writeBound(d time.Duration) func(*http.Server, *limitListener) {
	return func(_ *http.Server, l *limitListener) { l.writeTimeout = d }
}

// TestPublicListenerBoundsSlowReaders: a client that never reads its
// response holds the connection no longer than the write bound.
func TestPublicListenerBoundsSlowReaders(t *testing.T) {
	failed := make(chan error, 1)
	addr := servePublic(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 1<<16)
		for range 1 << 12 { // 256 MiB, beyond any socket buffer
			if _, err := w.Write(chunk); err != nil {
				failed <- err
				return
			}
		}
		failed <- nil
	}), writeBound(200*time.Millisecond))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	cutOff(t, failed, "writing 256 MiB to a client that reads nothing")
}

// cutOff fails unless a handler reports, within 20 s, that what it did
// failed: a bound cut it off.
func cutOff(t *testing.T, outcome <-chan error, what string) {
	t.Helper()
	select {
	case err := <-outcome:
		if err == nil {
			t.Errorf("%s: it was not cut off", what)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: the handler never returned", what)
	}
}

// TestPublicListenerWritesAfterIdlingPastTheBound: the write deadline a
// connection set once does not fail a later response on it, after an idle
// time longer than the bound or after many quick requests.
func TestPublicListenerWritesAfterIdlingPastTheBound(t *testing.T) {
	const bound = 100 * time.Millisecond
	addr := servePublic(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }), writeBound(bound))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	get := func() error {
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return err
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err == nil && string(body) != "ok" {
			err = fmt.Errorf("body %q", body)
		}
		return err
	}
	for i := range 3 {
		if err := get(); err != nil {
			t.Fatalf("request %d after idling %v: %v", i, bound*3/2, err)
		}
		time.Sleep(bound * 3 / 2)
	}
	for start := time.Now(); time.Since(start) < 3*bound; {
		if err := get(); err != nil {
			t.Fatalf("a quick request %v into the connection: %v", time.Since(start), err)
		}
	}
}

// TestPublicListenerBoundsSlowRequests: on a keep-alive connection of a
// public listener, whose deadlines are set more lazily than net/http's,
// a request whose header or body trickles in is still cut off.
func TestPublicListenerBoundsSlowRequests(t *testing.T) {
	bodies := make(chan error, 1)
	addr := servePublic(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			_, err := io.ReadAll(r.Body)
			bodies <- err
		}
		_, _ = io.WriteString(w, "ok")
	}), func(srv *http.Server, _ *limitListener) {
		srv.ReadHeaderTimeout, srv.ReadTimeout = 300*time.Millisecond, 300*time.Millisecond
	})
	// open returns a connection that has had one request answered.
	open := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1024)
		if n, err := c.Read(buf); err != nil || !strings.Contains(string(buf[:n]), "ok") {
			t.Fatalf("the first request: %q %v", buf[:n], err)
		}
		return c
	}

	header := open()
	if _, err := io.WriteString(header, "GET / HTTP/1.1\r\nHo"); err != nil {
		t.Fatal(err)
	}
	// net/http answers 400 to a header cut off, and closes the connection.
	if got, err := io.ReadAll(header); err != nil || !strings.HasPrefix(string(got), "HTTP/1.1 400 ") {
		t.Errorf("a header that never ends: %q, %v", got, err)
	}

	body := open()
	if _, err := io.WriteString(body, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	go func() {
		for range 40 { // 4 s in all
			if _, err := body.Write([]byte{'a'}); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	cutOff(t, bodies, "reading a body trickling in for longer than ReadTimeout")
}
