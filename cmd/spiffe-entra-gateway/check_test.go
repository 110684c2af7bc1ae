package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

// TestCheckAgainstTheDevelopmentGateway runs `check` as an operator would
// against a development gateway: its discovery provider as the issuer, its
// Workload API for the JWT-SVID and its directory for the credentials.
func TestCheckAgainstTheDevelopmentGateway(t *testing.T) {
	c := newCLI(t)
	expect := func(wantStatus int, says []string, args ...string) string {
		t.Helper()
		status, out, errOut := c.run(args...)
		if status != wantStatus {
			t.Fatalf("%v: status %d, want %d\n%s%s", args, status, wantStatus, out, errOut)
		}
		for _, s := range says {
			if !strings.Contains(out, s) {
				t.Errorf("%v: output lacks %q:\n%s", args, s, out)
			}
		}
		return out
	}

	// The development CA is not among the roots, as from the internet;
	// the management API is still reached through SSL_CERT_FILE below.
	withCA := c.env
	c.env = append(c.env, "SSL_CERT_FILE="+filepath.Join(t.TempDir(), "none.pem"))
	expect(0, []string{"HTTP 200", "1 Entra verifies RS256 tokens with", "WARNING    AADSTS90061", "trusted only through --ca", "Entra would accept tokens of this issuer"},
		"check", "issuer", c.info.Issuer, "--ca", c.info.CAFile)
	var r struct {
		Blocking bool `json:"blocking"`
		Findings []struct {
			Severity string `json:"severity"`
			Code     int    `json:"aadsts"`
		} `json:"findings"`
	}
	if err := json.Unmarshal([]byte(expect(0, nil, "check", "issuer", "--ca", c.info.CAFile, "-o", "json", c.info.Issuer)), &r); err != nil || r.Blocking || len(r.Findings) != 1 || r.Findings[0].Code != 90061 {
		t.Errorf("json report %+v (%v)", r, err)
	}
	expect(1, []string{"BLOCKING   AADSTS90061", "publicly trusted CA", "Entra would refuse tokens of this issuer"}, "check", "issuer", c.info.Issuer)
	expect(2, nil, "check", "issuer")

	c.env = withCA
	ca := []string{"--ca", c.info.CAFile}
	expect(0, []string{"sub " + c.info.SPIFFEID, "Entra would exchange it: it matches the credential"},
		append([]string{"check", "assertion", "--tenant", c.info.TenantID, "--client-id", c.info.ClientID}, ca...)...)
	expect(1, []string{"AADSTS700212", "nearest    credential", `audience differs: the credential has "api://AzureADTokenExchange", the token "api://other"`},
		append([]string{"check", "assertion", "--tenant", c.info.TenantID, "--client-id", c.info.ClientID, "--audience", "api://other"}, ca...)...)
	expect(1, []string{"HTTP 401 invalid_client", "AADSTS700211: No matching federated identity record found for presented assertion issuer", "issuer differs only by a trailing slash"},
		append([]string{"check", "assertion", "--issuer", c.info.Issuer + "/", "--subject", c.info.SPIFFEID}, ca...)...)
	expect(1, []string{"AADSTS7002138", "subject differs only in case"},
		append([]string{"check", "assertion", "--issuer", c.info.Issuer, "--subject", strings.ToUpper(c.info.SPIFFEID)}, ca...)...)

	// A JWT from a file, checked without the issuer's CA: Entra cannot
	// fetch the keys.
	c.env = append(c.env, "SSL_CERT_FILE="+filepath.Join(t.TempDir(), "none.pem"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	svid, err := workloadapi.FetchJWTSVID(ctx, jwtsvid.Params{Audience: "api://AzureADTokenExchange"}, workloadapi.WithAddr(c.info.WorkloadSocket))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "svid.jwt")
	if err := os.WriteFile(file, []byte(svid.Marshal()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	expect(1, []string{"AADSTS90061: Request to External OIDC endpoint failed."}, "check", "assertion", "--jwt", file, "--issuer", c.info.Issuer, "--subject", c.info.SPIFFEID)

	// The same JWT on standard input, with the CA: exchangeable.
	cmd := command(ctx, "check", "assertion", "--jwt", "-", "--issuer", c.info.Issuer, "--subject", c.info.SPIFFEID, "--ca", c.info.CAFile, "-o", "json")
	cmd.Env = append(cmd.Env, c.env...)
	cmd.Stdin = strings.NewReader(svid.Marshal())
	out, err := cmd.Output()
	var verdict struct {
		Exchangeable bool `json:"exchangeable"`
		Matched      struct {
			Subject string `json:"subject"`
		} `json:"matched"`
	}
	if err != nil || json.Unmarshal(out, &verdict) != nil || !verdict.Exchangeable || verdict.Matched.Subject != c.info.SPIFFEID {
		t.Errorf("check assertion --jwt -: %v\n%s", err, out)
	}
	expect(2, nil, "check", "assertion", "--jwt", file)
}
