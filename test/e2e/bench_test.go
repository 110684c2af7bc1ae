package e2e

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/devgw"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/latency"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/procbench"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/spire"
)

// BenchmarkRSASign is the bound of the token endpoint: one RSA-2048
// PKCS#1 v1.5 signature per token, on every core.
func BenchmarkRSASign(b *testing.B) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256([]byte("payload"))
	latency.MeasureConcurrent(b, runtime.GOMAXPROCS(0), func() {
		if _, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, digest[:]); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkSigningHandler is the bound as a client sees it: an HTTPS handler
// that only makes the one RSA signature, under the same client and
// connections as BenchmarkTokenEndpoint.
func BenchmarkSigningHandler(b *testing.B) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		digest := sha256.Sum256([]byte(r.URL.Path))
		sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, digest[:])
		if err != nil {
			b.Error(err)
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"token_type":"Bearer","expires_in":3599,"access_token":"%x"}`, sig)
	}))
	defer srv.Close()
	tlsConfig := srv.Client().Transport.(*http.Transport).TLSClientConfig
	for _, n := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("conns=%d", n), func(b *testing.B) {
			loadTest(b, tlsConfig, n, srv.URL+"/token", "grant_type=client_credentials", nil, procbench.Profile{})
		})
	}
}

// loadTest posts body to url over n keep-alive HTTP/1.1 connections; with
// server, the process serving url, it reports that process's CPU time per
// request too.
func loadTest(b *testing.B, tlsConfig *tls.Config, n int, url, body string, server *spire.Process, profile procbench.Profile) {
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig: tlsConfig.Clone(), MaxConnsPerHost: n, MaxIdleConnsPerHost: n,
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
	}}
	defer client.CloseIdleConnections()
	post := func() {
		resp, err := client.Post(url, "application/x-www-form-urlencoded", strings.NewReader(body))
		if err != nil {
			b.Error(err)
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Errorf("status %d", resp.StatusCode)
		}
	}
	post() // warm: connections, issuer metadata
	if server != nil {
		procbench.Measure(b, server, n, post, profile)
		return
	}
	latency.MeasureConcurrent(b, n, post)
}

// BenchmarkTokenEndpoint is the whole token request over TLS on loopback
// against a development gateway (SQLite, warm issuer cache), with n
// connections each keeping one request in flight.
func BenchmarkTokenEndpoint(b *testing.B) {
	gw := devgw.Run(b)
	info := gw.Info
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	svid, err := fetchSVID(ctx, info.WorkloadSocket)
	if err != nil {
		b.Fatal(err)
	}
	forms := map[string]url.Values{
		"secret": {"grant_type": {"client_credentials"}, "client_id": {info.ClientID}, "scope": {info.Scope}, "client_secret": {info.ClientSecret}},
		"federated": {"grant_type": {"client_credentials"}, "client_id": {info.ClientID}, "scope": {info.Scope},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {svid}},
	}
	endpoint := info.AuthorityHost + "/" + info.TenantID + "/oauth2/v2.0/token"
	tlsConfig := gw.Client.Transport.(*http.Transport).TLSClientConfig
	for _, grant := range []string{"secret", "federated"} {
		body := forms[grant].Encode()
		for _, n := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("%s/conns=%d", grant, n), func(b *testing.B) {
				loadTest(b, tlsConfig, n, endpoint, body, nil, procbench.Profile{})
			})
		}
	}
}
