package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTokenIdentityEndpoint runs the sidecar as a pod would, with both the
// token file and the managed-identity endpoint, and asks the endpoint for a
// token the way App Service clients do, from the variables it wrote.
func TestTokenIdentityEndpoint(t *testing.T) {
	c := newCLI(t)
	dir := t.TempDir()
	envFile, token := filepath.Join(dir, "azure.env"), filepath.Join(dir, "token")
	stderr := c.start(nil, "token", "--socket", c.info.WorkloadSocket, "--write", token, "--identity-endpoint", "127.0.0.1:0",
		"--env-file", envFile, "--tenant", c.info.TenantID, "--client-id", c.info.ClientID, "--authority-host", c.info.AuthorityHost)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(envFile); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no environment file written:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	out, err := exec.Command("sh", "-c", `. "$0"; echo "$IDENTITY_ENDPOINT $IDENTITY_HEADER $MSI_ENDPOINT $MSI_SECRET $AZURE_FEDERATED_TOKEN_FILE"`, envFile).Output()
	if err != nil {
		t.Fatal(err)
	}
	vars := strings.Fields(string(out))
	if len(vars) != 5 || !strings.HasPrefix(vars[0], "http://127.0.0.1:") || vars[2] != vars[0] || vars[3] != vars[1] || len(vars[1]) < 16 || vars[4] != token {
		t.Fatalf("environment file gives %q", out)
	}
	endpoint, header := vars[0], vars[1]

	resource := strings.TrimSuffix(c.info.Scope, "/.default")
	req, _ := http.NewRequest("GET", endpoint+"?api-version=2019-08-01&resource="+url.QueryEscape(resource), nil)
	req.Header.Set("X-IDENTITY-HEADER", header)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]string
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != 200 || body["client_id"] != c.info.ClientID || body["resource"] != resource || strings.Count(body["access_token"], ".") != 2 {
		t.Fatalf("App Service request: %d %v\n%s", resp.StatusCode, body, stderr.String())
	}

	req.Header.Set("X-IDENTITY-HEADER", "not-"+header)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a wrong identity header: %d, want 401", resp.StatusCode)
	}
}

func TestTokenIdentityEndpointUsageErrors(t *testing.T) {
	socket := devWorkloadAPI(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--identity-endpoint", "0.0.0.0:8081", "--tenant", "t", "--client-id", "c"}, "loopback"},
		{[]string{"--identity-endpoint", ":8081", "--tenant", "t", "--client-id", "c"}, "loopback"},
		{[]string{"--identity-endpoint", "127.0.0.1:0", "--client-id", "c"}, "--tenant"},
		{[]string{"--identity-endpoint", "127.0.0.1:0", "--tenant", "t", "--client-id", "c", "--write", "f", "--once"}, "--once"},
		{[]string{"--identity-endpoint", "127.0.0.1:0", "--tenant", "t", "--client-id", "c", "--exchange", "https://localhost:1", "--scope", "s"}, "cannot be combined"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := command(ctx, append([]string{"token", "--socket", socket}, tc.args...)...).CombinedOutput()
		cancel()
		if ee := (*exec.ExitError)(nil); !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), tc.want) {
			t.Errorf("token %v: %v %q, want exit 2 naming %s", tc.args, err, out, tc.want)
		}
	}
}
