package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/dev/devcert"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/dev/devworkload"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/seed"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store/sqlstore"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/federation/expression"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/oidc/discovery"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/oidc/keysource"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/workload/tokenfile"
)

// DevOptions configure a development gateway.
type DevOptions struct {
	DataDir   string // state: database, keys, certificates, dev.env
	EntraAddr string // host:port of the Entra endpoint
	OIDCAddr  string // host:port of the OIDC discovery provider
	// SPIFFEID is the identity the development Workload API gives every
	// caller (default spiffe://example.org/dev/workload).
	SPIFFEID string
	// SeedFile, when set, is a declarative seed applied at start and again
	// whenever it changes (docs/seed.md).
	SeedFile string
	// AnyIssuerExpressions honours flexible credentials for every issuer;
	// Entra honours them for GitHub, GitLab and Terraform Cloud only.
	AnyIssuerExpressions bool
	Logger               *slog.Logger
}

// seedInterval is how often a development gateway checks its seed file.
const seedInterval = 2 * time.Second

// DevTrustDomain is the development Workload API's trust domain.
var DevTrustDomain = spiffeid.RequireTrustDomainFromString("example.org")

// DevInfo is what a developer needs to use a development gateway.
type DevInfo struct {
	directory.DevSeed
	AuthorityHost  string // https://localhost:<entra port>
	Issuer         string // https://localhost:<oidc port>
	WorkloadSocket string // unix:///.../workload.sock
	SPIFFEID       string // the development workload's identity
	CAFile         string
	EnvFile        string
	SecretFile     string
	// TokenFile holds a JWT-SVID of the development workload, kept current,
	// for AZURE_FEDERATED_TOKEN_FILE.
	TokenFile string
}

// Dev is a development gateway: every part of the gateway on embedded
// defaults, with a development Workload API standing in for a SPIRE agent.
type Dev struct {
	Info DevInfo

	opts   DevOptions
	store  store.Store
	ent    *Entra
	seeder *seed.Applier
	// seedApplied is the seed file's content as applied at start.
	seedApplied []byte
	workload    *devworkload.Server
	keys        keysource.Source
	issuer      *discovery.Issuer
	cert        tls.Certificate
	entra       Listener
	oidc        Listener
	workloadL   net.Listener
	wlClient    *workloadapi.Client
	tokenFile   *tokenfile.Writer
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
	d := &Dev{opts: opts}
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	now := time.Now()

	paths, cert, err := devcert.Ensure(filepath.Join(dir, "tls"), now)
	if err != nil {
		return nil, err
	}
	pool, err := devcert.Pool(paths)
	if err != nil {
		return nil, err
	}
	d.cert = cert

	oidcLn, err := net.Listen("tcp", opts.OIDCAddr)
	if err != nil {
		return nil, fmt.Errorf("OIDC listener on %s: %w", opts.OIDCAddr, err)
	}
	d.oidc.Net = oidcLn
	entraLn, err := net.Listen("tcp", opts.EntraAddr)
	if err != nil {
		return nil, fmt.Errorf("Entra listener on %s: %w", opts.EntraAddr, err)
	}
	d.entra.Net = entraLn
	issuer := "https://localhost:" + port(oidcLn)
	authority := "https://localhost:" + port(entraLn)

	d.store, err = sqlstore.OpenSQLite(filepath.Join(dir, "gateway.db"))
	if err != nil {
		return nil, err
	}

	sock := filepath.Join(dir, "workload.sock")
	d.workload, err = devworkload.New(
		devworkload.WithKeyDir(filepath.Join(dir, "workload")),
		devworkload.WithTrustDomain(DevTrustDomain),
		devworkload.WithSPIFFEID(opts.SPIFFEID),
		devworkload.WithIssuer(issuer),
		devworkload.WithLogger(opts.Logger.With("component", "dev-workload-api")),
	)
	if err != nil {
		return nil, err
	}
	d.workloadL, err = devworkload.ListenUnix(sock)
	if err != nil {
		return nil, err
	}
	go func() { _ = d.workload.Serve(d.workloadL) }()
	workloadAddr := "unix://" + sock

	d.wlClient, err = workloadapi.New(ctx, workloadapi.WithAddr(workloadAddr))
	if err != nil {
		return nil, fmt.Errorf("development Workload API client: %w", err)
	}
	tokenPath := filepath.Join(dir, "federated-token")
	d.tokenFile = tokenfile.New(tokenPath, d.wlClient, tokenfile.WithLogger(opts.Logger.With("component", "token-file")))
	if _, err := d.tokenFile.Refresh(ctx); err != nil {
		return nil, err
	}

	d.keys, err = keysource.NewWorkloadAPI(ctx, DevTrustDomain,
		keysource.WithAddr(workloadAddr),
		keysource.WithLogger(opts.Logger.With("component", "keysource")))
	if err != nil {
		return nil, err
	}
	// The development Workload API is local: wait for its keys, so that the
	// gateway answers discovery as soon as NewDev returns.
	if err := waitForKeys(ctx, d.keys, 10*time.Second); err != nil {
		return nil, err
	}
	d.issuer, err = discovery.NewIssuer(d.keys, issuer,
		discovery.WithAllowedHosts("localhost", "127.0.0.1", "::1"),
		discovery.WithLogger(opts.Logger.With("component", "oidc")))
	if err != nil {
		return nil, err
	}
	provider, err := discovery.New([]*discovery.Issuer{d.issuer})
	if err != nil {
		return nil, err
	}
	d.oidc.Name, d.oidc.Handler = "oidc", provider

	d.ent = NewEntra(d.store, EntraOptions{IssuerRootCAs: pool, AnyIssuerExpressions: opts.AnyIssuerExpressions, Logger: opts.Logger})
	if err := d.ent.Signer.Refresh(ctx); err != nil {
		return nil, err
	}

	secretFile := filepath.Join(dir, "dev-client-secret")
	devSeed, err := directory.EnsureDevSeed(ctx, d.store, directory.DevSeedParams{Issuer: issuer, Subject: opts.SPIFFEID, SecretFile: secretFile}, now)
	if err != nil {
		return nil, err
	}
	d.entra.Name, d.entra.Handler = "entra", d.ent.Handler
	if opts.SeedFile != "" {
		d.seeder = &seed.Applier{Store: d.store, ParseExpression: expression.Check, Logger: opts.Logger.With("component", "seed")}
		if d.seedApplied, err = d.seeder.ApplyFile(ctx, opts.SeedFile); err != nil {
			return nil, fmt.Errorf("seed file %s: %w", opts.SeedFile, err)
		}
	}

	d.Info = DevInfo{
		DevSeed: devSeed, AuthorityHost: authority, Issuer: issuer, WorkloadSocket: workloadAddr, SPIFFEID: opts.SPIFFEID,
		CAFile: paths.CA, EnvFile: filepath.Join(dir, "dev.env"), SecretFile: secretFile, TokenFile: tokenPath,
	}
	if err := writeDevEnv(d.Info); err != nil {
		return nil, err
	}
	return d, nil
}

// WorkloadAPI is the development Workload API server, for tests and demos
// of a key rotation (Rotate, Activate).
func (d *Dev) WorkloadAPI() *devworkload.Server { return d.workload }

// waitForKeys waits until src has its first key set.
func waitForKeys(ctx context.Context, src keysource.Source, timeout time.Duration) error {
	deadline := time.After(timeout)
	for {
		updated := src.Updated()
		if _, ok := src.KeySet(); ok {
			return nil
		}
		select {
		case <-updated:
		case <-deadline:
			return fmt.Errorf("no JWT keys from the development Workload API within %v: %s", timeout, src.Status().Err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

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
	go d.ent.Run(ctx)
	go d.issuer.Run(ctx)
	go d.tokenFile.Run(ctx)
	if d.seeder != nil {
		go d.seeder.Watch(ctx, d.opts.SeedFile, d.seedApplied, seedInterval)
	}
	d.entra.TLS, d.oidc.TLS = tlsConfig(d.cert), tlsConfig(d.cert)
	return serve(ctx, d.opts.Logger, d.entra, d.oidc)
}

func (d *Dev) close() {
	var errs []error
	if d.keys != nil {
		errs = append(errs, d.keys.Close())
	}
	if d.wlClient != nil {
		errs = append(errs, d.wlClient.Close())
	}
	if d.workload != nil {
		d.workload.Stop()
	}
	for _, l := range []net.Listener{d.entra.Net, d.oidc.Net} {
		if l != nil {
			_ = l.Close()
		}
	}
	if d.store != nil {
		errs = append(errs, d.store.Close())
	}
	if err := errors.Join(errs...); err != nil {
		d.opts.Logger.Warn("closing the development gateway", "error", err)
	}
}
