package e2e

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/dev/devcert"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/procbench"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/spire"
)

// signingEnv makes the test binary the signing-only token server of
// BenchmarkTokenProcesses.
const signingEnv = "E2E_BENCH_SIGNING"

func init() {
	if os.Getenv(signingEnv) == "1" {
		os.Exit(serveSigning())
	}
}

// serveSigning answers every request with one RSA-2048 signature in a
// token-shaped JSON body, over TLS with $SIGNING_CERT and $SIGNING_KEY on
// a loopback port it prints: the token endpoint's bound as a process.
func serveSigning() int {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	payload := make([]byte, 900) // about an access token's claims
	return procbench.Serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		digest := sha256.Sum256(payload)
		sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, digest[:])
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"%s.%s"}`,
			base64.RawURLEncoding.EncodeToString(payload), base64.RawURLEncoding.EncodeToString(sig))
	}), os.Getenv("SIGNING_CERT"), os.Getenv("SIGNING_KEY"))
}

// devProcess is a `serve --dev` process of one build, with what it printed.
type devProcess struct {
	build procbench.Build
	proc  *spire.Process
	data  string
	info  map[string]string
	// pprof is its /debug/pprof/ URL, or "" when the build has no
	// --profiling.
	pprof string
}

// startDevProcess starts build's development gateway with its state in
// data, with --profiling where the build has it.
func startDevProcess(b *testing.B, dir, data string, build procbench.Build) *devProcess {
	args := []string{"serve", "--dev", "--data-dir", data, "--entra-addr", "127.0.0.1:0", "--oidc-addr", "127.0.0.1:0", "--log-level", "warn"}
	if build.ServeFlag("profiling") {
		args = append(args, "--profiling")
	}
	_, proc := procbench.StartPrinting(b, dir, "Azure SDK clients must disable", build.Bin, nil, args...)
	g := &devProcess{build: build, proc: proc, data: data, info: map[string]string{}}
	for _, name := range []string{"Entra endpoint (authority host)", "OIDC issuer", "Tenant id", "Client id", "Scope", "CA to trust", "Federated token file", "Health (/livez, /readyz)"} {
		m := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(name) + `\s+(\S+)$`).FindStringSubmatch(proc.Log())
		if m == nil {
			b.Fatalf("serve --dev did not print %q:\n%s", name, proc.Log())
		}
		g.info[name] = m[1]
	}
	g.pprof = procbench.ServesPprof(g.info["Health (/livez, /readyz)"] + "/debug/pprof/")
	if g.pprof == "" {
		fmt.Fprintf(os.Stderr, "%s: no /debug/pprof/ (serve --dev --profiling came later; test/procbench/build.sh adds it with BACKPORT_PROFILING=1): no profile of this build\n", build.Server())
	} else {
		// Printed now, not logged at the end, so that the gateway can be
		// profiled by hand while it is under load.
		fmt.Fprintf(os.Stderr, "profile %s: go tool pprof %sprofile?seconds=20\n", build.Server(), g.pprof)
	}
	return g
}

// BenchmarkTokenProcesses loads the token endpoint of a development gateway
// process (`serve --dev`: SQLite, TLS, the development Workload API's
// issuer) and a signing-only server process under the same client, in
// turn, with the client secret and a JWT-SVID assertion, at 1, 16 and 64
// connections, and reports each server's CPU time per request. The gateway
// is each build of $GATEWAY_BINS, each a server of its own, or
// $GATEWAY_BIN, or built from this tree (procbench.Builds); with
// $BENCH_PROFILE_DIR, each build that has --profiling is profiled at 16
// connections (procbench.ProfileOf). Where built, the entra-emulator peer
// ($GATEWAY_TEST_ENTRA_EMULATOR_BIN) takes its turn too, doing the same two
// exchanges against the first build's issuer.
func BenchmarkTokenProcesses(b *testing.B) {
	dir := b.TempDir()
	var gws []*devProcess
	for i, build := range procbench.Builds(b, dir) {
		gws = append(gws, startDevProcess(b, dir, filepath.Join(dir, fmt.Sprintf("data-%d", i)), build))
	}
	read := func(path string) string {
		v, err := os.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		return strings.TrimSpace(string(v))
	}
	pool := x509.NewCertPool()
	for _, g := range gws {
		pool.AppendCertsFromPEM([]byte(read(g.info["CA to trust"])))
	}
	tlsConfig := &tls.Config{RootCAs: pool}
	first := gws[0]
	certFile, keyFile := filepath.Join(first.data, "tls", devcert.CertFile), filepath.Join(first.data, "tls", devcert.KeyFile)
	signingAddr, signing := procbench.StartPrinting(b, dir, "listening", os.Args[0],
		[]string{signingEnv + "=1", "SIGNING_CERT=" + certFile, "SIGNING_KEY=" + keyFile})
	_, port, _ := net.SplitHostPort(signingAddr)

	// Each gateway takes its own development client's requests, as does
	// the signing-only process (the first gateway's); a peer, its own
	// client's.
	devForm := func(g *devProcess) func(grant string) url.Values {
		return func(grant string) url.Values {
			form := url.Values{"grant_type": {"client_credentials"}, "client_id": {g.info["Client id"]}, "scope": {g.info["Scope"]}}
			if grant == "secret" {
				form.Set("client_secret", read(filepath.Join(g.data, "dev-client-secret")))
			} else {
				// The file holds a current JWT-SVID: the development
				// gateway renews it.
				form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
				form.Set("client_assertion", read(g.info["Federated token file"]))
			}
			return form
		}
	}
	type server struct {
		name, url string
		proc      *spire.Process
		form      func(grant string) url.Values
		// gw is the gateway build, nil for the others.
		gw *devProcess
	}
	var servers []server
	for _, g := range gws {
		servers = append(servers, server{g.build.Server(), g.info["Entra endpoint (authority host)"] + "/" + g.info["Tenant id"] + "/oauth2/v2.0/token", g.proc, devForm(g), g})
	}
	servers = append(servers, server{"signing-only", "https://localhost:" + port + "/token", signing, devForm(first), nil})
	if peer := startEntraEmulator(b, dir, certFile, keyFile,
		first.info["CA to trust"], first.info["OIDC issuer"], read(first.info["Federated token file"]), tlsConfig); peer != nil {
		servers = append(servers, server{"entra-emulator", peer.tokenURL, peer.proc, func(grant string) url.Values {
			return peer.form(grant, read(first.info["Federated token file"]))
		}, nil})
	}
	for _, grant := range []string{"secret", "federated"} {
		for _, n := range []int{1, 16, 64} {
			for _, srv := range servers {
				b.Run(fmt.Sprintf("%s/conns=%d/server=%s", grant, n, srv.name), func(b *testing.B) {
					var profile procbench.Profile
					if srv.gw != nil {
						profile = procbench.ProfileOf(b, srv.gw.pprof, grant+"-"+srv.gw.build.ProfileName(), n, 16)
					}
					loadTest(b, tlsConfig, n, srv.url, srv.form(grant).Encode(), srv.proc, profile)
				})
			}
		}
	}
}
