// Package devgw starts development gateways for tests and examples: every
// part of the gateway in process, on free loopback ports.
package devgw

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/gateway"
)

// Gateway is a running development gateway.
type Gateway struct {
	Dev    *gateway.Dev
	Info   gateway.DevInfo
	Client *http.Client // trusts the gateway's CA
	cancel context.CancelFunc
	done   chan error
}

// New runs a development gateway on dataDir until Close. Each edit adjusts
// the options before the start.
func New(dataDir string, edits ...func(*gateway.DevOptions)) (*Gateway, error) {
	ctx, cancel := context.WithCancel(context.Background())
	opts := gateway.DevOptions{DataDir: dataDir, EntraAddr: "127.0.0.1:0", OIDCAddr: "127.0.0.1:0"}
	for _, edit := range edits {
		edit(&opts)
	}
	d, err := gateway.NewDev(ctx, opts)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("start development gateway: %w", err)
	}
	g := &Gateway{Dev: d, Info: d.Info, cancel: cancel, done: make(chan error, 1)}
	go func() { g.done <- d.Run(ctx) }()
	pem, err := os.ReadFile(d.Info.CAFile)
	if err != nil {
		g.Close()
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		g.Close()
		return nil, fmt.Errorf("%s holds no certificate", d.Info.CAFile)
	}
	g.Client = &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	return g, nil
}

// Close stops the gateway and returns what its Run returned.
func (g *Gateway) Close() error {
	g.cancel()
	return <-g.done
}

// Run runs a development gateway on a temporary directory until the test
// ends.
func Run(t testing.TB, edits ...func(*gateway.DevOptions)) *Gateway {
	t.Helper()
	g, err := New(t.TempDir(), edits...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := g.Close(); err != nil {
			t.Errorf("development gateway stopped with: %v", err)
		}
	})
	return g
}

// Start is Run for tests that need only the gateway's information and an
// HTTP client that trusts its CA.
func Start(t testing.TB, edits ...func(*gateway.DevOptions)) (gateway.DevInfo, *http.Client) {
	t.Helper()
	g := Run(t, edits...)
	return g.Info, g.Client
}
