package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/gateway"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/devgw"
)

// cli runs the command as a process with the development environment, as
// a developer who sourced dev.env does.
type cli struct {
	t    *testing.T
	info gateway.DevInfo
	env  []string
}

func newCLI(t *testing.T) *cli {
	info, _ := devgw.Start(t)
	return &cli{t: t, info: info, env: []string{
		"AZURE_AUTHORITY_HOST=" + info.AuthorityHost, "AZURE_TENANT_ID=" + info.TenantID, "AZURE_CLIENT_ID=" + info.ClientID,
		"GATEWAY_DEV_CLIENT_SECRET=" + info.ClientSecret, "SSL_CERT_FILE=" + info.CAFile, "SPIFFE_ENDPOINT_SOCKET=" + info.WorkloadSocket,
		"AZURE_CLIENT_SECRET=", "GATEWAY_API_TOKEN=",
	}}
}

// start runs a long-lived command (a sidecar) with the CLI's environment
// and env until the test ends, then stops it with SIGTERM and expects a
// clean exit. It returns the command's stderr as written so far.
func (c *cli) start(env []string, args ...string) *strings.Builder {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	cmd := command(ctx, args...)
	cmd.Env = append(append(cmd.Env, c.env...), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		cancel()
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() {
		defer cancel()
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			c.t.Errorf("after SIGTERM: %v\n%s", err, stderr.String())
		}
	})
	return &stderr
}

// run returns the exit status, stdout and stderr.
func (c *cli) run(args ...string) (int, string, string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := command(ctx, args...)
	cmd.Env = append(cmd.Env, c.env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), stdout.String(), stderr.String()
	}
	if err != nil {
		c.t.Fatal(err)
	}
	return 0, stdout.String(), stderr.String()
}

func (c *cli) json(args ...string) map[string]any {
	c.t.Helper()
	status, out, errOut := c.run(append(args, "-o", "json")...)
	if status != 0 {
		c.t.Fatalf("%v: status %d: %s", args, status, errOut)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		c.t.Fatalf("%v: %v: %s", args, err, out)
	}
	return v
}

// TestCLISetsUpFederationAWorkloadUsesAtOnce is the set-up script a team
// would run against Azure, run against the gateway: an app, a secret and a
// federated credential, then a workload's exchange.
func TestCLISetsUpFederationAWorkloadUsesAtOnce(t *testing.T) {
	c := newCLI(t)
	app := c.json("app", "create", "--name", "cli-worker")
	appID := app["appId"].(string)
	if pw := c.json("app", "credential", "add", "--id", appID, "--display-name", "ci"); len(pw["secretText"].(string)) < 30 {
		t.Fatalf("secret %v", pw)
	}
	params := filepath.Join(t.TempDir(), "credential.json")
	os.WriteFile(params, []byte(`{"name": "cli-worker-spiffe", "issuer": "`+c.info.Issuer+`", "subject": "`+c.info.SPIFFEID+`",
		"description": "from the CLI", "audiences": ["api://AzureADTokenExchange"]}`), 0o600)
	if fic := c.json("fic", "create", "--app", appID, "--parameters", params); fic["name"] != "cli-worker-spiffe" {
		t.Fatalf("fic %v", fic)
	}
	exchange := []string{"token", "--exchange", c.info.AuthorityHost, "--tenant", c.info.TenantID, "--scope", c.info.Scope, "--client-id"}
	if status, out, errOut := c.run(append(exchange, appID)...); status != 0 || !strings.Contains(out, "access_token") {
		t.Fatalf("the workload's exchange: %d %s %s", status, out, errOut)
	}

	// Tables for people.
	status, out, _ := c.run("fic", "list", "--app", app["id"].(string))
	if status != 0 || !strings.HasPrefix(out, "NAME") || !strings.Contains(out, "cli-worker-spiffe") || !strings.Contains(out, c.info.SPIFFEID) {
		t.Fatalf("fic list: %d\n%s", status, out)
	}
	status, out, _ = c.run("app", "list")
	if status != 0 || !strings.Contains(out, "cli-worker") || !strings.Contains(out, appID) {
		t.Fatalf("app list: %d\n%s", status, out)
	}

	// Errors come back as the API sent them.
	os.WriteFile(params, []byte(`{"name": "two", "issuer": "https://i.example", "subject": "s", "audiences": ["a", "b"]}`), 0o600)
	status, _, errOut := c.run("fic", "create", "--app", appID, "--parameters", params)
	if status != 1 || !strings.Contains(errOut, "400 InvalidFederatedIdentityCredentialValue: Federated identity credentials must have exactly 1 audience") {
		t.Fatalf("invalid credential: %d %s", status, errOut)
	}
	if status, _, errOut := c.run("fic", "delete", "--app", appID, "--name", "cli-worker-spiffe"); status != 0 {
		t.Fatalf("fic delete: %d %s", status, errOut)
	}
	if status, _, _ := c.run(append(exchange, appID)...); status != 1 {
		t.Fatalf("the exchange after the delete: status %d, want 1", status)
	}
	if status, _, errOut := c.run("app", "delete", "--id", appID); status != 0 {
		t.Fatalf("app delete: %d %s", status, errOut)
	}
	if status, _, errOut := c.run("app", "show", "--id", appID); status != 1 || !strings.Contains(errOut, "404 Request_ResourceNotFound") {
		t.Fatalf("app show after delete: %d %s", status, errOut)
	}
}

func TestCLIManagedIdentity(t *testing.T) {
	c := newCLI(t)
	where := []string{"--subscription", c.info.SubscriptionID, "--resource-group", "batch-rg"}
	mi := c.json(append([]string{"identity", "create", "--name", "batch"}, where...)...)
	clientID := mi["properties"].(map[string]any)["clientId"].(string)
	fic := c.json(append([]string{"identity", "fic", "create", "--identity", "batch", "--name", "spiffe-batch", "--issuer", c.info.Issuer, "--subject", c.info.SPIFFEID}, where...)...)
	if fic["properties"].(map[string]any)["subject"] != c.info.SPIFFEID {
		t.Fatalf("fic %v", fic)
	}
	status, out, errOut := c.run("token", "--exchange", c.info.AuthorityHost, "--tenant", c.info.TenantID, "--scope", c.info.Scope, "--client-id", clientID)
	if status != 0 || !strings.Contains(out, "access_token") {
		t.Fatalf("exchange as the identity: %d %s %s", status, out, errOut)
	}
	status, _, errOut = c.run(append([]string{"identity", "fic", "create", "--identity", "nobody", "--name", "x-1", "--issuer", "https://i.example", "--subject", "s"}, where...)...)
	if status != 1 || !strings.Contains(errOut, "404 ParentResourceNotFound") {
		t.Fatalf("credential of an absent identity: %d %s", status, errOut)
	}
}

func TestCLIUsageErrors(t *testing.T) {
	c := newCLI(t)
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"app"}, "Usage: spiffe-entra-gateway app"},
		{[]string{"app", "create"}, "--name is required"},
		{[]string{"app", "list", "-o", "yaml"}, `-o "yaml": want table or json`},
		{[]string{"fic", "create", "--app", "x"}, "--parameters is required"},
		{[]string{"identity", "create", "--name", "x"}, "--subscription is required"},
	} {
		status, _, errOut := c.run(tc.args...)
		if status != 2 || !strings.Contains(errOut, tc.says) {
			t.Errorf("%v: %d %s", tc.args, status, errOut)
		}
	}
	c.env = append(c.env, "AZURE_AUTHORITY_HOST=")
	if status, _, errOut := c.run("app", "list"); status != 2 || !strings.Contains(errOut, "no gateway: give --endpoint") {
		t.Errorf("no endpoint: %d %s", status, errOut)
	}
}
