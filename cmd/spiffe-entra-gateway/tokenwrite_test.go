package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/dev/devworkload"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/workloadapitest"
)

// devWorkloadAPI serves the Workload API protocol on a socket in a temporary
// directory and returns its address.
func devWorkloadAPI(t *testing.T) string {
	t.Helper()
	return workloadapitest.Start(t, t.TempDir(), devworkload.WithSPIFFEID("spiffe://example.org/ns/app/sa/api")).Addr
}

func assertTokenFile(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jwtsvid.ParseInsecure(string(b), []string{"api://AzureADTokenExchange"}); err != nil {
		t.Fatalf("%s does not hold a JWT-SVID for api://AzureADTokenExchange: %v", path, err)
	}
}

func TestTokenWriteOnceWithEnvFile(t *testing.T) {
	socket := devWorkloadAPI(t)
	dir := t.TempDir()
	token, env := filepath.Join(dir, "token"), filepath.Join(dir, "azure.env")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := command(ctx, "token", "--socket", socket, "--write", token, "--once", "--env-file", env,
		"--client-id", "11111111-2222-3333-4444-555555555555", "--tenant", "contoso.example", "--authority-host", "https://localhost:8443").CombinedOutput()
	if err != nil {
		t.Fatalf("token --write --once: %v\n%s", err, out)
	}
	assertTokenFile(t, token)
	got, err := exec.Command("sh", "-c", `. "$0"; echo "$AZURE_CLIENT_ID $AZURE_TENANT_ID $AZURE_FEDERATED_TOKEN_FILE $AZURE_AUTHORITY_HOST"`, env).Output()
	if err != nil {
		t.Fatal(err)
	}
	want := "11111111-2222-3333-4444-555555555555 contoso.example " + token + " https://localhost:8443\n"
	if string(got) != want {
		t.Errorf("environment file gives %q, want %q", got, want)
	}
}

var healthAddrLine = regexp.MustCompile(`msg="health endpoint" addr=(\S+)`)

// startSidecar runs token --write until it serves its health endpoint and
// returns the command and that endpoint's base URL.
func startSidecar(t *testing.T, args ...string) (*exec.Cmd, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	cmd := command(ctx, append([]string{"token", "--health-addr", "127.0.0.1:0"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if m := healthAddrLine.FindStringSubmatch(sc.Text()); m != nil {
			go io.Copy(io.Discard, stderr)
			return cmd, "http://" + m[1]
		}
	}
	cmd.Wait()
	t.Fatal("the sidecar exited before serving its health endpoint")
	return nil, ""
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestTokenWriteSidecarReadyAndStopsOnSIGTERM(t *testing.T) {
	socket := devWorkloadAPI(t)
	token := filepath.Join(t.TempDir(), "token")
	cmd, base := startSidecar(t, "--socket", socket, "--write", token)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if code, _ := get(t, base+"/readyz"); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/readyz never became ready")
		}
		time.Sleep(50 * time.Millisecond)
	}
	assertTokenFile(t, token)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("after SIGTERM: %v, want exit 0", err)
	}
	assertTokenFile(t, token) // left for the application still shutting down
}

func TestTokenWriteSidecarNotReadyWithShortSVIDs(t *testing.T) {
	socket := devWorkloadAPI(t) // one-hour SVIDs
	token := filepath.Join(t.TempDir(), "token")
	cmd, base := startSidecar(t, "--socket", socket, "--write", token, "--min-remaining", "2h")
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(token); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no token written")
		}
		time.Sleep(50 * time.Millisecond)
	}
	code, body := get(t, base+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "-jwtSVIDTTL") {
		t.Errorf("/readyz = %d %q, want 503 naming the fix", code, body)
	}
	if code, _ := get(t, base+"/livez"); code != http.StatusOK {
		t.Errorf("/livez = %d, want 200", code)
	}
}

func TestTokenWriteUsageErrors(t *testing.T) {
	socket := devWorkloadAPI(t)
	token := filepath.Join(t.TempDir(), "token")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--mode", "999"}, "--mode"},
		{[]string{"--min-remaining", "0s"}, "--min-remaining"},
		{[]string{"--spiffe-id", "not-an-id"}, "--spiffe-id"},
		{[]string{"--exchange", "https://localhost:1", "--tenant", "t", "--client-id", "c", "--scope", "s"}, "cannot be combined"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := command(ctx, append([]string{"token", "--socket", socket, "--write", token}, tc.args...)...).CombinedOutput()
		cancel()
		if ee := (*exec.ExitError)(nil); !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), tc.want) {
			t.Errorf("token --write %v: %v %q, want exit 2 naming %s", tc.args, err, out, tc.want)
		}
	}
	if _, err := os.Stat(token); !os.IsNotExist(err) {
		t.Error("a usage error wrote the token file")
	}
}

// TestTokenWriteSidecarNotReadySaysWhy: with no Workload API to read from,
// /readyz is 503 and its body names the reason, as the gateway's does.
func TestTokenWriteSidecarNotReadySaysWhy(t *testing.T) {
	dir := t.TempDir()
	_, base := startSidecar(t, "--socket", "unix://"+filepath.Join(dir, "no-agent.sock"), "--write", filepath.Join(dir, "token"))
	code, body := get(t, base+"/readyz")
	var doc struct {
		Ready  bool
		Checks []struct {
			Name   string
			Ready  bool
			Detail string
		}
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil || code != http.StatusServiceUnavailable || doc.Ready ||
		len(doc.Checks) != 1 || doc.Checks[0].Name != "token" || doc.Checks[0].Ready || doc.Checks[0].Detail == "" {
		t.Fatalf("/readyz: %d %s (%v)", code, body, err)
	}
	if code, body := get(t, base+"/livez"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/livez: %d %q", code, body)
	}
	// The listener has the project's bounds: a 64 KiB header limit among them.
	req, _ := http.NewRequest("GET", base+"/livez", nil)
	req.Header.Set("X-Large", strings.Repeat("a", 100<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("a 100 KiB header: %d, want 431", resp.StatusCode)
	}
}
