package gateway

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/dev/devcert"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/dev/devtenant"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/dev/devworkload"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store/sqlstore"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/config"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/statelock"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/workload/tokenfile"
)

// DevOptions configure a development gateway.
type DevOptions struct {
	DataDir   string // state: database, keys, certificates, dev.env
	EntraAddr string // host:port of the Entra endpoint
	OIDCAddr  string // host:port of the OIDC discovery provider
	// HealthAddr and MetricsAddr serve /livez, /readyz and /metrics
	// (default 127.0.0.1:0, a free port, printed at start).
	HealthAddr  string
	MetricsAddr string
	// SPIFFEID is the identity the development Workload API gives every
	// caller (default spiffe://example.org/dev/workload).
	SPIFFEID string
	// SeedFile, when set, is a declarative seed applied at start and again
	// whenever it changes (docs/seed.md).
	SeedFile string
	// AnyIssuerExpressions honours flexible credentials for every issuer;
	// Entra honours them for GitHub, GitLab and Terraform Cloud only.
	AnyIssuerExpressions bool
	// EntraHostNames puts EntraHostNames in the development certificate and
	// sets entra.stand_in_for_entra, so that clients with their defaults
	// reach this gateway where those names resolve to it (a private hosts
	// file, a pod's hostAliases): for development and CI only.
	EntraHostNames bool
	// Profiling serves Go's /debug/pprof/ on the health listener
	// (health.profiling), to profile the gateway under load.
	Profiling bool
	Logger    *slog.Logger
}

// seedInterval is how often a gateway retries its seed and checks its seed
// file.
const seedInterval = 2 * time.Second

// DevTrustDomain is the development Workload API's trust domain.
var DevTrustDomain = spiffeid.RequireTrustDomainFromString("example.org")

// DevInfo is what a developer needs to use a development gateway.
type DevInfo struct {
	TenantID      string
	ClientID      string
	ClientSecret  string
	ResourceAppID string
	Scope         string // <resource>/.default
	// SubscriptionID is the development tenant's subscription, on which the
	// client is Owner for the ARM shaped API.
	SubscriptionID string

	AuthorityHost  string // https://localhost:<entra port>
	Issuer         string // https://localhost:<oidc port>
	WorkloadSocket string // unix:///.../workload.sock
	SPIFFEID       string // the development workload's identity
	HealthURL      string // http://127.0.0.1:<port>, serving /livez and /readyz
	MetricsURL     string // http://127.0.0.1:<port>/metrics
	CAFile         string
	EnvFile        string
	SecretFile     string
	// TokenFile holds a JWT-SVID of the development workload, kept current,
	// for AZURE_FEDERATED_TOKEN_FILE.
	TokenFile string
}

// Dev is a development gateway: the gateway New assembles from a
// configuration and a seed document, as serve --config runs it, plus what
// only development has: a development CA, a development Workload API
// standing in for a SPIRE agent, the token file and dev.env.
type Dev struct {
	Info DevInfo

	logger    *slog.Logger
	gw        *Server
	workload  *devworkload.Server
	workloadL net.Listener
	wlClient  *workloadapi.Client
	tokenFile *tokenfile.Writer
	lock      *statelock.Lock // on the data directory
}

// NewDev prepares a development gateway: it creates or reuses the state in
// opts.DataDir and binds the listeners, so that the returned Info holds the
// real ports even when the addresses asked for port 0.
func NewDev(ctx context.Context, opts DevOptions) (_ *Dev, err error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.SPIFFEID == "" {
		opts.SPIFFEID = "spiffe://example.org/dev/workload"
	}
	dir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("data directory %q: %w", opts.DataDir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory %s cannot be created: %w", dir, err)
	}
	if err := checkWritable(dir); err != nil {
		return nil, err
	}
	// One process per data directory: a second would rewrite dev.env to
	// its own ports and, when it exits, remove the first one's socket.
	lock, err := statelock.Acquire(filepath.Join(dir, "gateway.lock"), "data directory "+dir)
	if err != nil {
		return nil, err
	}
	d := &Dev{logger: opts.Logger, lock: lock}
	bound := map[string]net.Listener{}
	defer func() {
		if err != nil {
			if d.gw != nil {
				d.gw.close()
			}
			d.close()
			for _, l := range bound {
				_ = l.Close()
			}
		}
	}()

	var names []string
	devHosts := entra.DevHosts
	if opts.EntraHostNames {
		names = EntraHostNames
		devHosts = append(slices.Clone(devHosts), EntraHostNames...)
	}
	paths, _, err := devcert.Ensure(filepath.Join(dir, "tls"), time.Now(), names...)
	if err != nil {
		return nil, err
	}
	// The issuer and the authority name their ports, so the listeners are
	// bound before the configuration is written.
	for _, l := range []struct{ key, addr string }{
		{"oidc.listen_addr", opts.OIDCAddr}, {"entra.listen_addr", opts.EntraAddr},
		{"health.listen_addr", cmp.Or(opts.HealthAddr, "127.0.0.1:0")}, {"metrics.listen_addr", cmp.Or(opts.MetricsAddr, "127.0.0.1:0")},
	} {
		if bound[l.key], err = net.Listen("tcp", l.addr); err != nil {
			delete(bound, l.key)
			return nil, fmt.Errorf("%s %s: %w", l.key, l.addr, err)
		}
	}
	issuer := "https://localhost:" + port(bound["oidc.listen_addr"])
	authority := "https://localhost:" + port(bound["entra.listen_addr"])

	sock := filepath.Join(dir, "workload.sock")
	workloadAddr := "unix://" + sock
	if err := d.startWorkloadAPI(ctx, dir, sock, issuer, opts); err != nil {
		return nil, err
	}

	secretFile := filepath.Join(dir, "dev-client-secret")
	secret, err := devtenant.EnsureSecret(secretFile)
	if err != nil {
		return nil, err
	}
	dbPath := filepath.Join(dir, "gateway.db")
	if err := retireDevSeeder(ctx, dbPath); err != nil {
		return nil, fmt.Errorf("%w; or start with another --data-dir", err)
	}

	kekFile := filepath.Join(dir, "kek")
	if err := ensureDevKEK(kekFile); err != nil {
		return nil, err
	}
	cfg := config.Defaults()
	cfg.DataDir = dir
	cfg.WorkloadAPI.SocketPath = workloadAddr
	cfg.OIDC.ListenAddr = bound["oidc.listen_addr"].Addr().String()
	cfg.OIDC.Domain = config.Domain{TrustDomain: DevTrustDomain.Name(), Issuer: issuer, AllowedHosts: []string{"localhost", "127.0.0.1", "::1"}}
	cfg.Entra = config.Entra{
		ListenAddr: bound["entra.listen_addr"].Addr().String(), SeedFile: opts.SeedFile,
		IssuerCAFile: paths.CA, AllowFlexibleCredentialsForAnyIssuer: opts.AnyIssuerExpressions,
		KeyEncryption: config.KeyEncryption{KeyFile: kekFile}, AllowedHosts: devHosts,
		// The development issuer is this gateway's own OIDC listener.
		IssuerFetch:   config.IssuerFetch{AllowedNetworks: []string{"127.0.0.0/8", "::1/128"}},
		DefaultTenant: devtenant.TenantID, StandInForEntra: opts.EntraHostNames,
	}
	cfg.Store.SQLitePath = dbPath
	cfg.TLS.CertFile, cfg.TLS.KeyFile = paths.Cert, paths.Key
	cfg.Health.ListenAddr = bound["health.listen_addr"].Addr().String()
	cfg.Health.Profiling = opts.Profiling
	cfg.Metrics.ListenAddr = bound["metrics.listen_addr"].Addr().String()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	gwOpts := []Option{WithSeed(devtenant.Document(issuer, opts.SPIFFEID, secretFile))}
	for key, l := range bound {
		gwOpts = append(gwOpts, WithListener(key, l))
	}
	d.gw, err = New(ctx, cfg, opts.Logger, gwOpts...)
	bound = nil // New owns them now, and closes them on failure
	if err != nil {
		return nil, err
	}
	// The development Workload API and store are local: wait for the keys
	// and require the seed and the signer, so that the gateway answers as
	// soon as NewDev returns.
	if err := d.gw.waitForKeys(ctx, 10*time.Second); err != nil {
		return nil, err
	}
	if err := d.gw.startErr; err != nil {
		return nil, fmt.Errorf("the development directory: %w", err)
	}

	d.Info = DevInfo{
		TenantID: devtenant.TenantID, ClientID: devtenant.ClientAppID, ClientSecret: secret,
		ResourceAppID: devtenant.ResourceAppID, Scope: devtenant.Scope, SubscriptionID: devtenant.SubscriptionID,
		AuthorityHost: authority, Issuer: issuer, WorkloadSocket: workloadAddr, SPIFFEID: opts.SPIFFEID,
		HealthURL: "http://" + cfg.Health.ListenAddr, MetricsURL: "http://" + cfg.Metrics.ListenAddr + "/metrics",
		CAFile: paths.CA, EnvFile: filepath.Join(dir, "dev.env"), SecretFile: secretFile, TokenFile: filepath.Join(dir, "federated-token"),
	}
	if err := writeDevEnv(d.Info); err != nil {
		return nil, err
	}
	return d, nil
}

// startWorkloadAPI serves the development Workload API on sock and keeps
// the token file from it.
func (d *Dev) startWorkloadAPI(ctx context.Context, dir, sock, issuer string, opts DevOptions) error {
	var err error
	d.workload, err = devworkload.New(
		devworkload.WithKeyDir(filepath.Join(dir, "workload")),
		devworkload.WithTrustDomain(DevTrustDomain),
		devworkload.WithSPIFFEID(opts.SPIFFEID),
		devworkload.WithIssuer(issuer),
		devworkload.WithLogger(opts.Logger.With("component", "dev-workload-api")),
	)
	if err != nil {
		return err
	}
	if d.workloadL, err = devworkload.ListenUnix(sock); err != nil {
		return err
	}
	go func() { _ = d.workload.Serve(d.workloadL) }()
	if d.wlClient, err = workloadapi.New(ctx, workloadapi.WithAddr("unix://"+sock)); err != nil {
		return fmt.Errorf("development Workload API client: %w", err)
	}
	d.tokenFile = tokenfile.New(filepath.Join(dir, "federated-token"), d.wlClient, tokenfile.WithLogger(opts.Logger.With("component", "token-file")))
	_, err = d.tokenFile.Refresh(ctx)
	return err
}

// retireDevSeeder lets the development tenant's seed document take over a
// data directory an earlier version seeded by other means.
func retireDevSeeder(ctx context.Context, dbPath string) error {
	s, err := sqlstore.OpenSQLite(dbPath)
	if err != nil {
		return err
	}
	defer s.Close()
	return devtenant.Migrate(ctx, s)
}

// WorkloadAPI is the development Workload API server, for tests and demos
// of a key rotation (Rotate, Activate).
func (d *Dev) WorkloadAPI() *devworkload.Server { return d.workload }

func port(l net.Listener) string {
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// checkWritable fails early, naming the directory, when state cannot be
// written there.
func checkWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return fmt.Errorf("data directory %s is not writable: %w", dir, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// Run serves until ctx ends, then releases everything.
func (d *Dev) Run(ctx context.Context) error {
	defer d.close()
	go func() { _ = d.tokenFile.Run(ctx) }() // it logs its own failures and returns when ctx ends
	return d.gw.Run(ctx)
}

func (d *Dev) close() {
	var errs []error
	if d.wlClient != nil {
		errs = append(errs, d.wlClient.Close())
	}
	if d.workload != nil {
		d.workload.Stop()
	}
	errs = append(errs, d.lock.Release())
	if err := errors.Join(errs...); err != nil {
		d.logger.Warn("closing the development gateway", "error", err)
	}
}
