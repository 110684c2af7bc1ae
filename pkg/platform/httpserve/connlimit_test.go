package httpserve

import (
	"bufio"
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
	pub, internal := newServer(nil, nil, true, discard()), newServer(nil, nil, false, discard())
	if pub.IdleTimeout >= internal.IdleTimeout || pub.ReadHeaderTimeout >= internal.ReadHeaderTimeout || pub.IdleTimeout > 30*time.Second {
		t.Errorf("public idle %v header %v; internal idle %v header %v", pub.IdleTimeout, pub.ReadHeaderTimeout, internal.IdleTimeout, internal.ReadHeaderTimeout)
	}
	if pub.MaxHeaderBytes != 64<<10 || internal.MaxHeaderBytes != 64<<10 {
		t.Errorf("MaxHeaderBytes %d and %d", pub.MaxHeaderBytes, internal.MaxHeaderBytes)
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
