package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/strictyaml"
)

// Validate checks c and returns every problem at once, each naming its key
// and the fix.
func (c *Config) Validate() error {
	return report("invalid configuration", c.problems())
}

// report is the error listing problems under a heading, nil without any.
func report(heading string, problems []strictyaml.Problem) error {
	if len(problems) == 0 {
		return nil
	}
	lines := make([]string, len(problems))
	unknown := false
	for i, p := range problems {
		lines[i] = p.String()
		unknown = unknown || strings.HasPrefix(p.Message, "unknown key")
	}
	hint := ""
	if unknown {
		hint = "\n(keys are listed in docs/configuration.md)"
	}
	return errors.New(heading + ":\n  " + strings.Join(lines, "\n  ") + hint)
}

// problems is every invalid value of c, each with its key and the fix.
func (c *Config) problems() []strictyaml.Problem {
	var errs []strictyaml.Problem
	bad := func(key, format string, args ...any) {
		errs = append(errs, strictyaml.Problem{Key: key, Message: fmt.Sprintf(format, args...)})
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		bad("log_level", "%q is not one of debug, info, warn, error", c.LogLevel)
	}
	checkAddr := func(key, addr string, required bool) {
		if addr == "" {
			if required {
				bad(key, "required: a host:port such as :8443")
			}
			return
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			bad(key, "%q is not a host:port such as :8443 or 127.0.0.1:8443", addr)
		}
	}
	checkAddr("oidc.listen_addr", c.OIDC.ListenAddr, true)
	checkAddr("entra.listen_addr", c.Entra.ListenAddr, false)
	checkAddr("health.listen_addr", c.Health.ListenAddr, true)
	checkAddr("metrics.listen_addr", c.Metrics.ListenAddr, false)

	usesWorkloadAPI := c.TLS.Mode == "spiffe"
	domains := append([]Domain{c.OIDC.Domain}, c.OIDC.AdditionalDomains...)
	seenTD, seenIssuer := map[string]bool{}, map[string]bool{}
	for i, d := range domains {
		key := "oidc"
		if i > 0 {
			key = fmt.Sprintf("oidc.additional_domains[%d]", i-1)
		}
		if d.TrustDomain == "" {
			bad(key+".trust_domain", "required: the SPIFFE trust domain whose keys are published, such as example.org")
		} else if _, err := spiffeid.TrustDomainFromString(d.TrustDomain); err != nil {
			bad(key+".trust_domain", "%q: %v", d.TrustDomain, err)
		} else if seenTD[d.TrustDomain] {
			bad(key+".trust_domain", "%s is published twice", d.TrustDomain)
		}
		seenTD[d.TrustDomain] = true
		if d.Issuer == "" {
			bad(key+".issuer", "required: the URL federated credentials name, equal to the SPIRE server's jwt_issuer, such as https://oidc.example.org")
		} else if u, err := url.Parse(d.Issuer); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.RawQuery != "" || u.Fragment != "" {
			bad(key+".issuer", "%q must be an absolute https URL without query or fragment, such as https://oidc.example.org", d.Issuer)
		} else if seenIssuer[d.Issuer] {
			bad(key+".issuer", "%s is used twice", d.Issuer)
		}
		seenIssuer[d.Issuer] = true
		if d.PathPrefix != "" && !strings.HasPrefix(d.PathPrefix, "/") {
			bad(key+".path_prefix", "%q must start with /", d.PathPrefix)
		}
		if d.BundleFile == "" {
			usesWorkloadAPI = true
		}
	}
	for i, p := range c.OIDC.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			bad(fmt.Sprintf("oidc.trusted_proxies[%d]", i), "%q is not a CIDR such as 10.0.0.0/8", p)
		}
	}
	if c.OIDC.MaxAge.Duration < 0 {
		bad("oidc.max_age", "must not be negative")
	}
	if c.OIDC.Staleness.Duration <= 0 {
		bad("oidc.staleness", "must be positive, such as 10m")
	}
	if c.OIDC.BundlePollInterval.Duration <= 0 {
		bad("oidc.bundle_poll_interval", "must be positive, such as 5s")
	}
	if usesWorkloadAPI {
		if c.WorkloadAPI.SocketPath == "" {
			bad("workload_api.socket_path", "required: the SPIRE agent's socket, such as unix:///run/spire/agent-sockets/spire-agent.sock (or set SPIFFE_ENDPOINT_SOCKET)")
		} else if err := workloadapi.ValidateAddress(c.WorkloadAPI.SocketPath); err != nil {
			bad("workload_api.socket_path", "%q: %v; write unix:///path/to/socket", c.WorkloadAPI.SocketPath, err)
		}
	}

	switch c.TLS.Mode {
	case "files":
		if c.TLS.CertFile == "" || c.TLS.KeyFile == "" {
			bad("tls.cert_file", "tls.mode files needs tls.cert_file and tls.key_file (PEM); or set tls.mode to spiffe, or to none behind a proxy that terminates TLS")
		}
		if c.TLS.ReloadInterval.Duration <= 0 {
			bad("tls.reload_interval", "must be positive, such as 10s")
		}
	case "spiffe", "none":
		if c.TLS.CertFile != "" || c.TLS.KeyFile != "" {
			bad("tls.cert_file", "is set but tls.mode is %s: set tls.mode to files to use it", c.TLS.Mode)
		}
	default:
		bad("tls.mode", "%q is not one of files, spiffe, none", c.TLS.Mode)
	}

	switch c.Store.Driver {
	case "sqlite":
		if c.Entra.ListenAddr != "" && c.Store.SQLitePath == "" {
			bad("store.sqlite_path", "required with the sqlite driver (or set data_dir)")
		}
	case "postgres":
		if c.Entra.ListenAddr != "" && c.Store.PostgresDSN == "" {
			bad("store.postgres_dsn", "required with the postgres driver: set %s or store.postgres_dsn_file", EnvName("store.postgres_dsn"))
		}
	default:
		bad("store.driver", "%q is not one of sqlite, postgres", c.Store.Driver)
	}
	for i, p := range c.Entra.IssuerFetch.AllowedNetworks {
		if _, err := netip.ParsePrefix(p); err != nil {
			bad(fmt.Sprintf("entra.issuer_fetch.allowed_networks[%d]", i), "%q is not a CIDR such as 10.0.0.0/8", p)
		}
	}
	for i, h := range c.Entra.AllowedHosts {
		if _, ipErr := netip.ParseAddr(h); h == "" || strings.ContainsAny(h, "/ []") || (strings.Contains(h, ":") && ipErr != nil) {
			bad(fmt.Sprintf("entra.allowed_hosts[%d]", i), "%q must be a bare host name, such as spiffe-entra-gateway-entra.spire-system.svc", h)
		}
	}
	if c.Entra.ListenAddr != "" && len(c.Entra.AllowedHosts) == 0 {
		bad("entra.allowed_hosts", "required: the host names clients use for the Entra endpoint, such as spiffe-entra-gateway-entra.spire-system.svc")
	}
	if ke := c.Entra.KeyEncryption; c.Entra.ListenAddr != "" {
		switch {
		case ke.Key != "" && ke.KeyFile != "":
			bad("entra.key_encryption.key", "and entra.key_encryption.key_file are both set: keep one")
		case ke.Key == "" && ke.KeyFile == "" && !ke.AllowUnencrypted:
			bad("entra.key_encryption.key_file", "required: a file holding the key-encryption key that seals the token signing keys in the store "+
				"(32 random bytes in base64: head -c 32 /dev/urandom | base64), or set %s; "+
				"entra.key_encryption.allow_unencrypted: true stores them unsealed instead", EnvName("entra.key_encryption.key"))
		}
	}
	return errs
}
