package e2e

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/dev/devtenant"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/loopback"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/spire"
)

// entraEmulatorEnv names a built entra-emulator binary
// (github.com/calvinchengx/entra-emulator), the peer BenchmarkTokenProcesses
// loads beside the gateway when it is set. Its module cannot be fetched
// where the project's scripts run, so it is built by hand, outside the
// repository (docs/benchmarks.md says how), and skipped otherwise.
const entraEmulatorEnv = "GATEWAY_TEST_ENTRA_EMULATOR_BIN"

// entraEmulator is a started peer holding the development tenant's shape:
// a resource app at devtenant.ResourceURI with an application role, and a
// confidential client with a secret and a federated credential trusting
// the development JWT-SVID's issuer, subject and audience.
type entraEmulator struct {
	proc                       *spire.Process
	tokenURL, clientID, secret string
}

// form is the client's token request for grant ("secret" or
// "federated"), the federated one carrying svid.
func (e *entraEmulator) form(grant, svid string) url.Values {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {e.clientID}, "scope": {devtenant.Scope}}
	if grant == "secret" {
		form.Set("client_secret", e.secret)
	} else {
		form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
		form.Set("client_assertion", svid)
	}
	return form
}

// startEntraEmulator starts the peer $GATEWAY_TEST_ENTRA_EMULATOR_BIN on a
// loopback port, serving the gateway's development certificate, trusting
// the development CA (caFile, through SSL_CERT_FILE, which Go's default
// roots read) for its fetch of the issuer's metadata and keys, and
// provisions it through its admin API. It returns nil when the variable is
// not set. Both grants are asked once before it returns, and anything but
// a token fails the benchmark: a misconfigured peer would otherwise be
// measured answering errors.
func startEntraEmulator(b *testing.B, dir, certFile, keyFile, caFile, issuer, svid string, tlsConfig *tls.Config) *entraEmulator {
	b.Helper()
	bin := os.Getenv(entraEmulatorEnv)
	if bin == "" {
		b.Logf("%s is not set: the entra-emulator peer is skipped (docs/benchmarks.md builds it)", entraEmulatorEnv)
		return nil
	}
	claims := svidClaims(b, svid)
	if claims.Issuer != issuer {
		b.Fatalf("the JWT-SVID's issuer %q is not the gateway's %q", claims.Issuer, issuer)
	}
	data := filepath.Join(dir, "entra-emulator")
	if err := os.MkdirAll(data, 0o700); err != nil {
		b.Fatal(err)
	}
	port := loopback.Ports(b, 1)[0]
	proc := spire.StartEnv(b, data, []string{
		"HOST=127.0.0.1", "PORT=" + port, "ORIGIN_MODE=compat", "TENANT_ID=" + devtenant.TenantID, "SEED_ON_START=false",
		"ENTRA_DATA_DIR=" + data, "TLS_CERT=" + certFile, "TLS_KEY=" + keyFile, "SSL_CERT_FILE=" + caFile,
		// An absent file: a config file in the working directory, which
		// it reads by default, must not change what is measured.
		"CONFIG_FILE=" + filepath.Join(data, "absent.json"),
	}, bin)
	origin := "https://localhost:" + port
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfig.Clone()}}
	defer client.CloseIdleConnections()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := client.Get(origin + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if proc.Exited() || time.Now().After(deadline) {
			b.Fatalf("entra-emulator did not serve %s/health: %v\n%s", origin, err, proc.Log())
		}
	}

	admin := func(path string, body any) map[string]any {
		b.Helper()
		raw, _ := json.Marshal(body)
		resp, err := client.Post(origin+"/admin/api/"+path, "application/json", bytes.NewReader(raw))
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		answer, _ := io.ReadAll(resp.Body)
		var out map[string]any
		if resp.StatusCode != http.StatusCreated || json.Unmarshal(answer, &out) != nil {
			b.Fatalf("entra-emulator POST /admin/api/%s: %d %s", path, resp.StatusCode, answer)
		}
		return out
	}
	resource, _ := admin("apps", map[string]any{"displayName": "dev-resource-api", "appIdUri": devtenant.ResourceURI})["id"].(string)
	admin("apps/"+resource+"/roles", map[string]any{"value": devtenant.Role, "allowedMemberTypes": []string{"Application"}})
	e := &entraEmulator{proc: proc, tokenURL: origin + "/" + devtenant.TenantID + "/oauth2/v2.0/token"}
	e.clientID, _ = admin("apps", map[string]any{"displayName": "dev-workload", "isConfidential": true})["id"].(string)
	e.secret, _ = admin("apps/"+e.clientID+"/secrets", map[string]any{"displayName": "bench"})["secretText"].(string)
	admin("apps/"+e.clientID+"/federated-credentials", map[string]any{
		"name": "dev-workload", "issuer": claims.Issuer, "subject": claims.Subject, "audiences": []string(claims.Audience),
	})

	for _, grant := range []string{"secret", "federated"} {
		resp, err := client.PostForm(e.tokenURL, e.form(grant, svid))
		if err != nil {
			b.Fatal(err)
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		if resp.StatusCode != http.StatusOK || json.Unmarshal(answer, &tok) != nil || strings.Count(tok.AccessToken, ".") != 2 {
			b.Fatalf("entra-emulator's %s grant gave no token: %d %s", grant, resp.StatusCode, answer)
		}
	}
	return e
}

// svidClaims reads a JWT-SVID's claims without checking it: the servers
// under load check it.
func svidClaims(b *testing.B, svid string) jwt.Claims {
	b.Helper()
	var c jwt.Claims
	tok, err := jwt.ParseSigned(svid, []jose.SignatureAlgorithm{jose.RS256})
	if err == nil {
		err = tok.UnsafeClaimsWithoutVerification(&c)
	}
	if err != nil || c.Issuer == "" || c.Subject == "" || len(c.Audience) == 0 {
		b.Fatalf("the development JWT-SVID has no issuer, subject or audience (%v): %q", err, svid)
	}
	return c
}
