package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The test binary doubles as the gateway: with this variable set it runs
// main, so the tests start the real command as a process without a build.
const beGateway = "SPIFFE_ENTRA_GATEWAY_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(beGateway) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

func command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), beGateway+"=1")
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// devRun is one `serve --dev` process and what it printed.
type devRun struct {
	authority, issuer, tenant, client string
	caPEM, secret                     []byte
	keysJWKS, workloadKey             []byte
}

var (
	authorityLine = regexp.MustCompile(`Entra endpoint \(authority host\)\s+(\S+)`)
	issuerLine    = regexp.MustCompile(`OIDC issuer\s+(\S+)`)
	tenantLine    = regexp.MustCompile(`Tenant id\s+(\S+)`)
	clientLine    = regexp.MustCompile(`Client id\s+(\S+)`)
)

// startDev runs `serve --dev` on dir until it prints its information,
// collects the state a restart must keep, then stops it with SIGINT.
func startDev(t *testing.T, dir string) devRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := command(ctx, "serve", "--dev", "--data-dir", dir, "--entra-addr", "127.0.0.1:0", "--oidc-addr", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "disable instance discovery") {
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	printed := out.String()
	var run devRun
	for _, f := range []struct {
		re  *regexp.Regexp
		dst *string
	}{{authorityLine, &run.authority}, {issuerLine, &run.issuer}, {tenantLine, &run.tenant}, {clientLine, &run.client}} {
		m := f.re.FindStringSubmatch(printed)
		if m == nil {
			_ = cmd.Process.Kill()
			t.Fatalf("serve --dev did not print %v; stdout:\n%s\nstderr:\n%s", f.re, printed, stderr.String())
		}
		*f.dst = m[1]
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	run.caPEM, run.secret = read("tls/ca.pem"), read("dev-client-secret")
	run.workloadKey = readWorkloadKey(t, dir)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(run.caPEM)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get(run.authority + "/" + run.tenant + "/discovery/v2.0/keys")
	if err != nil {
		t.Fatalf("the Entra endpoint does not answer over TLS with the development CA: %v", err)
	}
	run.keysJWKS, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("keys: status %d: %s", resp.StatusCode, run.keysJWKS)
	}
	env := string(read("dev.env"))
	for _, v := range []string{"AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_AUTHORITY_HOST", "SPIFFE_ENDPOINT_SOCKET", "SSL_CERT_FILE",
		"NODE_EXTRA_CA_CERTS", "REQUESTS_CA_BUNDLE", "GATEWAY_DEV_SCOPE", "GATEWAY_DEV_CLIENT_SECRET"} {
		if !strings.Contains(env, "export "+v+"='") {
			t.Errorf("dev.env does not export %s:\n%s", v, env)
		}
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve --dev did not stop cleanly on SIGINT: %v\nstderr:\n%s", err, stderr.String())
	}
	return run
}

// readWorkloadKey returns the development Workload API's key file.
func readWorkloadKey(t *testing.T, dir string) []byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "workload", "*.pem"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no development Workload API key in %s/workload: %v", dir, err)
	}
	var all []byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

func TestServeDevRestartKeepsState(t *testing.T) {
	dir := t.TempDir()
	first := startDev(t, dir)
	second := startDev(t, dir)
	if !bytes.Equal(first.caPEM, second.caPEM) {
		t.Error("the development CA changed across restarts")
	}
	if !bytes.Equal(first.workloadKey, second.workloadKey) {
		t.Error("the development Workload API key changed across restarts")
	}
	// v2 keys name the issuer, whose port changes with every start.
	firstKeys := bytes.ReplaceAll(first.keysJWKS, []byte(first.authority), []byte("AUTHORITY"))
	secondKeys := bytes.ReplaceAll(second.keysJWKS, []byte(second.authority), []byte("AUTHORITY"))
	if !bytes.Contains(firstKeys, []byte(`"kid"`)) || !bytes.Equal(firstKeys, secondKeys) {
		t.Errorf("the token signing keys changed across restarts:\n%s\n%s", first.keysJWKS, second.keysJWKS)
	}
	if first.tenant != second.tenant || first.client != second.client || !bytes.Equal(first.secret, second.secret) {
		t.Errorf("the seed changed: tenant %s→%s client %s→%s", first.tenant, second.tenant, first.client, second.client)
	}
	if !strings.HasPrefix(first.issuer, "https://localhost:") || !strings.HasPrefix(first.authority, "https://localhost:") {
		t.Errorf("issuer %q and authority %q should be https://localhost:PORT", first.issuer, first.authority)
	}
}

func TestServeFailures(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		args   []string
		status int
		says   string
	}{
		{"unknown flag", []string{"serve", "--dve"}, 2, "flag provided but not defined: -dve"},
		{"bad log level", []string{"serve", "--dev", "--log-level", "loud"}, 2, `--log-level "loud"`},
		{"data dir under a file", []string{"serve", "--dev", "--data-dir", filepath.Join(file, "data")}, 1, "data directory " + filepath.Join(file, "data")},
		{"stray argument", []string{"serve", "--dev", "extra"}, 2, `unexpected arguments ["extra"]`},
		{"Entra host names with a configuration file", []string{"serve", "--config", file, "--entra-host-names"}, 2, "--entra-host-names is for --dev only"},
		{"profiling with a configuration file", []string{"serve", "--config", file, "--profiling"}, 2, "--profiling is for --dev only"},
		{"unknown command", []string{"serv"}, 2, `unknown command "serv"`},
		{"token without socket", []string{"token", "--socket", ""}, 2, "no Workload API address"},
		{"exchange without tenant", []string{"token", "--socket", "unix:///nowhere", "--exchange", "https://localhost:1"}, 2, "--exchange needs --tenant"},
		{"webhook without config", []string{"webhook"}, 2, "want --config FILE"},
		{"webhook config unreadable", []string{"webhook", "--config", filepath.Join(file, "x")}, 2, "webhook: open"},
		{"webhook config empty", []string{"webhook", "--config", file}, 2, "namespace is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := command(ctx, tc.args...)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != tc.status {
				t.Fatalf("exit = %v, want status %d; output:\n%s", err, tc.status, out)
			}
			if !strings.Contains(string(out), tc.says) {
				t.Errorf("output does not say %q:\n%s", tc.says, out)
			}
		})
	}
}

func TestTokenExchange(t *testing.T) {
	// As a process: Go reads SSL_CERT_FILE once per process, and each
	// development gateway has its own CA.
	c := newCLI(t)
	status, out, errOut := c.run("token", "--socket", c.info.WorkloadSocket)
	if status != 0 {
		t.Fatalf("token: status %d: %s", status, errOut)
	}
	if parts := strings.Split(strings.TrimSpace(out), "."); len(parts) != 3 {
		t.Errorf("token printed %q, want a compact JWT", out)
	}

	exchange := []string{"token", "--socket", c.info.WorkloadSocket, "--exchange", c.info.AuthorityHost,
		"--tenant", c.info.TenantID, "--scope", c.info.Scope, "--client-id"}
	status, out, errOut = c.run(append(exchange, c.info.ClientID)...)
	if status != 0 {
		t.Fatalf("token --exchange: status %d: %s %s", status, out, errOut)
	}
	var ok struct {
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal([]byte(out), &ok); err != nil || ok.TokenType != "Bearer" || ok.ExpiresIn < 3000 || ok.AccessToken == "" {
		t.Errorf("token --exchange printed %s (%v)", out, err)
	}

	unknown := "00000000-0000-0000-0000-0000000000aa" // not the nil GUID, which is AADSTS700038
	status, out, errOut = c.run(append(exchange, unknown)...)
	if status != 1 {
		t.Fatalf("token --exchange with an unknown client: status %d, want 1", status)
	}
	var refused struct {
		Error      string `json:"error"`
		ErrorCodes []int  `json:"error_codes"`
	}
	if err := json.Unmarshal([]byte(out), &refused); err != nil || refused.Error != "unauthorized_client" ||
		len(refused.ErrorCodes) != 1 || refused.ErrorCodes[0] != 700016 {
		t.Errorf("the endpoint's error was not printed as sent: %s (%v)", out, err)
	}
	if !strings.Contains(errOut, "HTTP 400") {
		t.Errorf("stderr does not give the status: %s", errOut)
	}
}

// TestBinaryLeavesOutTheAzureSDK keeps the server small: only programs that
// call Azure (through pkg/workload/azcred) link the Azure SDK.
func TestBinaryLeavesOutTheAzureSDK(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/Azure/azure-sdk-for-go/") || strings.HasSuffix(pkg, "/pkg/workload/azcred") {
			t.Errorf("the gateway binary links %s", pkg)
		}
	}
}
