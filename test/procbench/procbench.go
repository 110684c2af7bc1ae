// Package procbench loads servers that run as processes of their own and
// reports each one's CPU time per request beside the client's view: the
// benchmarks that compare the gateway with a bare or signing-only handler
// (test/spire for discovery, test/e2e for the token endpoint) share it.
package procbench

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/latency"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/spire"
)

// StartPrinting starts name, a process that prints "PREFIX VALUE" first,
// and returns VALUE (for a server, its address).
func StartPrinting(b testing.TB, dir, prefix, name string, env []string, args ...string) (string, *spire.Process) {
	b.Helper()
	p := spire.StartEnv(b, dir, env, name, args...)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) && !p.Exited() {
		sc := bufio.NewScanner(strings.NewReader(p.Log()))
		for sc.Scan() {
			if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), prefix+" "); ok {
				return strings.TrimSpace(v), p
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.Fatalf("%s did not start:\n%s", name, p.Log())
	return "", nil
}

// Measure runs op b.N times from conns goroutines (latency's p50 and p99
// beside ns/op and req/s) and reports the server's own CPU time per
// request, read from /proc before and after: the client shares the
// machine's cores, and this compares servers without it. With a profile
// (ProfileOf), the same load then goes on, unmeasured, while the server
// is profiled: no run's figures pay for the profiler.
func Measure(b *testing.B, server *spire.Process, conns int, op func(), profile Profile) {
	b.Helper()
	cpu := server.CPUTime()
	latency.MeasureConcurrent(b, conns, op)
	b.ReportMetric(float64((server.CPUTime()-cpu).Microseconds())/float64(b.N), "server-cpu-µs/req")
	if profile.To != "" && b.N > 1 {
		profile.take(b, conns, op)
	}
}

// Serve serves h on a free loopback port, over TLS when certFile is set,
// after printing "listening ADDR" for StartPrinting. A test binary run as
// a server process calls it; it returns the exit code once the server
// stops.
func Serve(h http.Handler, certFile, keyFile string) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("listening %s\n", l.Addr())
	srv := NewServer(h)
	if certFile != "" {
		err = srv.ServeTLS(l, certFile, keyFile)
	} else {
		err = srv.Serve(l)
	}
	fmt.Fprintln(os.Stderr, err)
	return 1
}

// NewServer is the bare net/http server: its defaults, with only a bound on
// reading the request header.
func NewServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
}

// Document is what the bare handler answers at one path: the gateway's
// bytes and the headers the gateway sends with them.
type Document struct {
	Path   string
	Header http.Header
	Body   []byte
}

// Bare is the bare handler of the discovery benchmarks: behind a ServeMux,
// it copies each document's headers into the response and writes its body,
// as any Go server serving a fixed document from memory would. Given the
// gateway's headers (Content-Type, Cache-Control, Last-Modified, ETag,
// Vary, Content-Length; net/http adds Date to both) it sends the same bytes
// as the gateway for a GET without validators, so the comparison is of the
// work per request, not of what is sent.
func Bare(docs ...Document) http.Handler {
	mux := http.NewServeMux()
	for _, d := range docs {
		mux.HandleFunc(d.Path, func(w http.ResponseWriter, _ *http.Request) {
			h := w.Header()
			for k, v := range d.Header {
				h[k] = v
			}
			_, _ = w.Write(d.Body)
		})
	}
	return mux
}
