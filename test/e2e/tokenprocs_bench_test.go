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
	"os/exec"
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

// BenchmarkTokenProcesses loads the token endpoint of a development gateway
// process (`serve --dev`: SQLite, TLS, the development Workload API's
// issuer) and a signing-only server process under the same client, in
// turn, with the client secret and a JWT-SVID assertion, at 1, 16 and 64
// connections, and reports each server's CPU time per request. The gateway
// is $GATEWAY_BIN, or built from this tree. Where built, the entra-emulator
// peer ($GATEWAY_TEST_ENTRA_EMULATOR_BIN) takes its turn too, doing the same
// two exchanges against the same issuer.
func BenchmarkTokenProcesses(b *testing.B) {
	dir := b.TempDir()
	bin := os.Getenv("GATEWAY_BIN")
	if bin == "" {
		bin = filepath.Join(dir, "spiffe-entra-gateway")
		if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/spiffe-entra-gateway").CombinedOutput(); err != nil {
			b.Fatalf("build the gateway: %v\n%s", err, out)
		}
	}
	data := filepath.Join(dir, "data")
	_, gw := procbench.StartPrinting(b, dir, "Azure SDK clients must disable", bin,
		nil, "serve", "--dev", "--profiling", "--data-dir", data, "--entra-addr", "127.0.0.1:0", "--oidc-addr", "127.0.0.1:0", "--log-level", "warn")
	info := map[string]string{}
	for _, name := range []string{"Entra endpoint (authority host)", "OIDC issuer", "Tenant id", "Client id", "Scope", "CA to trust", "Federated token file", "Health (/livez, /readyz)"} {
		m := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(name) + `\s+(\S+)$`).FindStringSubmatch(gw.Log())
		if m == nil {
			b.Fatalf("serve --dev did not print %q:\n%s", name, gw.Log())
		}
		info[name] = m[1]
	}
	// Printed now, not logged at the end, so that the gateway can be
	// profiled while it is under load.
	fmt.Fprintf(os.Stderr, "profile the gateway: go tool pprof %s/debug/pprof/profile?seconds=20\n", info["Health (/livez, /readyz)"])
	read := func(path string) string {
		v, err := os.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		return strings.TrimSpace(string(v))
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(read(info["CA to trust"])))
	tlsConfig := &tls.Config{RootCAs: pool}
	signingAddr, signing := procbench.StartPrinting(b, dir, "listening", os.Args[0],
		[]string{signingEnv + "=1", "SIGNING_CERT=" + filepath.Join(data, "tls", devcert.CertFile), "SIGNING_KEY=" + filepath.Join(data, "tls", devcert.KeyFile)})
	_, port, _ := net.SplitHostPort(signingAddr)

	// The gateway and the signing-only process take the development
	// client's requests; a peer, its own client's.
	devForm := func(grant string) url.Values {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {info["Client id"]}, "scope": {info["Scope"]}}
		if grant == "secret" {
			form.Set("client_secret", read(filepath.Join(data, "dev-client-secret")))
		} else {
			form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
			form.Set("client_assertion", read(info["Federated token file"]))
		}
		return form
	}
	type server struct {
		name, url string
		proc      *spire.Process
		form      func(grant string) url.Values
	}
	servers := []server{
		{"gateway", info["Entra endpoint (authority host)"] + "/" + info["Tenant id"] + "/oauth2/v2.0/token", gw, devForm},
		{"signing-only", "https://localhost:" + port + "/token", signing, devForm},
	}
	if peer := startEntraEmulator(b, dir, filepath.Join(data, "tls", devcert.CertFile), filepath.Join(data, "tls", devcert.KeyFile),
		info["CA to trust"], info["OIDC issuer"], read(info["Federated token file"]), tlsConfig); peer != nil {
		servers = append(servers, server{"entra-emulator", peer.tokenURL, peer.proc, func(grant string) url.Values {
			// The file holds a current JWT-SVID: the development gateway
			// renews it.
			return peer.form(grant, read(info["Federated token file"]))
		}})
	}
	for _, grant := range []string{"secret", "federated"} {
		for _, n := range []int{1, 16, 64} {
			for _, srv := range servers {
				b.Run(fmt.Sprintf("%s/conns=%d/server=%s", grant, n, srv.name), func(b *testing.B) {
					loadTest(b, tlsConfig, n, srv.url, srv.form(grant).Encode(), srv.proc)
				})
			}
		}
	}
}
