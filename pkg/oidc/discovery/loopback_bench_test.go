package discovery_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
)

// loopbackConns is how many keep-alive connections loopbackLoad holds, each
// with one request in flight: more than the two cores, so that the server's
// goroutines run on both at once, as under load.
const loopbackConns = 8

// loopbackLoad serves req b.N times with serve, on a loopback listener, to
// clients in the benchmark process that read each response as bytes of the
// length the first one had (its Date is of fixed width), and reports the
// process's CPU time per request: the clients' share is the same for every
// server.
func loopbackLoad(b *testing.B, serve func(net.Listener, <-chan struct{}), req string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	stop, served := make(chan struct{}), make(chan struct{})
	go func() { defer close(served); serve(ln, stop) }()
	defer func() { close(stop); <-served }()

	conns := make([]net.Conn, loopbackConns)
	for i := range conns {
		if conns[i], err = net.Dial("tcp", ln.Addr().String()); err != nil {
			b.Fatal(err)
		}
		defer conns[i].Close()
	}
	// The response's length, from one request.
	if _, err := io.WriteString(conns[0], req); err != nil {
		b.Fatal(err)
	}
	var raw countingReader
	raw.r = conns[0]
	resp, err := http.ReadResponse(bufio.NewReaderSize(&raw, 1), nil)
	if err != nil {
		b.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || len(body) == 0 {
		b.Fatalf("status %d, %d bytes", resp.StatusCode, len(body))
	}
	size := raw.n

	var left atomic.Int64
	left.Store(int64(b.N))
	var wg sync.WaitGroup
	failed := make(chan error, len(conns))
	b.ReportAllocs()
	cpu := processCPU(b)
	b.ResetTimer()
	for _, c := range conns {
		wg.Go(func() {
			buf := make([]byte, size)
			for left.Add(-1) >= 0 {
				if _, err := io.WriteString(c, req); err != nil {
					failed <- err
					return
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					failed <- err
					return
				}
				if !bytes.HasPrefix(buf, []byte("HTTP/1.1 200 OK\r\n")) {
					failed <- io.ErrUnexpectedEOF
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(processCPU(b)-cpu)/float64(b.N), "cpu-ns/op")
	close(failed)
	for err := range failed {
		b.Fatal(err)
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}
