package httpserve

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
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

// servePublic serves h as a public listener does, with writes bounded by
// writeTimeout, and returns its address.
func servePublic(t *testing.T, writeTimeout time.Duration, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	limited := limitConns(ln, 10, 10)
	limited.writeTimeout = writeTimeout
	srv := newServer(h, nil, true, discard())
	go func() { _ = srv.Serve(limited) }()
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// TestPublicListenerBoundsSlowReaders: a client that never reads its
// response holds the connection no longer than the write bound.
func TestPublicListenerBoundsSlowReaders(t *testing.T) {
	failed := make(chan error, 1)
	addr := servePublic(t, 200*time.Millisecond, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 1<<16)
		for range 1 << 12 { // 256 MiB, beyond any socket buffer
			if _, err := w.Write(chunk); err != nil {
				failed <- err
				return
			}
		}
		failed <- nil
	}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-failed:
		if err == nil {
			t.Fatal("256 MiB were written to a client that reads nothing")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a write to a client that reads nothing was not cut off")
	}
}

// TestPublicListenerWritesAfterIdlingPastTheBound: the write deadline a
// connection set once does not fail a later response on it, after an idle
// time longer than the bound or after many quick requests.
func TestPublicListenerWritesAfterIdlingPastTheBound(t *testing.T) {
	const bound = 100 * time.Millisecond
	addr := servePublic(t, bound, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
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
