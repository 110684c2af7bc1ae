package spire_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/dev/devcert"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/loopback"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/spire"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/test/workloadapitest"
)

// TestCheckIssuerOnSPIREsDiscoveryProvider runs `check issuer` against
// SPIRE's own oidc-discovery-provider, fed by a Workload API, as an operator
// who runs it instead of the gateway's discovery provider would: with
// set_key_use Entra accepts it; without, the check warns and still passes.
func TestCheckIssuerOnSPIREsDiscoveryProvider(t *testing.T) {
	bin := spire.Bin(t)
	dir, err := os.MkdirTemp("", "odp-check-") // short: unix socket paths are bounded
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	api := workloadapitest.Start(t, filepath.Join(dir, "agent"))
	paths, _, err := devcert.Ensure(filepath.Join(dir, "tls"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, setKeyUse := range []bool{true, false} {
		t.Run(fmt.Sprint("set_key_use=", setKeyUse), func(t *testing.T) {
			port := loopback.Ports(t, 1)[0]
			issuer := "https://localhost:" + port
			conf := filepath.Join(dir, fmt.Sprintf("odp-%v.conf", setKeyUse))
			if err := os.WriteFile(conf, []byte(fmt.Sprintf(`log_level = "warn"
domains = ["localhost"]
jwt_issuer = "%s"
set_key_use = %v
serving_cert_file {
    cert_file_path = "%s"
    key_file_path = "%s"
    addr = "127.0.0.1:%s"
}
workload_api {
    socket_path = "%s"
    trust_domain = "example.org"
}
`, issuer, setKeyUse, paths.Cert, paths.Key, port, strings.TrimPrefix(api.Addr, "unix://"))), 0o600); err != nil {
				t.Fatal(err)
			}
			spire.Start(t, dir, filepath.Join(bin, "oidc-discovery-provider"), "-config", conf)
			report, out, err := checkIssuer(t, issuer, paths.CA)
			if err != nil || report.Blocking || report.UsableKeys != 1 {
				t.Fatalf("check issuer: %v\n%s", err, out)
			}
			var noUse, privateCA bool
			for _, f := range report.Findings {
				noUse = noUse || f.Severity == "warning" && strings.Contains(f.What, `has no "use"`) && strings.Contains(f.Fix, "set_key_use = true")
				privateCA = privateCA || f.Severity == "warning" && f.Code == 90061
			}
			if !privateCA || noUse == setKeyUse || len(report.Findings) != 1+map[bool]int{true: 0, false: 1}[setKeyUse] {
				t.Errorf("findings:\n%s", out)
			}
		})
	}
}

// TestCheckOnSPIREWithECKeys is SPIRE's default key type, ES256 JWT-SVIDs,
// behind SPIRE's discovery provider reading the server's API: `check issuer`
// and `check assertion` both give Entra's AADSTS5002738 and the fix.
func TestCheckOnSPIREWithECKeys(t *testing.T) {
	bin := spire.Bin(t)
	dir, err := os.MkdirTemp("", "spire-ec-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	paths, _, err := devcert.Ensure(filepath.Join(dir, "tls"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	port := loopback.Ports(t, 1)[0]
	issuer := "https://localhost:" + port
	d := spire.NewServer(t, bin, dir, issuer, "ec-p256")
	conf := filepath.Join(dir, "odp.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`log_level = "warn"
domains = ["localhost"]
jwt_issuer = "%s"
set_key_use = true
serving_cert_file {
    cert_file_path = "%s"
    key_file_path = "%s"
    addr = "127.0.0.1:%s"
}
server_api {
    address = "unix://%s"
}
`, issuer, paths.Cert, paths.Key, port, d.ServerSocket)), 0o600); err != nil {
		t.Fatal(err)
	}
	spire.Start(t, dir, filepath.Join(bin, "oidc-discovery-provider"), "-config", conf)

	report, out, err := checkIssuer(t, issuer, paths.CA)
	var ec bool
	for _, f := range report.Findings {
		ec = ec || f.Code == 5002738 && strings.Contains(f.Fix, `jwt_key_type = "rsa-2048"`)
	}
	if exit := (*exec.ExitError)(nil); !errors.As(err, &exit) || exit.ExitCode() != 1 || !report.Blocking || !ec || report.Metadata.Keys[0].KTY != "EC" {
		t.Fatalf("check issuer on an EC issuer: %v\n%s", err, out)
	}

	svid := strings.TrimSpace(d.MustServer("jwt", "mint", "-spiffeID", workloadID, "-audience", audience))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, gatewayBin, "check", "assertion", "--jwt", "-", "--issuer", issuer, "--subject", workloadID, "--ca", paths.CA)
	cmd.Stdin = strings.NewReader(svid)
	out, err = cmd.Output()
	if exit := (*exec.ExitError)(nil); !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), "AADSTS5002738: Invalid JWT token. 'ES256' is not a supported signature algorithm.") {
		t.Fatalf("check assertion of SPIRE's ES256 JWT-SVID: %v\n%s", err, out)
	}
}

// issuerReport is the part of `check issuer -o json` the tests read.
type issuerReport struct {
	Blocking   bool `json:"blocking"`
	UsableKeys int  `json:"usable_keys"`
	Metadata   struct {
		Keys []struct {
			KTY string `json:"kty"`
		} `json:"keys"`
	} `json:"metadata"`
	Findings []struct {
		Severity string `json:"severity"`
		Code     int    `json:"aadsts"`
		What     string `json:"finding"`
		Fix      string `json:"fix"`
	} `json:"findings"`
}

// checkIssuer runs `check issuer` against a discovery provider that is
// starting, until its JWKS lists a key or 30 seconds pass, and returns the
// report, the output and the command's error.
func checkIssuer(t *testing.T, issuer, ca string) (issuerReport, []byte, error) {
	t.Helper()
	var (
		report issuerReport
		out    []byte
		err    error
	)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		out, err = exec.CommandContext(ctx, gatewayBin, "check", "issuer", issuer, "--ca", ca, "-o", "json").Output()
		cancel()
		if jerr := json.Unmarshal(out, &report); jerr == nil && len(report.Metadata.Keys) > 0 || time.Now().After(deadline) {
			return report, out, err
		}
		time.Sleep(200 * time.Millisecond)
	}
}
