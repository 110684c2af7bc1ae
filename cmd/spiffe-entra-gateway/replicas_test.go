package main

import (
	"bytes"
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
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/dev/devcert"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/dev/devworkload"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/loopback"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/pgtest"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/workloadapitest"
)

const (
	replicaTenant = "6f0c2a4e-1b7d-4c55-9f3e-2d8a1b7c9e10"
	workerAppID   = "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9"
)

// replicaSeed is the directory of the replica test. secretFile holds the
// client secret of the worker, which may manage applications through Graph.
func replicaSeed(issuer, secretFile string, withCredential bool) string {
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
        clientSecretFiles: [%s]
        roleAssignments:
          - resource: api://payments
            role: Payments.Read
          - resource: https://graph.microsoft.com
            role: Application.ReadWrite.All
`, replicaTenant, workerAppID, fic, secretFile)
}

// TestReplicaProcessesSharePostgres runs two `serve --config` processes on
// one PostgreSQL database. Only the first has the seed file; the second
// learns the directory from the database alone.
func TestReplicaProcessesSharePostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	dir := t.TempDir()
	oidcA := loopback.Addrs(t, 1)[0]
	issuerA := "https://localhost:" + strings.Split(oidcA, ":")[1]
	api := workloadapitest.Start(t, filepath.Join(dir, "agent"), devworkload.WithIssuer(issuerA))
	paths, _, err := devcert.Ensure(filepath.Join(dir, "tls"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	seedFile, secretFile := filepath.Join(dir, "seed.yaml"), filepath.Join(dir, "worker-secret")
	const secret = "replica-worker-secret-0123456789"
	if err := os.WriteFile(secretFile, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(seedFile, []byte(replicaSeed(issuerA, secretFile, true)), 0o600); err != nil {
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
  issuer_fetch: {allowed_networks: ["127.0.0.0/8", "::1/128"]}
store: {driver: postgres}
health: {listen_addr: 127.0.0.1:0}
metrics: {listen_addr: 127.0.0.1:0}
`, oidcAddr, issuer, api.Addr, paths.Cert, paths.Key, paths.CA, seed))
	}
	// The replicas share the store, so they share the key sealing its
	// signing keys.
	env := []string{"GATEWAY_STORE_POSTGRES_DSN=" + dsn, "GATEWAY_ENTRA_KEY_ENCRYPTION_KEY=" + testKEK}
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
		jws, err := jose.ParseSignedCompact(tc.token, []jose.SignatureAlgorithm{jose.RS256})
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
	if err := os.WriteFile(seedFile, []byte(replicaSeed(issuerA, secretFile, false)), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B to refuse the removed credential", 15*time.Second, func() bool {
		status, body := exchange(b)
		// The app has no credential left: Entra answers AADSTS70025.
		return status == 401 && strings.HasPrefix(fmt.Sprint(body["error_description"]), "AADSTS70025")
	})
	if err := os.WriteFile(seedFile, []byte(replicaSeed(issuerA, secretFile, true)), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B to honour the restored credential", 15*time.Second, func() bool { s, _ := exchange(b); return s == 200 })

	concurrentPatches(t, client, "https://"+a.addrs["entra"], "https://"+b.addrs["entra"], secret)

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

// concurrentPatches creates an application through replica A, then PATCHes
// its displayName through A and its identifierUris through B at the same
// time. Each replica must keep seeing the value it wrote last: a PATCH
// through the other replica that wrote back a stale copy of the whole
// application would lose it.
func concurrentPatches(t *testing.T, client *http.Client, entraA, entraB, secret string) {
	t.Helper()
	token := func(entra string) string {
		resp, err := client.PostForm(entra+"/"+replicaTenant+"/oauth2/v2.0/token", url.Values{
			"grant_type": {"client_credentials"}, "client_id": {workerAppID}, "client_secret": {secret}, "scope": {"https://graph.microsoft.com/.default"},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			AccessToken string `json:"access_token"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.AccessToken == "" {
			t.Fatalf("a Graph token from %s: %d %v", entra, resp.StatusCode, err)
		}
		return body.AccessToken
	}
	call := func(entra, tok, method, path string, in any) (int, map[string]any) {
		var body io.Reader
		if in != nil {
			raw, _ := json.Marshal(in)
			body = bytes.NewReader(raw)
		}
		req, _ := http.NewRequest(method, entra+"/v1.0"+path, body)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Error(err)
			return 0, nil
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	tokA, tokB := token(entraA), token(entraB)
	status, created := call(entraA, tokA, "POST", "/applications", map[string]any{"displayName": "contended"})
	if status != 201 {
		t.Fatalf("creating the application: %d %v", status, created)
	}
	path := "/applications/" + created["id"].(string)
	const rounds = 60
	var wg sync.WaitGroup
	// patch writes one property round after round through one replica
	// and reads it back each time.
	patch := func(entra, tok string, value func(i int) map[string]any, seen func(got map[string]any) any) {
		defer wg.Done()
		for i := range rounds {
			in := value(i)
			var sent map[string]any // in as JSON reads it back
			raw, _ := json.Marshal(in)
			_ = json.Unmarshal(raw, &sent)
			if status, body := call(entra, tok, "PATCH", path, in); status != 204 {
				t.Errorf("PATCH %v through %s: %d %v", in, entra, status, body)
				return
			}
			if _, got := call(entra, tok, "GET", path, nil); fmt.Sprint(seen(got)) != fmt.Sprint(seen(sent)) {
				t.Errorf("after PATCH %v through %s the application has %v: a concurrent PATCH through the other replica lost it", in, entra, seen(got))
				return
			}
		}
	}
	wg.Add(4)
	go patch(entraA, tokA, func(i int) map[string]any { return map[string]any{"displayName": fmt.Sprint("a-", i)} },
		func(v map[string]any) any { return v["displayName"] })
	go patch(entraA, tokA, func(i int) map[string]any {
		return map[string]any{"api": map[string]any{"requestedAccessTokenVersion": 1 + i%2}}
	},
		func(v map[string]any) any { return v["api"].(map[string]any)["requestedAccessTokenVersion"] })
	go patch(entraB, tokB, func(i int) map[string]any {
		return map[string]any{"identifierUris": []string{fmt.Sprint("api://b-", i)}}
	},
		func(v map[string]any) any { return v["identifierUris"] })
	go patch(entraB, tokB, func(i int) map[string]any {
		return map[string]any{"appRoles": []map[string]any{{"id": "5d5c8b4e-7a39-4f0e-9f67-0c1b2d3e4f5a", "value": fmt.Sprint("Role.", i), "allowedMemberTypes": []string{"Application"}, "isEnabled": true}}}
	}, func(v map[string]any) any {
		roles, _ := v["appRoles"].([]any)
		if len(roles) != 1 {
			return roles
		}
		return roles[0].(map[string]any)["value"]
	})
	wg.Wait()
}
