// Package config reads the gateway's YAML configuration file, applies
// environment overrides and defaults, and validates it with errors that
// name the key and the fix. docs/configuration.md documents every key.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/strictyaml"
)

// EnvPrefix starts the name of every environment override: the key's path
// in upper case with "_" between its parts, such as GATEWAY_OIDC_ISSUER for
// oidc.issuer. Lists are comma-separated.
const EnvPrefix = "GATEWAY_"

// maxFileSize bounds the configuration file.
const maxFileSize = 1 << 20

// Config is the gateway's configuration.
type Config struct {
	// LogLevel is debug, info, warn or error.
	LogLevel string `json:"log_level"`
	// DataDir holds the SQLite database unless store.sqlite_path says
	// otherwise.
	DataDir     string      `json:"data_dir"`
	WorkloadAPI WorkloadAPI `json:"workload_api"`
	OIDC        OIDC        `json:"oidc"`
	Entra       Entra       `json:"entra"`
	Store       Store       `json:"store"`
	TLS         TLS         `json:"tls"`
	Health      Health      `json:"health"`
	Metrics     Metrics     `json:"metrics"`
}

// WorkloadAPI is where the SPIRE agent's Workload API is.
type WorkloadAPI struct {
	// SocketPath is the agent's address, unix:///path or tcp://host:port;
	// default $SPIFFE_ENDPOINT_SOCKET.
	SocketPath string `json:"socket_path"`
}

// OIDC configures the public OIDC discovery provider.
type OIDC struct {
	// ListenAddr is the provider's address.
	ListenAddr string `json:"listen_addr"`
	// Domain is the main trust domain and its issuer.
	Domain
	// AdditionalDomains are more trust domains, each under its own issuer.
	AdditionalDomains []Domain `json:"additional_domains"`
	// TrustedProxies are the networks (CIDR) whose X-Forwarded-Host and
	// Forwarded headers are honoured.
	TrustedProxies []string `json:"trusted_proxies"`
	// MaxAge is the Cache-Control max-age of both documents.
	MaxAge Duration `json:"max_age"`
	// SetKeyUse publishes use "sig" on every key, which Entra expects.
	SetKeyUse *bool `json:"set_key_use"`
	// Staleness is how long the key source may be unavailable before
	// /readyz reports not ready.
	Staleness Duration `json:"staleness"`
	// BundlePollInterval is how often bundle files are read again.
	BundlePollInterval Duration `json:"bundle_poll_interval"`
}

// Domain is one trust domain published under one issuer.
type Domain struct {
	// TrustDomain is the SPIFFE trust domain, such as example.org.
	TrustDomain string `json:"trust_domain"`
	// Issuer is the URL federated credentials name, used byte for byte;
	// it must equal the SPIRE server's jwt_issuer.
	Issuer string `json:"issuer"`
	// JWKSURI is jwks_uri (default: the issuer with /keys appended).
	JWKSURI string `json:"jwks_uri"`
	// PathPrefix is the path requests arrive under (default: the issuer's
	// path); "/" behind a proxy that strips the issuer's path.
	PathPrefix string `json:"path_prefix"`
	// AllowedHosts are the host names requests may name (default: the
	// issuer's host).
	AllowedHosts []string `json:"allowed_hosts"`
	// BundleFile reads the keys from a SPIFFE bundle or JWKS file instead
	// of the Workload API.
	BundleFile string `json:"bundle_file"`
}

// Entra configures the Entra token endpoint.
type Entra struct {
	// ListenAddr is the endpoint's address; empty disables it.
	ListenAddr string `json:"listen_addr"`
	// SeedFile is a declarative seed applied at start and when it changes.
	SeedFile string `json:"seed_file"`
	// AllowedHosts are the host names (without port) requests may name:
	// the authority host clients use, such as the in-cluster Service's
	// names. The host is written into discovery, into issued tokens' iss
	// and into the audience client assertions must name; any other is
	// refused (default: the loopback names).
	AllowedHosts []string `json:"allowed_hosts"`
	// IssuerCAFile holds PEM certificates trusted, beside the system's,
	// for federated issuers' metadata.
	IssuerCAFile string `json:"issuer_ca_file"`
	// AllowFlexibleCredentialsForAnyIssuer honours claimsMatchingExpression
	// credentials for every issuer, which Entra does for GitHub, GitLab
	// and Terraform Cloud only.
	AllowFlexibleCredentialsForAnyIssuer bool `json:"allow_flexible_credentials_for_any_issuer"`
	// DefaultTenant is the tenant the ADFS-shaped authority
	// https://HOST/adfs stands for, the only custom authority az 2.45 can
	// use; none when empty.
	DefaultTenant string `json:"default_tenant"`
	// StandInForEntra lets the serving certificate name Microsoft's own
	// hosts (login.microsoftonline.com, ...), so that clients with their
	// defaults reach the gateway where those names resolve to it: for
	// development and CI only. Without it such a certificate is refused.
	StandInForEntra bool `json:"stand_in_for_entra"`
	// KeyEncryption seals the token signing keys at rest.
	KeyEncryption KeyEncryption `json:"key_encryption"`
	// IssuerFetch limits where federated issuers' metadata is fetched from.
	IssuerFetch IssuerFetch `json:"issuer_fetch"`
}

// IssuerFetch limits the issuer fetcher: by default it connects to public
// addresses only, as Entra fetches issuers from the internet.
type IssuerFetch struct {
	// AllowedNetworks (CIDR) may be connected to although they are
	// loopback, link-local, private or shared address space, such as the
	// cluster network of an in-cluster issuer.
	AllowedNetworks []string `json:"allowed_networks"`
}

// KeyEncryption is the key-encryption key (32 random bytes in base64) that
// seals the token signing keys in the store, so that a copy of the database
// or a backup signs nothing. One of Key and KeyFile is required unless
// AllowUnencrypted is set.
type KeyEncryption struct {
	// Key is the key itself; set it from the environment
	// (GATEWAY_ENTRA_KEY_ENCRYPTION_KEY), not in the file.
	Key string `json:"key"`
	// KeyFile holds the key, such as a mounted Kubernetes Secret.
	KeyFile string `json:"key_file"`
	// PreviousKeyFiles hold keys replaced by Key or KeyFile: they open
	// signing keys sealed before the rotation until those retire.
	PreviousKeyFiles []string `json:"previous_key_files"`
	// AllowUnencrypted stores the signing keys unsealed when no key is
	// set: an explicit choice, for a database protected otherwise.
	AllowUnencrypted bool `json:"allow_unencrypted"`
}

// Store configures the directory's storage.
type Store struct {
	// Driver is sqlite or postgres.
	Driver string `json:"driver"`
	// SQLitePath is the database file (default data_dir/gateway.db).
	SQLitePath string `json:"sqlite_path"`
	// PostgresDSN is the PostgreSQL connection string; prefer the
	// environment (GATEWAY_STORE_POSTGRES_DSN) or postgres_dsn_file.
	PostgresDSN string `json:"postgres_dsn"`
	// PostgresDSNFile holds the connection string, such as a mounted
	// Secret.
	PostgresDSNFile string `json:"postgres_dsn_file"`
}

// TLS configures how the OIDC and Entra listeners serve TLS.
type TLS struct {
	// Mode is files, spiffe or none.
	Mode string `json:"mode"`
	// CertFile and KeyFile are PEM files, read again when they change.
	CertFile string `json:"cert_file"`
	KeyFile  string `json:"key_file"`
	// ReloadInterval is how often the files are checked.
	ReloadInterval Duration `json:"reload_interval"`
}

// Health configures the liveness and readiness endpoints.
type Health struct {
	// ListenAddr serves /livez and /readyz over plain HTTP.
	ListenAddr string `json:"listen_addr"`
	// Profiling adds Go's /debug/pprof/ handlers to the health listener,
	// for finding where the CPU goes under load.
	Profiling bool `json:"profiling"`
}

// Metrics configures the Prometheus endpoint.
type Metrics struct {
	// ListenAddr serves /metrics over plain HTTP; empty turns it off.
	ListenAddr string `json:"listen_addr"`
}

// Duration is a time.Duration written as "30s" or "5m".
type Duration struct{ time.Duration }

// UnmarshalJSON reads "30s", "5m", "1h".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration is a string such as \"30s\" or \"5m\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: want a number with a unit, such as \"30s\" or \"5m\"", s)
	}
	d.Duration = v
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// Defaults returns the configuration every file starts from.
func Defaults() Config {
	on := true
	return Config{
		LogLevel: "info",
		DataDir:  "/var/lib/spiffe-entra-gateway",
		OIDC: OIDC{
			ListenAddr:         ":8443",
			MaxAge:             Duration{5 * time.Minute},
			SetKeyUse:          &on,
			Staleness:          Duration{10 * time.Minute},
			BundlePollInterval: Duration{5 * time.Second},
		},
		Entra:   Entra{AllowedHosts: []string{"localhost", "127.0.0.1", "::1"}},
		Store:   Store{Driver: "sqlite"},
		TLS:     TLS{Mode: "files", ReloadInterval: Duration{10 * time.Second}},
		Health:  Health{ListenAddr: "127.0.0.1:8008"},
		Metrics: Metrics{ListenAddr: "127.0.0.1:9090"},
	}
}

// Load reads path over the defaults, applies the environment overrides in
// env (os.Environ's form) and validates the result.
func Load(path string, env []string) (Config, error) {
	c := Defaults()
	var fromFile strictyaml.Problems
	if path != "" {
		data, err := readFile(path)
		if err != nil {
			return Config{}, err
		}
		// The values without problems are set, so that the checks below
		// report theirs in the same error.
		if err := strictyaml.Decode(data, &c); err != nil && !errors.As(err, &fromFile) {
			return Config{}, fmt.Errorf("configuration file %s %w", path, err)
		}
	}
	if err := applyEnv(&c, env); err != nil {
		return Config{}, err
	}
	if c.WorkloadAPI.SocketPath == "" {
		c.WorkloadAPI.SocketPath = lookup(env, "SPIFFE_ENDPOINT_SOCKET")
	}
	if c.Store.SQLitePath == "" && c.DataDir != "" {
		c.Store.SQLitePath = strings.TrimSuffix(c.DataDir, "/") + "/gateway.db"
	}
	if c.Store.PostgresDSNFile != "" && c.Store.PostgresDSN == "" {
		dsn, err := readFile(c.Store.PostgresDSNFile)
		if err != nil {
			return Config{}, fmt.Errorf("store.postgres_dsn_file: %w", err)
		}
		c.Store.PostgresDSN = strings.TrimSpace(string(dsn))
	}
	problems := []strictyaml.Problem(fromFile)
	for _, p := range c.problems() {
		// A value the file had wrong is reported once, as it was written.
		if !slices.ContainsFunc(fromFile, func(f strictyaml.Problem) bool { return f.Key == p.Key }) {
			problems = append(problems, p)
		}
	}
	heading := "invalid configuration"
	if path != "" {
		heading = "configuration file " + path + " is invalid"
	}
	if err := report(heading, problems); err != nil {
		return Config{}, err
	}
	return c, nil
}

func readFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxFileSize {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxFileSize)
	}
	return os.ReadFile(path)
}

func lookup(env []string, name string) string {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}
