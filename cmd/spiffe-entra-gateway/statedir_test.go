package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// TestServeRefusesADatabaseItCannotOpen: a directory or a text file where
// the SQLite database belongs is an error naming the path, what it is and
// the fix, not a panic.
func TestServeRefusesADatabaseItCannotOpen(t *testing.T) {
	asDir, asText, forConfig := t.TempDir(), t.TempDir(), t.TempDir()
	for _, d := range []string{filepath.Join(asDir, "gateway.db"), filepath.Join(forConfig, "db")} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(asText, "gateway.db"), []byte("notes\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k"}}})
	if err := os.WriteFile(filepath.Join(forConfig, "bundle.json"), jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	config := writeConfig(t, forConfig, fmt.Sprintf(`
oidc: {listen_addr: 127.0.0.1:0, trust_domain: example.org, issuer: https://oidc.example.org, bundle_file: %s}
tls: {mode: none}
entra: {listen_addr: 127.0.0.1:0, key_encryption: {allow_unencrypted: true}}
store: {sqlite_path: %s}
health: {listen_addr: 127.0.0.1:0}
`, filepath.Join(forConfig, "bundle.json"), filepath.Join(forConfig, "db")))
	for _, tc := range []struct {
		name string
		args []string
		says string
	}{
		{"a directory as gateway.db", []string{"serve", "--dev", "--data-dir", asDir, "--entra-addr", "127.0.0.1:0", "--oidc-addr", "127.0.0.1:0"},
			filepath.Join(asDir, "gateway.db") + " is a directory, not a database file: remove it"},
		{"a text file as gateway.db", []string{"serve", "--dev", "--data-dir", asText, "--entra-addr", "127.0.0.1:0", "--oidc-addr", "127.0.0.1:0"},
			filepath.Join(asText, "gateway.db") + " is not a SQLite database (a 6-byte file that does not start with SQLite's header): move it away"},
		{"store.sqlite_path naming a directory", []string{"serve", "--config", config},
			"store.sqlite_path: sqlite " + filepath.Join(forConfig, "db") + " is a directory, not a database file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			out, err := command(ctx, tc.args...).CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 || strings.Contains(string(out), "panic") {
				t.Fatalf("exit = %v, want status 1 and no panic; output:\n%s", err, out)
			}
			if !strings.Contains(string(out), tc.says) {
				t.Errorf("output does not say %q:\n%s", tc.says, out)
			}
		})
	}
}

// TestSecondGatewayOnOneDataDirectoryExits starts a development gateway,
// then a second on the same data directory: the second exits at once,
// naming the lock and the first's process id, and leaves the first's
// dev.env and Workload API socket alone.
func TestSecondGatewayOnOneDataDirectoryExits(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	first := command(ctx, "serve", "--dev", "--data-dir", dir, "--entra-addr", "127.0.0.1:0", "--oidc-addr", "127.0.0.1:0")
	stdout, err := first.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	first.Stderr = &stderr
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = first.Process.Signal(os.Interrupt); _ = first.Wait() }()
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && !strings.Contains(sc.Text(), "disable instance discovery") {
	}
	go func() {
		for sc.Scan() {
		}
	}()
	env, err := os.ReadFile(filepath.Join(dir, "dev.env"))
	if err != nil {
		t.Fatalf("the first gateway wrote no dev.env: %v\n%s", err, stderr.String())
	}

	start := time.Now()
	out, err := command(ctx, "serve", "--dev", "--data-dir", dir, "--entra-addr", "127.0.0.1:0", "--oidc-addr", "127.0.0.1:0").CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("the second gateway: %v, want status 1; output:\n%s", err, out)
	}
	want := fmt.Sprintf("data directory %s is in use by another gateway: process %d holds the lock %s", dir, first.Process.Pid, filepath.Join(dir, "gateway.lock"))
	if !strings.Contains(string(out), want) {
		t.Errorf("the second gateway does not say %q:\n%s", want, out)
	}
	t.Logf("the second gateway exited after %v", time.Since(start).Round(time.Millisecond))
	if after, _ := os.ReadFile(filepath.Join(dir, "dev.env")); !bytes.Equal(after, env) {
		t.Error("the second gateway rewrote dev.env")
	}
	if _, err := os.Stat(filepath.Join(dir, "workload.sock")); err != nil {
		t.Errorf("the first gateway's Workload API socket: %v", err)
	}
}
