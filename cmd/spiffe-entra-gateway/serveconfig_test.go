package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/dev/devcert"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/dev/devworkload"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/loopback"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/workloadapitest"
)

// configRun is one `serve --config` process.
type configRun struct {
	addrs map[string]string // listener name → address, from the "listening" log lines
	mu    sync.Mutex
	log   strings.Builder
}

func (r *configRun) logs() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.log.String()
}

// testKEK is a key-encryption key for the gateways the tests start.
const testKEK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

// startConfig runs `serve --config path` until it logs every listener in
// want, and stops it with SIGINT when the test ends, checking it exits 0.
func startConfig(t *testing.T, path string, env []string, want ...string) *configRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := command(ctx, "serve", "--config", path)
	cmd.Env = append(cmd.Env, env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &configRun{addrs: map[string]string{}}
	listening := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			r.mu.Lock()
			r.log.WriteString(sc.Text() + "\n")
			r.mu.Unlock()
			var line struct{ Msg, Listener, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				r.mu.Lock()
				r.addrs[line.Listener] = line.Addr
				n := len(r.addrs)
				r.mu.Unlock()
				if n == len(want) {
					close(listening)
				}
			}
		}
	}()
	t.Cleanup(func() {
		defer cancel()
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			t.Errorf("serve --config: %v", err)
		}
		if err := cmd.Wait(); err != nil {
			t.Errorf("serve --config did not stop cleanly on SIGINT: %v\n%s", err, r.logs())
		}
	})
	select {
	case <-listening:
	case <-time.After(30 * time.Second):
		t.Fatalf("serve --config did not start its listeners %v:\n%s", want, r.logs())
	}
	return r
}

func writeConfig(t *testing.T, dir, body string) string {
	t.Helper()
	p := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func readyz(t *testing.T, addr string) (int, string) {
	t.Helper()
	return get(t, "http://"+addr+"/readyz")
}

func eventually(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestServeConfigPublishesTheWorkloadAPIKeys runs the gateway as operators
// do: a configuration file, TLS from files, keys from a Workload API that
// rotates, goes away and comes back.
func TestServeConfigPublishesTheWorkloadAPIKeys(t *testing.T) {
	dir := t.TempDir()
	oidcAddr := loopback.Addrs(t, 1)[0] // the issuer names the port before the gateway starts
	issuer := "https://localhost:" + strings.Split(oidcAddr, ":")[1] + "/spiffe"
	api := workloadapitest.Start(t, filepath.Join(dir, "agent"), devworkload.WithIssuer(issuer))
	paths, _, err := devcert.Ensure(filepath.Join(dir, "tls"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, dir, fmt.Sprintf(`
oidc:
  listen_addr: %s
  trust_domain: example.org
  issuer: %s
  allowed_hosts: [localhost]
workload_api:
  socket_path: %s
tls:
  cert_file: %s
  key_file: %s
entra:
  listen_addr: 127.0.0.1:0
data_dir: %s
health:
  listen_addr: 127.0.0.1:0
metrics:
  listen_addr: 127.0.0.1:0
`, oidcAddr, issuer, api.Addr, paths.Cert, paths.Key, filepath.Join(dir, "data")))
	// Without a key-encryption key the Entra endpoint does not start.
	out, err := command(context.Background(), "serve", "--config", cfg).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "entra.key_encryption.key_file: required") {
		t.Fatalf("serve --config without a key-encryption key: %v\n%s", err, out)
	}
	run := startConfig(t, cfg, []string{"GATEWAY_OIDC_STALENESS=1s", "GATEWAY_ENTRA_KEY_ENCRYPTION_KEY=" + testKEK}, "oidc", "entra", "health", "metrics")

	pem, _ := os.ReadFile(paths.CA)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	ctx := oidc.ClientContext(context.Background(), client)

	eventually(t, "readiness", 10*time.Second, func() bool { s, _ := readyz(t, run.addrs["health"]); return s == 200 })
	if s, body := get(t, "http://"+run.addrs["health"]+"/livez"); s != 200 || body != "ok\n" {
		t.Fatalf("/livez: %d %q", s, body)
	}
	_, detail := readyz(t, run.addrs["health"])
	for _, want := range []string{`"name": "oidc ` + issuer + `"`, `"name": "entra signing keys"`, `"keys": 1`} {
		if !strings.Contains(detail, want) {
			t.Errorf("/readyz lacks %s:\n%s", want, detail)
		}
	}

	// A relying party verifies a JWT-SVID through the discovery document.
	provider, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatal(err)
	}
	wl := api.Client()
	fetch := func() *jwtsvid.SVID {
		svid, err := wl.FetchJWTSVID(context.Background(), jwtsvid.Params{Audience: "api://AzureADTokenExchange"})
		if err != nil {
			t.Fatal(err)
		}
		return svid
	}
	if _, err := provider.Verifier(&oidc.Config{ClientID: "api://AzureADTokenExchange"}).Verify(ctx, fetch().Marshal()); err != nil {
		t.Fatalf("go-oidc refuses a JWT-SVID: %v", err)
	}

	// A prepared key is published within a second.
	keys := func() string {
		resp, err := client.Get(issuer + "/keys")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var doc struct{ Keys []json.RawMessage }
		if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || resp.StatusCode != 200 {
			t.Fatalf("/keys: %d %v", resp.StatusCode, err)
		}
		return fmt.Sprint(len(doc.Keys))
	}
	if err := api.Server.Rotate(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the prepared key", time.Second, func() bool { return keys() == "2" })

	// Metrics count the requests by route and show the key set's age.
	_, scraped := get(t, "http://"+run.addrs["metrics"]+"/metrics")
	for _, want := range []string{
		`gateway_http_requests_total{code="200",listener="oidc",route="keys"}`,
		`gateway_http_requests_total{code="200",listener="oidc",route="discovery"} 1`,
		`gateway_keyset_age_seconds{issuer="` + issuer + `"}`,
		`gateway_http_request_duration_seconds_bucket{listener="oidc",route="keys",le=`,
	} {
		if !strings.Contains(scraped, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// The agent goes away: the keys stay, readiness goes after the bound.
	api.Server.Stop()
	eventually(t, "not ready", 10*time.Second, func() bool { s, _ := readyz(t, run.addrs["health"]); return s == 503 })
	if _, detail := readyz(t, run.addrs["health"]); !strings.Contains(detail, "unavailable since") {
		t.Errorf("/readyz does not say why:\n%s", detail)
	}
	if keys() != "2" {
		t.Fatal("the last keys were not kept during the outage")
	}
	api.Start()
	eventually(t, "recovery without a restart", 15*time.Second, func() bool { s, _ := readyz(t, run.addrs["health"]); return s == 200 })
	if _, err := provider.Verifier(&oidc.Config{ClientID: "api://AzureADTokenExchange"}).Verify(ctx, fetch().Marshal()); err != nil {
		t.Fatalf("after the agent came back: %v", err)
	}
	// The watcher logs on its own tick, which may come after /readyz turned.
	for _, want := range []string{"the Workload API is unavailable", "the keys are stale", "the keys are fresh again"} {
		eventually(t, "the log saying "+want, 5*time.Second, func() bool { return strings.Contains(run.logs(), want) })
	}
}

// TestServeConfigPlainHTTPFromABundleFile serves a SPIFFE bundle file over
// plain HTTP, as behind a proxy that terminates TLS, with the Entra side
// off, and a second trust domain under its own issuer.
func TestServeConfigPlainHTTPFromABundleFile(t *testing.T) {
	dir := t.TempDir()
	api := workloadapitest.Start(t, filepath.Join(dir, "agent"))
	bundles, err := api.Client().FetchJWTBundles(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := bundles.GetJWTBundleForTrustDomain(spiffeid.RequireTrustDomainFromString("example.org"))
	jwks, _ := b.Marshal()
	bundleFile := filepath.Join(dir, "bundle.json")
	os.WriteFile(bundleFile, jwks, 0o600)
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	otherJWKS, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: otherKey.Public(), KeyID: "partner-key"}}})
	otherFile := filepath.Join(dir, "partner.json")
	os.WriteFile(otherFile, otherJWKS, 0o600)
	cfg := writeConfig(t, dir, fmt.Sprintf(`
oidc:
  listen_addr: 127.0.0.1:0
  trust_domain: example.org
  issuer: https://oidc.example.org
  bundle_file: %s
  additional_domains:
    - trust_domain: partner.example
      issuer: https://oidc.example.org/partner
      bundle_file: %s
  bundle_poll_interval: 50ms
  trusted_proxies: [127.0.0.0/8]
tls: {mode: none}
health: {listen_addr: 127.0.0.1:0}
metrics: {listen_addr: 127.0.0.1:0}
`, bundleFile, otherFile))
	run := startConfig(t, cfg, []string{"SPIFFE_ENDPOINT_SOCKET="}, "oidc", "health", "metrics")
	keys := func(path string) string {
		req, _ := http.NewRequest(http.MethodGet, "http://"+run.addrs["oidc"]+path, nil)
		req.Header.Set("X-Forwarded-Host", "oidc.example.org")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s through a trusted proxy: %d", path, resp.StatusCode)
		}
		return string(body)
	}
	main, partner := keys("/keys"), keys("/partner/keys")
	if strings.Contains(main, "partner-key") || !strings.Contains(partner, `"kid": "partner-key"`) || strings.Count(partner, `"kid"`) != 1 {
		t.Fatalf("each issuer should publish its own trust domain's keys:\n%s\n%s", main, partner)
	}
	if disco := keys("/partner/.well-known/openid-configuration"); !strings.Contains(disco, `"issuer": "https://oidc.example.org/partner"`) {
		t.Fatalf("the partner issuer's discovery document: %s", disco)
	}
	if !strings.Contains(run.logs(), "serving plain HTTP (tls.mode none)") {
		t.Error("plain HTTP was not warned about")
	}
	if s, _ := readyz(t, run.addrs["health"]); s != 200 {
		t.Fatalf("/readyz %d", s)
	}
}

func TestServeConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, file string
		args       []string
		says       []string
	}{
		{"neither dev nor config", "", []string{"serve"}, []string{"give --config FILE"}},
		{"both", "", []string{"serve", "--dev", "--config", "x.yaml"}, []string{"--dev and --config exclude each other"}},
		{"missing file", "", []string{"serve", "--config", filepath.Join(dir, "nope.yaml")}, []string{"nope.yaml"}},
		{"invalid", "oidc: {issuer: oidc.example.org}\ntls: {mode: tls}\n", nil,
			[]string{"oidc.trust_domain: required", `oidc.issuer: "oidc.example.org" must be an absolute https URL`, `tls.mode: "tls" is not one of files, spiffe, none`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.file != "" {
				args = []string{"serve", "--config", writeConfig(t, t.TempDir(), tc.file)}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, err := command(ctx, args...).CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 2 {
				t.Fatalf("exit = %v, want status 2; output:\n%s", err, out)
			}
			for _, s := range tc.says {
				if !strings.Contains(string(out), s) {
					t.Errorf("output does not say %q:\n%s", s, out)
				}
			}
		})
	}
}
