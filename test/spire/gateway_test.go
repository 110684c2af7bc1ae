package spire_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/spire"
)

// gateway is a `serve --config` process.
type gateway struct {
	proc   *spire.Process
	addrs  map[string]string
	health string
}

func startGateway(t testing.TB, dir, config string, listeners int) *gateway {
	t.Helper()
	return startGatewayEnv(t, gatewayBin, dir, nil, config, listeners)
}

// startGatewayEnv starts the gateway bin with env added to its environment
// and waits for its listeners.
func startGatewayEnv(t testing.TB, bin, dir string, env []string, config string, listeners int) *gateway {
	t.Helper()
	path := filepath.Join(dir, fmt.Sprintf("gateway-%d.yaml", time.Now().UnixNano()))
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	g := &gateway{proc: spire.StartEnv(t, dir, env, bin, "serve", "--config", path), addrs: map[string]string{}}
	deadline := time.Now().Add(30 * time.Second)
	for len(g.addrs) < listeners {
		if time.Now().After(deadline) || g.proc.Exited() {
			t.Fatalf("the gateway did not start:\n%s", g.proc.Log())
		}
		sc := bufio.NewScanner(strings.NewReader(g.proc.Log()))
		for sc.Scan() {
			var line struct{ Msg, Listener, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				g.addrs[line.Listener] = line.Addr
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	g.health = "http://" + g.addrs["health"]
	return g
}

func eventually(t *testing.T, what string, within time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %v", within, what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func status(c *http.Client, url string) (int, string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// waitReady waits for the gateway's /readyz.
func waitReady(t *testing.T, gw *gateway) {
	t.Helper()
	eventually(t, "the gateway to be ready", 30*time.Second, func() error {
		if code, body, err := status(http.DefaultClient, gw.health+"/readyz"); err != nil || code != 200 {
			return fmt.Errorf("%d %w %s", code, err, body)
		}
		return nil
	})
}
