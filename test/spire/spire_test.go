package spire_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/dev/devcert"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/loopback"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/spire"
)

const (
	workloadID = "spiffe://example.org/workload/test"
	audience   = "api://AzureADTokenExchange"
)

var gatewayBin string

// TestMain uses $GATEWAY_BIN or builds the gateway once.
func TestMain(m *testing.M) {
	gatewayBin = os.Getenv("GATEWAY_BIN")
	if gatewayBin == "" && os.Getenv(spire.BinEnv) != "" {
		dir, err := os.MkdirTemp("", "gateway-bin-")
		if err != nil {
			panic(err)
		}
		defer os.RemoveAll(dir)
		gatewayBin = filepath.Join(dir, "spiffe-entra-gateway")
		if out, err := exec.Command("go", "build", "-o", gatewayBin, "../../cmd/spiffe-entra-gateway").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build the gateway: %v\n%s", err, out)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

// lab is a SPIRE server and agent with the test process registered, the
// development CA for the gateway's TLS, and clients of both.
type lab struct {
	dir, issuer, oidcPort string
	spire                 *spire.Deployment
	tls                   devcert.Paths
	// client trusts the gateway's CA.
	client *http.Client
	// wl is a Workload API client of the agent.
	wl *workloadapi.Client
}

// newLab starts SPIRE for issuer (default: https://localhost on a free
// port) in a short temporary directory: unix socket paths are limited.
func newLab(t *testing.T, issuer string) *lab {
	t.Helper()
	bin := spire.Bin(t)
	dir, err := os.MkdirTemp("", "spire-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	l := &lab{dir: dir, oidcPort: loopback.Ports(t, 1)[0], issuer: issuer}
	if l.issuer == "" {
		l.issuer = "https://localhost:" + l.oidcPort
	}
	l.spire = spire.NewDeployment(t, bin, dir, l.issuer)
	l.spire.RegisterUID(workloadID)
	if l.tls, _, err = devcert.Ensure(filepath.Join(dir, "tls"), time.Now()); err != nil {
		t.Fatal(err)
	}
	pem, _ := os.ReadFile(l.tls.CA)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	l.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if l.wl, err = workloadapi.New(context.Background(), workloadapi.WithAddr("unix://"+l.spire.AgentSocket)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.wl.Close() })
	return l
}

// fetch gets a JWT-SVID for aud, waiting for the registration to reach the
// agent (its sync interval is about five seconds).
func (l *lab) fetch(t *testing.T, aud string) *jwtsvid.SVID {
	t.Helper()
	var svid *jwtsvid.SVID
	eventually(t, "a JWT-SVID from the agent", 30*time.Second, func() error {
		var err error
		svid, err = l.wl.FetchJWTSVID(context.Background(), jwtsvid.Params{Audience: aud})
		return err
	})
	return svid
}

// TestRealSPIRE runs SPIRE v1.15.3's server and agent with the gateway in
// front of the agent's Workload API: a JWT-SVID from the agent verifies
// with go-oidc through the gateway's discovery document, across a key
// rotation and an agent outage.
func TestRealSPIRE(t *testing.T) {
	l := newLab(t, "")
	issuer, d, client := l.issuer, l.spire, l.client
	gw := startGateway(t, l.dir, fmt.Sprintf(`
oidc:
  listen_addr: 127.0.0.1:%s
  trust_domain: example.org
  issuer: %s
  staleness: 3s
workload_api:
  socket_path: unix://%s
tls:
  cert_file: %s
  key_file: %s
health:
  listen_addr: 127.0.0.1:0
metrics:
  listen_addr: ""
`, l.oidcPort, issuer, d.AgentSocket, l.tls.Cert, l.tls.Key), 2)
	ctx := oidc.ClientContext(context.Background(), client)
	waitReady(t, gw)
	fetch := func(aud string) *jwtsvid.SVID { t.Helper(); return l.fetch(t, aud) }
	svid := fetch(audience)
	if svid.ID.String() != workloadID {
		t.Fatalf("SVID for %s", svid.ID)
	}
	provider, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatal(err)
	}
	verify := func(token string, aud string) error {
		_, err := provider.Verifier(&oidc.Config{ClientID: aud}).Verify(ctx, token)
		return err
	}
	if err := verify(svid.Marshal(), audience); err != nil {
		t.Fatalf("go-oidc refuses SPIRE's JWT-SVID through the gateway: %v", err)
	}
	keys := func() ([]jose.JSONWebKey, error) {
		resp, err := client.Get(issuer + "/keys")
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var set jose.JSONWebKeySet
		if err := json.NewDecoder(resp.Body).Decode(&set); err != nil || resp.StatusCode != 200 {
			return nil, fmt.Errorf("status %d: %w", resp.StatusCode, err)
		}
		return set.Keys, nil
	}
	first, err := keys()
	if err != nil || len(first) != 1 || first[0].Use != "sig" || first[0].Algorithm != "RS256" {
		t.Fatalf("keys before the rotation: %+v %v", first, err)
	}

	// Rotation: the prepared key is published, then signs.
	prepared := time.Now()
	kid := d.PrepareJWTAuthority()
	eventually(t, "the prepared key to be published", 30*time.Second, func() error {
		ks, err := keys()
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(ks, func(k jose.JSONWebKey) bool { return k.KeyID == kid }) {
			return fmt.Errorf("kid %s not among %d keys", kid, len(ks))
		}
		return nil
	})
	t.Logf("the prepared key %s was published %v after spire-server prepared it", kid, time.Since(prepared).Round(time.Millisecond))
	d.ActivateJWTAuthority(kid)
	eventually(t, "an SVID signed by the new key", 60*time.Second, func() error {
		// A new audience set bypasses the agent's SVID cache.
		aud := fmt.Sprintf("api://rotation-%d", time.Now().UnixNano())
		s := fetch(aud)
		tok, err := jose.ParseSignedCompact(s.Marshal(), []jose.SignatureAlgorithm{jose.RS256})
		if err != nil {
			return err
		}
		if got := tok.Signatures[0].Header.KeyID; got != kid {
			return fmt.Errorf("signed by %s", got)
		}
		return verify(s.Marshal(), aud)
	})
	if err := verify(svid.Marshal(), audience); err != nil {
		t.Fatalf("an SVID of the previous key no longer verifies while its key is in the bundle: %v", err)
	}

	// Outage: the keys stay, readiness goes after the bound, and a new
	// agent brings it back without restarting the gateway.
	before, _ := keys()
	d.StopAgent()
	stopped := time.Now()
	eventually(t, "not ready after the staleness bound", 30*time.Second, func() error {
		code, body, err := status(http.DefaultClient, gw.health+"/readyz")
		if err != nil || code != 503 || !strings.Contains(body, "unavailable since") {
			return fmt.Errorf("%d %w %s", code, err, body)
		}
		return nil
	})
	t.Logf("not ready %v after the agent stopped (bound 3s)", time.Since(stopped).Round(time.Millisecond))
	during, err := keys()
	if err != nil || len(during) != len(before) {
		t.Fatalf("keys during the outage: %d %v", len(during), err)
	}
	restarted := time.Now()
	d.StartAgent()
	eventually(t, "ready again", 60*time.Second, func() error {
		if code, body, err := status(http.DefaultClient, gw.health+"/readyz"); err != nil || code != 200 {
			return fmt.Errorf("%d %w %s", code, err, body)
		}
		return nil
	})
	t.Logf("ready again %v after a new agent started", time.Since(restarted).Round(time.Millisecond))
	if err := verify(fetch(audience).Marshal(), audience); err != nil {
		t.Fatalf("after the agent came back: %v", err)
	}
}

// TestServingTheGatewaysOwnSVID serves the discovery provider with the
// gateway's X.509-SVID from the agent (tls.mode spiffe).
func TestServingTheGatewaysOwnSVID(t *testing.T) {
	l := newLab(t, "https://oidc.example.org")
	gw := startGateway(t, l.dir, fmt.Sprintf(`
oidc:
  listen_addr: 127.0.0.1:0
  trust_domain: example.org
  issuer: https://oidc.example.org
workload_api:
  socket_path: unix://%s
tls:
  mode: spiffe
health:
  listen_addr: 127.0.0.1:0
metrics:
  listen_addr: ""
`, l.spire.AgentSocket), 2)
	conn, err := tls.Dial("tcp", gw.addrs["oidc"], &tls.Config{InsecureSkipVerify: true}) // the test inspects the certificate itself
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	leaf := conn.ConnectionState().PeerCertificates[0]
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != workloadID {
		t.Fatalf("the gateway presents %v, want its SVID %s", leaf.URIs, workloadID)
	}
}

// TestRealSPIREFederatesToTheEntraEndpoint is the whole path with real
// SPIRE: the workload's JWT-SVID from the agent is exchanged at the
// gateway's Entra endpoint for an access token, the endpoint validating it
// through the gateway's own discovery provider, as Entra would.
func TestRealSPIREFederatesToTheEntraEndpoint(t *testing.T) {
	l := newLab(t, "")
	dir, issuer, d, paths, client := l.dir, l.issuer, l.spire, l.tls, l.client
	const tenant, worker = "6f0c2a4e-1b7d-4c55-9f3e-2d8a1b7c9e10", "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9"
	seed := filepath.Join(dir, "seed.yaml")
	if err := os.WriteFile(seed, []byte(fmt.Sprintf(`tenants:
  - id: %s
    applications:
      - name: payments-api
        identifierUris: [api://payments]
        accessTokenAcceptedVersion: 2
        appRoles: [{value: Payments.Read, allowedMemberTypes: [Application]}]
      - name: payments-worker
        appId: %s
        federatedCredentials:
          - {name: spire-worker, issuer: "%s", subject: "%s"}
        roleAssignments:
          - {resource: api://payments, role: Payments.Read}
`, tenant, worker, issuer, workloadID)), 0o600); err != nil {
		t.Fatal(err)
	}
	gw := startGateway(t, dir, fmt.Sprintf(`
oidc:
  listen_addr: 127.0.0.1:%s
  trust_domain: example.org
  issuer: %s
workload_api: {socket_path: "unix://%s"}
tls: {cert_file: %s, key_file: %s}
entra:
  listen_addr: 127.0.0.1:0
  seed_file: %s
  issuer_ca_file: %s
  key_encryption: {key: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}
  issuer_fetch: {allowed_networks: ["127.0.0.0/8"]} # SPIRE's issuer is this machine
data_dir: %s
health: {listen_addr: 127.0.0.1:0}
metrics: {listen_addr: ""}
`, l.oidcPort, issuer, d.AgentSocket, paths.Cert, paths.Key, seed, paths.CA, filepath.Join(dir, "data")), 3)
	waitReady(t, gw)
	exchange := func(aud string) (int, map[string]any) {
		svid := l.fetch(t, aud)
		resp, err := client.PostForm("https://"+gw.addrs["entra"]+"/"+tenant+"/oauth2/v2.0/token", url.Values{
			"grant_type": {"client_credentials"}, "client_id": {worker}, "scope": {"api://payments/.default"},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {svid.Marshal()},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	code, body := exchange(audience)
	if code != 200 {
		t.Fatalf("exchange of SPIRE's JWT-SVID: %d %v", code, body)
	}
	parts := strings.Split(body["access_token"].(string), ".")
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var claims struct {
		Azp   string   `json:"azp"`
		Roles []string `json:"roles"`
		TID   string   `json:"tid"`
	}
	if err := json.Unmarshal(raw, &claims); err != nil || claims.Azp != worker || claims.TID != tenant || len(claims.Roles) != 1 || claims.Roles[0] != "Payments.Read" {
		t.Fatalf("access token claims %+v (%v)", claims, err)
	}
	// An SVID for another audience matches no credential, as in Entra.
	if code, body := exchange("api://not-entra"); code != 401 || !strings.HasPrefix(fmt.Sprint(body["error_description"]), "AADSTS700212") {
		t.Fatalf("an SVID for another audience: %d %v", code, body)
	}
}
