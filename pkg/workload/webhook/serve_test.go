package webhook

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/dev/devcert"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/loopback"
)

// serveConfig is a webhook configuration on loopback with certificate
// files and a kubeconfig naming an API server nobody calls in these tests.
func serveConfig(t *testing.T, listen, health string) Config {
	t.Helper()
	dir := t.TempDir()
	paths, _, err := devcert.Ensure(filepath.Join(dir, "tls"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(writeConfig(t, fmt.Sprintf(`namespace: spire-system
listenAddr: %q
healthAddr: %q
kubeconfig: %q
tls: {certFile: %q, keyFile: %q}
injection: {sidecar: {image: example.org/seg:1}}
`, listen, health, kubeconfig, paths.Cert, paths.Key)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestServeHasTheListenersBounds: the webhook's listeners are served with
// the bounds every listener shares (a 64 KiB header limit among them) and
// stop cleanly when the context ends.
func TestServeHasTheListenersBounds(t *testing.T) {
	addrs := loopback.Addrs(t, 2)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, serveConfig(t, addrs[0], addrs[1]), slog.New(slog.DiscardHandler)) }()
	var resp *http.Response
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var err error
		if resp, err = http.Get("http://" + addrs[1] + "/livez"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the health listener never answered: %v", err)
		}
	}
	req, _ := http.NewRequest("GET", "http://"+addrs[1]+"/livez", nil)
	req.Header.Set("X-Large", strings.Repeat("a", 100<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("a 100 KiB header: %d, want 431", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve after the context ended: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not return after the context ended")
	}
}

// TestServeLeavesNothingBoundWhenAnAddressIsTaken: a taken health address
// fails Serve and releases the admission address it had bound.
func TestServeLeavesNothingBoundWhenAnAddressIsTaken(t *testing.T) {
	addrs := loopback.Addrs(t, 2)
	taken, err := net.Listen("tcp", addrs[1])
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	if err := Serve(context.Background(), serveConfig(t, addrs[0], addrs[1]), slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("Serve on a taken health address succeeded")
	}
	l, err := net.Listen("tcp", addrs[0])
	if err != nil {
		t.Fatalf("the admission address is still bound: %v", err)
	}
	l.Close()
}
