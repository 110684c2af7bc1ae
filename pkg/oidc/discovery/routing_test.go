package discovery_test

import (
	"context"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/oidc/discovery"
)

func TestMethodsAndPaths(t *testing.T) {
	f := newFixture(t, "https://oidc.example.org", nil)
	if resp := f.do(request{target: "https://oidc.example.org/keys"}); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("before any key: status %d", resp.StatusCode)
	}
	f.publish(t, newRSA(t, "a", 2048))
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions, "TRACE"} {
		resp := f.do(request{method: m, target: "https://oidc.example.org" + discoveryPath})
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: status %d Allow %q", m, resp.StatusCode, resp.Header.Get("Allow"))
		}
	}
	for _, p := range []string{"/", "/keys/", "/.well-known/openid-configuration/", "/KEYS", "/.well-known/jwks.json"} {
		if resp := f.do(request{target: "https://oidc.example.org" + p}); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", p, resp.StatusCode)
		}
	}
}

func TestHostAllowlistOnEveryEndpoint(t *testing.T) {
	proxies := discovery.WithTrustedProxies(netip.MustParsePrefix("10.0.0.0/8"))
	f := newFixture(t, "https://oidc.example.org", []discovery.Option{discovery.WithAllowedHosts("oidc.example.org", "oidc.internal")}, proxies)
	f.publish(t, newRSA(t, "a", 2048))
	const untrusted, trusted = "192.0.2.7:5000", "10.1.2.3:5000"
	for _, path := range []string{discoveryPath, "/keys"} {
		for _, tc := range []struct {
			name, host, remote string
			header             http.Header
			want               int
		}{
			{"allowed host", "oidc.example.org", untrusted, nil, 200},
			{"allowed host with port, any case", "OIDC.Example.org:443", untrusted, nil, 200},
			{"second allowed host", "oidc.internal", untrusted, nil, 200},
			{"other host", "evil.example", untrusted, nil, 400},
			{"forwarded host from an untrusted peer is ignored", "evil.example", untrusted, http.Header{"X-Forwarded-Host": {"oidc.example.org"}}, 400},
			{"forwarded host from an untrusted peer cannot turn away", "oidc.example.org", untrusted, http.Header{"X-Forwarded-Host": {"evil.example"}}, 200},
			{"forwarded host from a trusted proxy", "10.1.2.3:8443", trusted, http.Header{"X-Forwarded-Host": {"oidc.example.org"}}, 200},
			{"first forwarded hop from a trusted proxy", "10.1.2.3", trusted, http.Header{"X-Forwarded-Host": {"oidc.example.org, evil.example"}}, 200},
			{"bad forwarded host from a trusted proxy", "oidc.example.org", trusted, http.Header{"X-Forwarded-Host": {"evil.example"}}, 400},
			{"Forwarded from a trusted proxy", "10.1.2.3", trusted, http.Header{"Forwarded": {`for=192.0.2.1;host="oidc.example.org";proto=https`}}, 200},
			{"Forwarded from an untrusted peer", "evil.example", untrusted, http.Header{"Forwarded": {"host=oidc.example.org"}}, 400},
		} {
			req := request{target: "https://" + tc.host + path, remote: tc.remote, header: tc.header}
			resp := f.do(req)
			if resp.StatusCode != tc.want {
				t.Errorf("%s %s: status %d, want %d", path, tc.name, resp.StatusCode, tc.want)
			}
			if tc.want == 400 && strings.Contains(string(body(t, resp)), "evil") {
				t.Errorf("%s %s: the refused host is echoed", path, tc.name)
			}
		}
	}
}

func TestSeveralIssuers(t *testing.T) {
	a, b, c := newSource(), newSource(), newSource()
	issA, err := discovery.NewIssuer(a, "https://oidc.example.org/td-a")
	if err != nil {
		t.Fatal(err)
	}
	issB, err := discovery.NewIssuer(b, "https://oidc.example.org/td-b")
	if err != nil {
		t.Fatal(err)
	}
	issC, err := discovery.NewIssuer(c, "https://oidc.other.org")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{}
	if f.handler, err = discovery.New([]*discovery.Issuer{issA, issB, issC}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i, src := range []*source{a, b, c} {
		go []*discovery.Issuer{issA, issB, issC}[i].Run(ctx)
		src.publish(newRSA(t, []string{"key-a", "key-b", "key-c"}[i], 2048).jwk)
	}
	for !issA.Status().Ready || !issB.Status().Ready || !issC.Status().Ready {
		time.Sleep(time.Millisecond)
	}
	for target, want := range map[string]string{
		"https://oidc.example.org/td-a/keys": "key-a",
		"https://oidc.example.org/td-b/keys": "key-b",
		"https://oidc.other.org/keys":        "key-c",
	} {
		resp := f.do(request{target: target})
		if got := string(body(t, resp)); !strings.Contains(got, `"`+want+`"`) || strings.Count(got, `"kid"`) != 1 {
			t.Errorf("%s: %d %s", target, resp.StatusCode, got)
		}
	}
	if resp := f.do(request{target: "https://oidc.other.org/td-a/keys"}); resp.StatusCode != 400 {
		t.Errorf("td-a's path on td-c's host: status %d, want 400", resp.StatusCode)
	}

	dup, _ := discovery.NewIssuer(newSource(), "https://oidc.example.org/td-a")
	if _, err := discovery.New([]*discovery.Issuer{issA, dup}); err == nil || !strings.Contains(err.Error(), "both serve /td-a") {
		t.Fatalf("two issuers on one path and host: %v", err)
	}
}

func TestPathPrefixAndJWKSURI(t *testing.T) {
	// A proxy strips /tenant before the request reaches the gateway.
	f := newFixture(t, "https://oidc.example.org/tenant", []discovery.Option{discovery.WithPathPrefix("/")})
	f.publish(t, newRSA(t, "a", 2048))
	resp := f.do(request{target: "https://oidc.example.org" + discoveryPath})
	if got := string(body(t, resp)); resp.StatusCode != 200 || !strings.Contains(got, `"issuer": "https://oidc.example.org/tenant"`) || !strings.Contains(got, `"jwks_uri": "https://oidc.example.org/tenant/keys"`) {
		t.Fatalf("status %d: %s", resp.StatusCode, got)
	}
	if resp := f.do(request{target: "https://oidc.example.org/keys"}); resp.StatusCode != 200 {
		t.Fatalf("keys under the stripped prefix: %d", resp.StatusCode)
	}

	g := newFixture(t, "https://oidc.example.org", []discovery.Option{discovery.WithJWKSURI("https://oidc.example.org/spiffe/jwks.json")})
	g.publish(t, newRSA(t, "a", 2048))
	if got := string(body(t, g.do(request{target: "https://oidc.example.org" + discoveryPath}))); !strings.Contains(got, `"jwks_uri": "https://oidc.example.org/spiffe/jwks.json"`) {
		t.Fatalf("discovery: %s", got)
	}
	if resp := g.do(request{target: "https://oidc.example.org/spiffe/jwks.json"}); resp.StatusCode != 200 {
		t.Fatalf("configured jwks path: %d", resp.StatusCode)
	}
}

func TestIssuerValidation(t *testing.T) {
	for _, tc := range []struct {
		issuer string
		opts   []discovery.Option
		want   string
	}{
		{"oidc.example.org", nil, "must be an absolute http(s) URL"},
		{"ftp://oidc.example.org", nil, "must be an absolute http(s) URL"},
		{"https://oidc.example.org?x=1", nil, "without user, query or fragment"},
		{"https://user@oidc.example.org", nil, "without user, query or fragment"},
		{"https://oidc.example.org", []discovery.Option{discovery.WithJWKSURI("/keys")}, `jwks_uri "/keys" must be an absolute http(s) URL with a path`},
		{"https://oidc.example.org", []discovery.Option{discovery.WithPathPrefix("oidc")}, `path prefix "oidc" must start with /`},
		{"https://oidc.example.org", []discovery.Option{discovery.WithAllowedHosts("oidc.example.org:443")}, "must be a bare host name"},
		{"https://oidc.example.org", []discovery.Option{discovery.WithStaleness(0)}, "must be positive"},
	} {
		_, err := discovery.NewIssuer(newSource(), tc.issuer, tc.opts...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.issuer, err, tc.want)
		}
	}
}
