package config_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/config"
)

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const minimal = `
oidc:
  trust_domain: example.org
  issuer: https://oidc.example.org
workload_api:
  socket_path: unix:///run/spire/agent.sock
tls:
  cert_file: /tls/tls.crt
  key_file: /tls/tls.key
`

func TestLoadMinimalWithDefaults(t *testing.T) {
	c, err := config.Load(write(t, minimal), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.OIDC.ListenAddr != ":8443" || c.Health.ListenAddr != "127.0.0.1:8008" || c.OIDC.MaxAge.Duration != 5*time.Minute ||
		c.OIDC.Staleness.Duration != 10*time.Minute || !*c.OIDC.SetKeyUse || c.TLS.Mode != "files" || c.Entra.ListenAddr != "" ||
		c.Store.SQLitePath != "/var/lib/spiffe-entra-gateway/gateway.db" {
		t.Fatalf("defaults not applied: %+v", c)
	}
}

func TestLoadFull(t *testing.T) {
	dsnFile := filepath.Join(t.TempDir(), "dsn")
	os.WriteFile(dsnFile, []byte("postgres://u:p@db/gw\n"), 0o600)
	c, err := config.Load(write(t, `
log_level: debug
oidc:
  listen_addr: 0.0.0.0:9443
  trust_domain: example.org
  issuer: https://oidc.example.org/a
  path_prefix: /
  allowed_hosts: [oidc.example.org, oidc.internal]
  additional_domains:
    - trust_domain: other.org
      issuer: https://oidc.other.org
      bundle_file: /bundles/other.json
  trusted_proxies: [10.0.0.0/8]
  max_age: 30s
  set_key_use: false
  staleness: 2m
entra:
  listen_addr: :9444
  seed_file: /seed/seed.yaml
  key_encryption:
    key_file: /secrets/kek/key
store:
  driver: postgres
  postgres_dsn_file: `+dsnFile+`
tls:
  mode: spiffe
workload_api:
  socket_path: unix:///run/spire/agent.sock
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.OIDC.PathPrefix != "/" || len(c.OIDC.AdditionalDomains) != 1 || c.OIDC.AdditionalDomains[0].BundleFile != "/bundles/other.json" ||
		c.OIDC.MaxAge.Duration != 30*time.Second || *c.OIDC.SetKeyUse || c.Store.PostgresDSN != "postgres://u:p@db/gw" ||
		!slices.Equal(c.OIDC.AllowedHosts, []string{"oidc.example.org", "oidc.internal"}) {
		t.Fatalf("config = %+v", c)
	}
}

func TestEnvironmentOverrides(t *testing.T) {
	c, err := config.Load(write(t, minimal), []string{
		"GATEWAY_OIDC_ISSUER=https://oidc.override.org",
		"GATEWAY_OIDC_ALLOWED_HOSTS=a.example, b.example",
		"GATEWAY_OIDC_MAX_AGE=1m",
		"GATEWAY_OIDC_SET_KEY_USE=false",
		"GATEWAY_ENTRA_LISTEN_ADDR=:9444",
		"GATEWAY_STORE_DRIVER=postgres",
		"GATEWAY_STORE_POSTGRES_DSN=postgres://from-env",
		"GATEWAY_ENTRA_KEY_ENCRYPTION_KEY=" + strings.Repeat("A", 43) + "=",
		"PATH=/usr/bin",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.OIDC.Issuer != "https://oidc.override.org" || !slices.Equal(c.OIDC.AllowedHosts, []string{"a.example", "b.example"}) ||
		c.OIDC.MaxAge.Duration != time.Minute || *c.OIDC.SetKeyUse || c.Store.PostgresDSN != "postgres://from-env" || c.Entra.KeyEncryption.Key == "" {
		t.Fatalf("overrides not applied: %+v", c)
	}
	// SPIFFE_ENDPOINT_SOCKET stands in for workload_api.socket_path.
	c, err = config.Load(write(t, strings.Replace(minimal, "socket_path: unix:///run/spire/agent.sock", "{}", 1)), []string{"SPIFFE_ENDPOINT_SOCKET=unix:///x.sock"})
	if err != nil || c.WorkloadAPI.SocketPath != "unix:///x.sock" {
		t.Fatalf("SPIFFE_ENDPOINT_SOCKET: %v %q", err, c.WorkloadAPI.SocketPath)
	}
}

func TestErrorsNameTheKeyAndTheFix(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		env        []string
		want       []string
	}{
		{"unknown key", minimal + "oidc_issuer: x\n", nil, []string{"oidc_issuer: unknown key; the keys here are data_dir, entra, health, log_level, metrics, oidc, store, tls, workload_api", "docs/configuration.md"}},
		{"typo nested", strings.Replace(minimal, "issuer:", "isuer:", 1), nil, []string{"oidc.isuer: unknown key; did you mean oidc.issuer?"}},
		{"every problem at once", strings.Replace(minimal, "oidc:\n", "oidc:\n  max_age: 5x\n  staleness: 300\n  trusted_proxies: 10.0.0.0/8\n  set_key_use: yes please\n", 1) + "log_level: loud\nstore: {driver: mysql, sqlite_pth: /x}\n", nil, []string{
			`oidc.max_age: duration "5x": want a number with a unit`, `oidc.staleness: a duration is a string such as "30s"`,
			"oidc.trusted_proxies: want a list, not the string \"10.0.0.0/8\"", `oidc.set_key_use: want true or false, not the string "yes please"`,
			`log_level: "loud" is not one of debug, info, warn, error`, "store.sqlite_pth: unknown key; did you mean store.sqlite_path?",
			`store.driver: "mysql" is not one of sqlite, postgres`}},
		{"a repeated key", minimal + "log_level: info\nlog_level: debug\n", nil, []string{`"log_level" already set`}},
		{"not YAML", "oidc: [\n", nil, []string{"is not valid YAML", "line"}},
		{"missing issuer and trust domain", "tls: {mode: none}\nworkload_api: {socket_path: unix:///s}\n", nil,
			[]string{"oidc.trust_domain: required", "oidc.issuer: required: the URL federated credentials name, equal to the SPIRE server's jwt_issuer"}},
		{"bad values", minimal + "log_level: loud\n", []string{"GATEWAY_OIDC_TRUSTED_PROXIES=10.0.0.0", "GATEWAY_TLS_MODE=plain"},
			[]string{`log_level: "loud" is not one of debug, info, warn, error`, `oidc.trusted_proxies[0]: "10.0.0.0" is not a CIDR`, `tls.mode: "plain" is not one of files, spiffe, none`}},
		{"duration without unit", strings.Replace(minimal, "oidc:\n", "oidc:\n  max_age: 300\n", 1), nil, []string{`a duration is a string such as "30s"`}},
		{"env duration", minimal, []string{"GATEWAY_OIDC_STALENESS=soon"}, []string{`GATEWAY_OIDC_STALENESS (oidc.staleness): "soon" is not a duration`}},
		{"issuer not a URL", strings.Replace(minimal, "https://oidc.example.org", "oidc.example.org", 1), nil, []string{`oidc.issuer: "oidc.example.org" must be an absolute https URL`}},
		{"no socket", strings.Replace(minimal, "socket_path: unix:///run/spire/agent.sock", "{}", 1), nil, []string{"workload_api.socket_path: required", "SPIFFE_ENDPOINT_SOCKET"}},
		{"socket not a URL", strings.Replace(minimal, "unix:///run/spire/agent.sock", "/run/spire/agent.sock", 1), nil, []string{"workload_api.socket_path", "write unix:///path/to/socket"}},
		{"files without cert", strings.Replace(minimal, "  cert_file: /tls/tls.crt\n", "", 1), nil, []string{"tls.mode files needs tls.cert_file and tls.key_file"}},
		{"cert with spiffe", minimal, []string{"GATEWAY_TLS_MODE=spiffe"}, []string{"tls.cert_file: is set but tls.mode is spiffe"}},
		{"postgres without dsn", minimal, []string{"GATEWAY_ENTRA_LISTEN_ADDR=:9444", "GATEWAY_STORE_DRIVER=postgres", "GATEWAY_ENTRA_KEY_ENCRYPTION_ALLOW_UNENCRYPTED=true"}, []string{"store.postgres_dsn: required with the postgres driver: set GATEWAY_STORE_POSTGRES_DSN"}},
		{"no key-encryption key", minimal, []string{"GATEWAY_ENTRA_LISTEN_ADDR=:9444"},
			[]string{"entra.key_encryption.key_file: required", "head -c 32 /dev/urandom | base64", "GATEWAY_ENTRA_KEY_ENCRYPTION_KEY", "entra.key_encryption.allow_unencrypted: true"}},
		{"two key-encryption keys", minimal, []string{"GATEWAY_ENTRA_LISTEN_ADDR=:9444", "GATEWAY_ENTRA_KEY_ENCRYPTION_KEY=x", "GATEWAY_ENTRA_KEY_ENCRYPTION_KEY_FILE=/k"},
			[]string{"entra.key_encryption.key: and entra.key_encryption.key_file are both set"}},
		{"listen addr", minimal, []string{"GATEWAY_OIDC_LISTEN_ADDR=8443"}, []string{`oidc.listen_addr: "8443" is not a host:port`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Load(write(t, tc.file), tc.env)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if strings.Contains(err.Error(), "JSON") || strings.Contains(err.Error(), "field") {
				t.Errorf("the error speaks of the decoder, not of the YAML file:\n%v", err)
			}
		})
	}
}

func TestUnknownEnvironmentVariablesAreReportedNotRefused(t *testing.T) {
	env := []string{"GATEWAY_OIDC_ISUER=x", "GATEWAY_PORT=tcp://10.0.0.1:443", "GATEWAY_OIDC_ISSUER=https://a.example", "GATEWAY_DEV_SCOPE=s", "HOME=/root"}
	if _, err := config.Load(write(t, minimal), env); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(config.UnknownEnv(env), ","); got != "GATEWAY_OIDC_ISUER,GATEWAY_PORT" {
		t.Fatalf("UnknownEnv = %s", got)
	}
}

func TestDuplicateTrustDomainsAndIssuers(t *testing.T) {
	file := strings.Replace(minimal, "  issuer: https://oidc.example.org\n", `  issuer: https://oidc.example.org
  additional_domains:
    - trust_domain: example.org
      issuer: https://oidc.example.org
`, 1)
	_, err := config.Load(write(t, file), nil)
	if err == nil || !strings.Contains(err.Error(), "oidc.additional_domains[0].trust_domain: example.org is published twice") ||
		!strings.Contains(err.Error(), "oidc.additional_domains[0].issuer: https://oidc.example.org is used twice") {
		t.Fatalf("error = %v", err)
	}
}

// TestDocumentedKeys keeps docs/configuration.md complete: every key and
// its environment variable is in it.
func TestDocumentedKeys(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range append(config.Keys(), "oidc.additional_domains") {
		if !strings.Contains(string(doc), "`"+key+"`") {
			t.Errorf("docs/configuration.md does not document `%s`", key)
		}
		if key != "oidc.additional_domains" && !strings.Contains(string(doc), config.EnvName(key)) {
			t.Errorf("docs/configuration.md does not name %s", config.EnvName(key))
		}
	}
}
