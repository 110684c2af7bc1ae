// Package spire runs a real SPIRE server and agent, built by build.sh, on
// loopback and unix sockets in a test's temporary directory, and stops every
// process it starts when the test ends, even on failure.
package spire

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// BinEnv names the directory holding spire-server, spire-agent and
// oidc-discovery-provider (test/spire/build.sh prints it).
const BinEnv = "GATEWAY_TEST_SPIRE_BIN"

// TrustDomain is the deployment's trust domain.
const TrustDomain = "example.org"

// NodeID is the agent's SPIFFE ID, the parent of registration entries.
const NodeID = "spiffe://example.org/node/test"

// Bin returns the SPIRE binaries' directory, skipping the test when it is
// not set: `make e2e` sets it.
func Bin(t testing.TB) string {
	t.Helper()
	dir := os.Getenv(BinEnv)
	if dir == "" {
		t.Skipf("%s is not set: make e2e builds SPIRE and runs this test", BinEnv)
	}
	return dir
}

// Deployment is a SPIRE server and agent.
type Deployment struct {
	t      testing.TB
	bin    string
	dir    string
	issuer string

	ServerSocket string
	// AgentSocket is the agent's Workload API socket path.
	AgentSocket string
	port        string

	mu    sync.Mutex
	agent *Process
}

// Process is a started program whose output goes to a log file.
type Process struct {
	Name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// Start runs name with args until the test ends. Its output is kept in a
// file and shown if the test fails.
func Start(t testing.TB, dir, name string, args ...string) *Process {
	t.Helper()
	return StartEnv(t, dir, nil, name, args...)
}

// StartEnv is Start with env added to the environment.
func StartEnv(t testing.TB, dir string, env []string, name string, args ...string) *Process {
	t.Helper()
	logPath := filepath.Join(dir, filepath.Base(name)+"-"+fmt.Sprint(time.Now().UnixNano())+".log")
	out, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &Process{Name: filepath.Base(name), cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); out.Close(); close(p.done) }()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("== %s log (last 4 KiB)\n%s", p.Name, tail(b, 4096))
		}
	})
	return p
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// Stop ends the process: SIGTERM, then SIGKILL after five seconds.
func (p *Process) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// CPUTime returns the user and system CPU time the process has used so
// far, from /proc (Linux), at the kernel's clock-tick resolution.
func (p *Process) CPUTime() time.Duration {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may hold
	// spaces: utime and stime are the 12th and 13th.
	_, rest, _ := strings.Cut(string(stat), ") ")
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64) // a field that does not parse counts as 0
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const ticksPerSecond = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticksPerSecond
}

// Log returns what the process wrote so far.
func (p *Process) Log() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// NewDeployment starts a SPIRE server (RSA-2048 JWT keys, jwt_issuer set
// to issuer) and an agent attested with a join token.
func NewDeployment(t testing.TB, bin, dir, issuer string) *Deployment {
	t.Helper()
	d := NewServer(t, bin, dir, issuer, "rsa-2048")
	d.StartAgent()
	return d
}

// NewServer starts a SPIRE server alone, signing JWT-SVIDs with keys of
// jwtKeyType ("rsa-2048", or SPIRE's default "ec-p256"), jwt_issuer set to
// issuer.
func NewServer(t testing.TB, bin, dir, issuer, jwtKeyType string) *Deployment {
	t.Helper()
	d := &Deployment{t: t, bin: bin, dir: dir, issuer: issuer,
		ServerSocket: filepath.Join(dir, "server", "api.sock"),
		AgentSocket:  filepath.Join(dir, "agent", "public", "api.sock"),
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d.port = fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	conf := filepath.Join(dir, "server.conf")
	d.write(conf, fmt.Sprintf(`server {
    bind_address = "127.0.0.1"
    bind_port = "%s"
    socket_path = "%s"
    trust_domain = "%s"
    data_dir = "%s"
    log_level = "INFO"
    jwt_key_type = "%s"
    jwt_issuer = "%s"
}
plugins {
    DataStore "sql" {
        plugin_data {
            database_type = "sqlite3"
            connection_string = "%s"
        }
    }
    NodeAttestor "join_token" { plugin_data {} }
    KeyManager "memory" { plugin_data {} }
}
`, d.port, d.ServerSocket, TrustDomain, filepath.Join(dir, "server", "data"), jwtKeyType, issuer, filepath.Join(dir, "server", "data", "datastore.sqlite3")))
	Start(t, dir, filepath.Join(bin, "spire-server"), "run", "-config", conf)
	d.eventually("the SPIRE server to be healthy", 30*time.Second, func() error {
		_, err := d.Server("healthcheck")
		return err
	})
	return d
}

// Server runs a spire-server command against the server's socket.
func (d *Deployment) Server(args ...string) (string, error) {
	args = append(args, "-socketPath", d.ServerSocket)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(d.bin, "spire-server"), args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("spire-server %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// MustServer is Server failing the test on error.
func (d *Deployment) MustServer(args ...string) string {
	d.t.Helper()
	out, err := d.Server(args...)
	if err != nil {
		d.t.Fatal(err)
	}
	return out
}

// StartAgent starts an agent with a fresh data directory and join token:
// the memory key manager cannot reattest a restarted agent.
func (d *Deployment) StartAgent() {
	d.t.Helper()
	token := strings.Fields(d.MustServer("token", "generate", "-spiffeID", NodeID))
	if len(token) < 2 {
		d.t.Fatalf("token generate printed %q", token)
	}
	agentDir := filepath.Join(d.dir, "agent")
	_ = os.RemoveAll(filepath.Join(agentDir, "data"))
	conf := filepath.Join(d.dir, "agent.conf")
	d.write(conf, fmt.Sprintf(`agent {
    data_dir = "%s"
    log_level = "INFO"
    server_address = "127.0.0.1"
    server_port = "%s"
    socket_path = "%s"
    trust_domain = "%s"
    insecure_bootstrap = true
}
plugins {
    NodeAttestor "join_token" { plugin_data {} }
    KeyManager "memory" { plugin_data {} }
    WorkloadAttestor "unix" { plugin_data {} }
}
`, filepath.Join(agentDir, "data"), d.port, d.AgentSocket, TrustDomain))
	p := Start(d.t, d.dir, filepath.Join(d.bin, "spire-agent"), "run", "-config", conf, "-joinToken", token[1])
	d.mu.Lock()
	d.agent = p
	d.mu.Unlock()
	d.eventually("the SPIRE agent to be healthy", 30*time.Second, func() error {
		if p.Exited() {
			return fmt.Errorf("the agent exited: %s", tail([]byte(p.Log()), 2048))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, filepath.Join(d.bin, "spire-agent"), "healthcheck", "-socketPath", d.AgentSocket).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		return nil
	})
}

// StopAgent stops the agent.
func (d *Deployment) StopAgent() {
	d.mu.Lock()
	p := d.agent
	d.mu.Unlock()
	p.Stop()
}

// RegisterUID registers id for processes of the current user.
func (d *Deployment) RegisterUID(id string) {
	d.t.Helper()
	d.MustServer("entry", "create", "-parentID", NodeID, "-spiffeID", id,
		"-selector", fmt.Sprintf("unix:uid:%d", os.Getuid()), "-jwtSVIDTTL", "3600")
}

var authorityID = regexp.MustCompile(`Authority ID:\s+(\S+)`)

// PrepareJWTAuthority prepares a new JWT key, as an operator starting a
// rotation does, and returns its authority ID (the key's kid).
func (d *Deployment) PrepareJWTAuthority() string {
	d.t.Helper()
	out := d.MustServer("localauthority", "jwt", "prepare")
	m := authorityID.FindStringSubmatch(out)
	if m == nil {
		d.t.Fatalf("localauthority jwt prepare printed no authority ID:\n%s", out)
	}
	return m[1]
}

// ActivateJWTAuthority makes the prepared key sign.
func (d *Deployment) ActivateJWTAuthority(id string) {
	d.t.Helper()
	d.MustServer("localauthority", "jwt", "activate", "-authorityID", id)
}

func (d *Deployment) write(path, body string) {
	d.t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		d.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		d.t.Fatal(err)
	}
}

func (d *Deployment) eventually(what string, within time.Duration, try func() error) {
	d.t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := try()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("timed out after %v waiting for %s: %v", within, what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
