package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/dev/devcert"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/dev/devworkload"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/pgtest"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/workloadapitest"
)

const (
	replicaTenant = "6f0c2a4e-1b7d-4c55-9f3e-2d8a1b7c9e10"
	workerAppID   = "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9"
)

func replicaSeed(issuer string, withCredential bool) string {
	fic := ""
	if withCredential {
		fic = fmt.Sprintf(`
        federatedCredentials:
          - name: spiffe-worker
            issuer: %s
            subject: spiffe://example.org/dev/workload`, issuer)
	}
	return fmt.Sprintf(`tenants:
  - id: %s
    displayName: Replicas
    applications:
      - name: payments-api
        identifierUris: [api://payments]
        accessTokenAcceptedVersion: 2
        appRoles:
          - value: Payments.Read
            allowedMemberTypes: [Application]
      - name: payments-worker
        appId: %s%s
        roleAssignments:
          - resource: api://payments
            role: Payments.Read
`, replicaTenant, workerAppID, fic)
}

// TestReplicaProcessesSharePostgres runs two `serve --config` processes on
// one PostgreSQL database. Only the first has the seed file; the second
// learns the directory from the database alone.
func TestReplicaProcessesSharePostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	dir := t.TempDir()
	oidcA := freeAddr(t)
	issuerA := "https://localhost:" + strings.Split(oidcA, ":")[1]
	api := workloadapitest.Start(t, filepath.Join(dir, "agent"), devworkload.WithIssuer(issuerA))
	paths, _, err := devcert.Ensure(filepath.Join(dir, "tls"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	seedFile := filepath.Join(dir, "seed.yaml")
	if err := os.WriteFile(seedFile, []byte(replicaSeed(issuerA, true)), 0o600); err != nil {
		t.Fatal(err)
	}
	config := func(oidcAddr, issuer, seed string) string {
		return writeConfig(t, t.TempDir(), fmt.Sprintf(`
oidc:
  listen_addr: %s
  trust_domain: example.org
  issuer: %s
workload_api: {socket_path: %s}
tls: {cert_file: %s, key_file: %s}
entra:
  listen_addr: 127.0.0.1:0
  issuer_ca_file: %s
  seed_file: "%s"
store: {driver: postgres}
health: {listen_addr: 127.0.0.1:0}
metrics: {listen_addr: 127.0.0.1:0}
`, oidcAddr, issuer, api.Addr, paths.Cert, paths.Key, paths.CA, seed))
	}
	env := []string{"GATEWAY_STORE_POSTGRES_DSN=" + dsn}
	a := startConfig(t, config(oidcA, issuerA, seedFile), env, "oidc", "entra", "health", "metrics")
	b := startConfig(t, config("127.0.0.1:0", "https://localhost/b", ""), env, "oidc", "entra", "health", "metrics")
	for _, r := range []*configRun{a, b} {
		eventually(t, "readiness", 20*time.Second, func() bool { s, _ := readyz(t, r.addrs["health"]); return s == 200 })
	}
	if strings.Contains(b.logs(), "seed") {
		t.Fatal("replica B read a seed file")
	}

	pem, _ := os.ReadFile(paths.CA)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	wl := api.Client()
	exchange := func(r *configRun) (int, map[string]any) {
		svid, err := wl.FetchJWTSVID(context.Background(), jwtsvid.Params{Audience: "api://AzureADTokenExchange"})
		if err != nil {
			t.Fatal(err)
		}
		form := url.Values{
			"grant_type": {"client_credentials"}, "client_id": {workerAppID}, "scope": {"api://payments/.default"},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {svid.Marshal()},
		}
		resp, err := client.PostForm("https://"+r.addrs["entra"]+"/"+replicaTenant+"/oauth2/v2.0/token", form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, body
	}
	keys := func(r *configRun) jose.JSONWebKeySet {
		resp, err := client.Get("https://" + r.addrs["entra"] + "/" + replicaTenant + "/discovery/v2.0/keys")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(raw, &set); err != nil {
			t.Fatalf("keys: %v: %s", err, raw)
		}
		return set
	}

	// The seed applied through A is honoured by B.
	status, body := exchange(b)
	if status != 200 {
		t.Fatalf("exchange at B: %d %v", status, body)
	}
	// Signing keys are shared: a token from either verifies with the keys
	// of the other, and the two replicas created one key per window.
	kidsA, kidsB := kidList(keys(a)), kidList(keys(b))
	if kidsA != kidsB || kidsA == "" {
		t.Fatalf("the replicas publish different keys: %s and %s", kidsA, kidsB)
	}
	if n := strings.Count(kidsA, ",") + 1; n != 2 {
		t.Fatalf("%d keys (%s), want the current and the next window's", n, kidsA)
	}
	statusA, bodyA := exchange(a)
	if statusA != 200 {
		t.Fatalf("exchange at A: %d %v", statusA, bodyA)
	}
	for name, tc := range map[string]struct {
		token string
		keys  jose.JSONWebKeySet
	}{"A's token with B's keys": {bodyA["access_token"].(string), keys(b)}, "B's token with A's keys": {body["access_token"].(string), keys(a)}} {
		jws, err := jose.ParseSigned(tc.token, []jose.SignatureAlgorithm{jose.RS256})
		if err != nil {
			t.Fatal(err)
		}
		ks := tc.keys.Key(jws.Signatures[0].Header.KeyID)
		if len(ks) != 1 {
			t.Fatalf("%s: kid %s not published", name, jws.Signatures[0].Header.KeyID)
		}
		if _, err := jws.Verify(ks[0].Key); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}

	// A removes the credential (a changed seed): B refuses the next exchange
	// with no restart, and honours it again once A restores it.
	if err := os.WriteFile(seedFile, []byte(replicaSeed(issuerA, false)), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B to refuse the removed credential", 15*time.Second, func() bool {
		status, body := exchange(b)
		// The app has no credential left: Entra answers AADSTS70025.
		return status == 401 && strings.HasPrefix(fmt.Sprint(body["error_description"]), "AADSTS70025")
	})
	if err := os.WriteFile(seedFile, []byte(replicaSeed(issuerA, true)), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B to honour the restored credential", 15*time.Second, func() bool { s, _ := exchange(b); return s == 200 })

	// A management call without a token: counted under its own route.
	if resp, err := client.Get("https://" + b.addrs["entra"] + "/v1.0/applications"); err != nil || resp.StatusCode != 401 {
		t.Fatalf("Graph call without a token: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	_, scraped := get(t, "http://"+b.addrs["metrics"]+"/metrics")
	for _, want := range []string{
		`gateway_tokens_issued_total{grant="client_credentials"}`,
		`gateway_tokens_refused_total{aadsts="70025",grant="client_credentials"}`,
		`gateway_issuer_metadata_fetches_total{result="ok"}`,
		`gateway_http_requests_total{code="401",listener="entra",route="token"}`,
		`gateway_http_requests_total{code="401",listener="entra",route="graph"} 1`,
	} {
		if !strings.Contains(scraped, want) {
			t.Errorf("B's /metrics lacks %s", want)
		}
	}
}

func kidList(set jose.JSONWebKeySet) string {
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.KeyID)
	}
	return strings.Join(kids, ",")
}
