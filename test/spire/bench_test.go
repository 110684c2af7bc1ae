package spire_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/dev/devcert"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/loopback"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/procbench"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/spire"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/workloadapitest"
)

// bareEnv makes the test binary a bare net/http server writing fixed bytes
// and headers: the ceiling for a Go server on this machine.
const bareEnv = "SPIRE_BENCH_BARE"

func init() {
	if os.Getenv(bareEnv) == "1" {
		os.Exit(serveBare())
	}
}

// serveBare serves the documents saved in $BARE_DIR (saveBare) at their
// paths on a loopback port, over TLS when $BARE_CERT is set, and prints the
// address.
func serveBare() int {
	var docs []procbench.Document
	for _, doc := range []string{"keys", "discovery"} {
		d := procbench.Document{Path: docPath(doc)}
		body, err1 := os.ReadFile(filepath.Join(os.Getenv("BARE_DIR"), doc+".json"))
		header, err2 := os.ReadFile(filepath.Join(os.Getenv("BARE_DIR"), doc+".header.json"))
		if err := errors.Join(err1, err2, json.Unmarshal(header, &d.Header)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		d.Body = body
		docs = append(docs, d)
	}
	return procbench.Serve(procbench.Bare(docs...), os.Getenv("BARE_CERT"), os.Getenv("BARE_KEY"))
}

// saveBare saves gw's documents with the headers it sends with them (but
// Date, which net/http writes for every server) for serveBare, and says
// where another build of the gateway serves other bytes.
func saveBare(b *testing.B, c *http.Client, gw target, others []target, dir string) {
	b.Helper()
	for _, doc := range []string{"keys", "discovery"} {
		body, header := fetch(b, c, gw, docPath(doc))
		header.Del("Date")
		hj, err := json.Marshal(header)
		if err != nil {
			b.Fatal(err)
		}
		if err := errors.Join(os.WriteFile(filepath.Join(dir, doc+".json"), body, 0o600), os.WriteFile(filepath.Join(dir, doc+".header.json"), hj, 0o600)); err != nil {
			b.Fatal(err)
		}
		for _, t := range others {
			if other, _ := fetch(b, c, t, docPath(doc)); !bytes.Equal(other, body) {
				fmt.Fprintf(os.Stderr, "%s: %s serves %d bytes, %s %d: the bare handler serves %s's\n",
					doc, t.name, len(other), gw.name, len(body), gw.name)
			}
		}
	}
}

// sameAsGateway fails unless bare answers both documents with the bytes and
// headers of gw, Date aside.
func sameAsGateway(b *testing.B, c *http.Client, gw, bare target) {
	b.Helper()
	for _, doc := range []string{"keys", "discovery"} {
		gb, gh := fetch(b, c, gw, docPath(doc))
		bb, bh := fetch(b, c, bare, docPath(doc))
		gh.Del("Date")
		bh.Del("Date")
		if !bytes.Equal(gb, bb) || !reflect.DeepEqual(gh, bh) {
			b.Fatalf("%s %s: the bare handler answers\n%v\n%s\n%s answers\n%v\n%s", bare.scheme, doc, bh, bb, gw.name, gh, gb)
		}
	}
}

// target is one server under load.
type target struct {
	name, scheme, addr string
	proc               *spire.Process
	// pprof is a gateway's /debug/pprof/ URL, or "" (not a gateway, or a
	// build from before health.profiling); profile names its profiles.
	pprof, profile string
}

// BenchmarkDiscoveryProviders loads /keys and the discovery document of
// the gateway, SPIRE's oidc-discovery-provider (where built:
// $GATEWAY_TEST_SPIRE_BIN) and a bare handler writing the gateway's bytes,
// all serving the same two keys from one Workload API, in plain HTTP and
// TLS, at 1, 16 and 64 connections. The gateway is each build of $GATEWAY_BINS, each a server
// of its own, or $GATEWAY_BIN, or built from this tree (procbench.Builds);
// with $BENCH_PROFILE_DIR, each build that has health.profiling is
// profiled over plain HTTP at 64 connections (procbench.ProfileOf).
func BenchmarkDiscoveryProviders(b *testing.B) {
	dir, err := os.MkdirTemp("", "odp-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	builds := procbench.Builds(b, dir)
	spireBin := os.Getenv(spire.BinEnv)
	if spireBin == "" {
		fmt.Fprintf(os.Stderr, "%s is not set (test/spire/build.sh): no SPIRE provider in this run\n", spire.BinEnv)
	}
	api := workloadapitest.Start(b, filepath.Join(dir, "agent"))
	if err := api.Server.Rotate(); err != nil { // two keys, as during a rotation
		b.Fatal(err)
	}
	socket := strings.TrimPrefix(api.Addr, "unix://")
	paths, _, err := devcert.Ensure(filepath.Join(dir, "tls"), time.Now())
	if err != nil {
		b.Fatal(err)
	}
	pem, _ := os.ReadFile(paths.CA)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)

	var targets []target
	for _, scheme := range []string{"http", "https"} {
		tlsConf := "tls: {mode: none}"
		odpAddr := loopback.Addrs(b, 1)[0]
		odpServe := fmt.Sprintf(`insecure_addr = "%s"`, odpAddr)
		if scheme == "https" {
			tlsConf = fmt.Sprintf("tls: {cert_file: %s, key_file: %s}", paths.Cert, paths.Key)
			odpServe = fmt.Sprintf(`serving_cert_file {
    cert_file_path = "%s"
    key_file_path = "%s"
    addr = "%s"
}`, paths.Cert, paths.Key, odpAddr)
		}
		for _, build := range builds {
			// health.profiling as a variable, not a key: a build from
			// before it ignores the variable, and would refuse the key.
			gw := startGatewayEnv(b, build.Bin, dir, []string{"GATEWAY_HEALTH_PROFILING=true"}, fmt.Sprintf(`
oidc:
  listen_addr: 127.0.0.1:0
  trust_domain: example.org
  issuer: https://localhost
workload_api: {socket_path: %s}
%s
health: {listen_addr: 127.0.0.1:0}
metrics: {listen_addr: 127.0.0.1:0}
log_level: info
`, api.Addr, tlsConf), 3)
			pprof := procbench.ServesPprof(gw.health + "/debug/pprof/")
			if pprof == "" && scheme == "http" {
				fmt.Fprintf(os.Stderr, "%s: no /debug/pprof/ (health.profiling came later): no profile of this build\n", build.Server())
			}
			targets = append(targets, target{build.Server(), scheme, gw.addrs["oidc"], gw.proc, pprof, build.ProfileName()})
		}
		if spireBin == "" {
			continue
		}
		odpConf := filepath.Join(dir, "odp-"+scheme+".conf")
		os.WriteFile(odpConf, []byte(fmt.Sprintf(`log_level = "warn"
domains = ["localhost"]
jwt_issuer = "https://localhost"
set_key_use = true
%s
workload_api {
    socket_path = "%s"
    trust_domain = "example.org"
}
`, odpServe, socket)), 0o600)
		odp := spire.Start(b, dir, filepath.Join(spireBin, "oidc-discovery-provider"), "-config", odpConf)
		targets = append(targets, target{name: "spire-odp", scheme: scheme, addr: odpAddr, proc: odp})
	}

	// The bare handler serves the first gateway build's bytes and headers;
	// another build's may differ.
	saveBare(b, newClient(pool, 1), targets[0], targets[1:len(builds)], dir)
	for _, scheme := range []string{"http", "https"} {
		env := []string{bareEnv + "=1", "BARE_DIR=" + dir}
		if scheme == "https" {
			env = append(env, "BARE_CERT="+paths.Cert, "BARE_KEY="+paths.Key)
		}
		addr, proc := procbench.StartPrinting(b, dir, "listening", os.Args[0], env)
		targets = append(targets, target{name: "bare", scheme: scheme, addr: addr, proc: proc})
	}
	for _, t := range targets {
		waitServing(b, newClient(pool, 1), t)
	}
	for _, bare := range targets {
		for _, gw := range targets {
			if bare.name == "bare" && gw.name == targets[0].name && gw.scheme == bare.scheme {
				sameAsGateway(b, newClient(pool, 1), gw, bare)
			}
		}
	}

	for _, doc := range []string{"keys", "discovery"} {
		for _, scheme := range []string{"http", "https"} {
			for _, conns := range []int{1, 16, 64} {
				for _, t := range targets {
					if t.scheme != scheme {
						continue
					}
					b.Run(fmt.Sprintf("doc=%s/%s/conns=%d/server=%s", doc, scheme, conns, t.name), func(b *testing.B) {
						c := newClient(pool, conns)
						url := t.url(docPath(doc))
						var profile procbench.Profile
						if scheme == "http" {
							profile = procbench.ProfileOf(b, t.pprof, doc+"-"+t.profile, conns, 64)
						}
						procbench.Measure(b, t.proc, conns, func() {
							resp, err := c.Get(url)
							if err != nil {
								b.Fatal(err)
							}
							_, _ = io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
							if resp.StatusCode != 200 {
								b.Fatalf("%s: status %d", url, resp.StatusCode)
							}
						}, profile)
						c.CloseIdleConnections()
					})
				}
			}
		}
	}
}

func docPath(doc string) string {
	if doc == "keys" {
		return "/keys"
	}
	return "/.well-known/openid-configuration"
}

// url names the host localhost, which every server allows and the
// development certificate covers, at the server's loopback port.
func (t target) url(path string) string {
	_, port, _ := net.SplitHostPort(t.addr)
	return t.scheme + "://localhost:" + port + path
}

// newClient keeps conns connections open; it asks for no compression, so
// every server answers the same uncompressed bytes.
func newClient(pool *x509.CertPool, conns int) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool},
		MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true,
		DialContext: (&net.Dialer{}).DialContext, ForceAttemptHTTP2: false,
	}}
}

// fetch returns the body and header of t's document at path once it is
// served with both keys.
func fetch(b *testing.B, c *http.Client, t target, path string) ([]byte, http.Header) {
	b.Helper()
	var body []byte
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := c.Get(t.url(path))
		if err == nil {
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			// Wait for both keys: the second reaches each server by itself.
			if resp.StatusCode == 200 && (path != "/keys" || strings.Count(string(body), `"kid"`) == 2) {
				return body, resp.Header
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s %s%s: %v %s", t.name, t.addr, path, err, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitServing(b *testing.B, c *http.Client, t target) {
	b.Helper()
	for _, p := range []string{"/keys", "/.well-known/openid-configuration"} {
		fetch(b, c, t, p)
	}
}
