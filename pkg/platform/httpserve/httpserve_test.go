package httpserve

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a log sink safe for the listeners' goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// shutdownRun serves a handler that holds every request until release is
// closed, starts one request, ends the serve context, and returns the
// request's outcome, serve's result and the logs.
func shutdownRun(t *testing.T, grace time.Duration, release <-chan struct{}) (status int, logs string, serveErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	entered := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		_, _ = io.WriteString(w, "done")
	})
	var buf syncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- serveWithin(ctx, logger, grace, Listener{Name: "test", Net: ln, Handler: h}) }()
	got := make(chan int, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String())
		if err != nil {
			got <- 0
			return
		}
		resp.Body.Close()
		got <- resp.StatusCode
	}()
	<-entered
	cancel()
	select {
	case serveErr = <-served:
	case <-time.After(grace + 20*time.Second):
		t.Fatal("serve did not return")
	}
	return <-got, buf.String(), serveErr
}

// TestShutdownWaitsForRequestsInFlight: the request in flight is answered
// before serve returns, and the logs say what the shutdown waited for.
func TestShutdownWaitsForRequestsInFlight(t *testing.T) {
	release := make(chan struct{})
	time.AfterFunc(200*time.Millisecond, func() { close(release) })
	status, logs, err := shutdownRun(t, time.Minute, release)
	if status != 200 || err != nil {
		t.Fatalf("the request in flight: %d; serve: %v", status, err)
	}
	for _, want := range []string{"shutting down: no new connections; waiting for the requests in flight", "listener=test", "in_flight=1", "stopped: every request in flight answered"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the logs lack %q:\n%s", want, logs)
		}
	}
}

// TestShutdownIsBounded: a request that never ends is cut off at the bound.
func TestShutdownIsBounded(t *testing.T) {
	never := make(chan struct{})
	defer close(never)
	status, logs, _ := shutdownRun(t, 300*time.Millisecond, never)
	if status == 200 {
		t.Fatal("a request that never ends was answered")
	}
	if !strings.Contains(logs, "shutdown bound reached: closing the connections still open") || !strings.Contains(logs, "in_flight=1") {
		t.Errorf("the logs do not say the bound was reached:\n%s", logs)
	}
}

// TestShutdownCountsOnlyRequestsInFlight: requests answered before the
// shutdown, on connections kept alive or closed after them, are not
// counted as in flight.
func TestShutdownCountsOnlyRequestsInFlight(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var buf syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- serveWithin(ctx, slog.New(slog.NewTextHandler(&buf, nil)), time.Minute, Listener{Name: "test", Net: ln,
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })})
	}()
	for _, close := range []bool{false, true, true} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+ln.Addr().String(), nil)
		req.Close = close // Connection: close, so the server closes the connection after the response
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	time.Sleep(100 * time.Millisecond) // the server sees the closes
	cancel()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if logs := buf.String(); !strings.Contains(logs, "in_flight=0") {
		t.Errorf("requests answered before the shutdown were counted as in flight:\n%s", logs)
	}
}
