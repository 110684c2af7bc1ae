package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/gateway"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/config"
)

func serve(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("config", "", "configuration file (YAML; docs/configuration.md); GATEWAY_* variables override its keys")
	dev := fs.Bool("dev", false, "run a development gateway on embedded defaults (development CA, development Workload API, seeded directory); never for production")
	dataDir := fs.String("data-dir", "./data", "directory for the gateway's state")
	entraAddr := fs.String("entra-addr", "127.0.0.1:8443", "address of the Entra endpoint")
	oidcAddr := fs.String("oidc-addr", "127.0.0.1:8444", "address of the OIDC discovery provider")
	healthAddr := fs.String("health-addr", "127.0.0.1:0", "address of /livez and /readyz (default a free port, printed at start)")
	metricsAddr := fs.String("metrics-addr", "127.0.0.1:0", "address of /metrics (default a free port, printed at start)")
	seedFile := fs.String("seed", "", "declarative seed file (YAML) applied at start and whenever it changes; see docs/seed.md")
	anyIssuerExprs := fs.Bool("allow-flexible-credentials-for-any-issuer", false,
		"honour claimsMatchingExpression credentials for every issuer; Entra honours them for GitHub, GitLab and Terraform Cloud only")
	entraHostNames := fs.Bool("entra-host-names", false,
		"with --dev: the development certificate also names login.microsoftonline.com, login.windows.net, sts.windows.net, management.azure.com and graph.microsoft.com, "+
			"so that clients with their defaults work where those names resolve to this gateway (a private hosts file); development and CI only")
	profiling := fs.Bool("profiling", false, "with --dev: serve Go's /debug/pprof/ on the health listener, to profile the gateway under load (health.profiling with --config)")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "serve: unexpected arguments %q\n", fs.Args())
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	switch {
	case *dev && *configFile != "":
		fmt.Fprintln(stderr, "serve: --dev and --config exclude each other: --dev runs on embedded defaults")
		return 2
	case *entraHostNames && !*dev:
		fmt.Fprintln(stderr, "serve: --entra-host-names is for --dev only: a gateway from --config answers as Entra's host names "+
			"only with a certificate for them that you provide and entra.stand_in_for_entra: true (docs/configuration.md)")
		return 2
	case *profiling && !*dev:
		fmt.Fprintln(stderr, "serve: --profiling is for --dev only: with --config, set health.profiling: true (docs/configuration.md)")
		return 2
	case *configFile != "":
		return serveConfig(ctx, *configFile, stderr)
	case !*dev:
		fmt.Fprintln(stderr, "serve: give --config FILE (docs/configuration.md), or --dev for a development gateway")
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "serve: --log-level %q: want debug, info, warn or error\n", *logLevel)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	d, err := gateway.NewDev(ctx, gateway.DevOptions{
		DataDir: *dataDir, EntraAddr: *entraAddr, OIDCAddr: *oidcAddr, HealthAddr: *healthAddr, MetricsAddr: *metricsAddr, SeedFile: *seedFile,
		AnyIssuerExpressions: *anyIssuerExprs, EntraHostNames: *entraHostNames, Profiling: *profiling, Logger: logger,
	})
	if err != nil {
		fmt.Fprintf(stderr, "serve: %v\n", err)
		return 1
	}
	printDevInfo(stdout, d.Info)
	if err := d.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "serve: %v\n", err)
		return 1
	}
	return 0
}

// serveConfig runs a gateway from a configuration file.
func serveConfig(ctx context.Context, path string, stderr io.Writer) int {
	cfg, err := config.Load(path, os.Environ())
	if err != nil {
		fmt.Fprintf(stderr, "serve: %v\n", err)
		return 2
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel)) // validated by config
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	for _, name := range config.UnknownEnv(os.Environ()) {
		logger.Warn("an environment variable looks like an override but names no configuration key; ignored", "variable", name)
	}
	gw, err := gateway.New(ctx, cfg, logger)
	if err != nil {
		fmt.Fprintf(stderr, "serve: %v\n", err)
		return 1
	}
	if err := gw.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "serve: %v\n", err)
		return 1
	}
	return 0
}

func printDevInfo(w io.Writer, i gateway.DevInfo) {
	fmt.Fprintf(w, `spiffe-entra-gateway development mode: not for production.

  Entra endpoint (authority host)  %s
  OIDC issuer                      %s
  Workload API                     %s
  Tenant id                        %s
  Client id                        %s
  Scope                            %s
  CA to trust                      %s
  Federated token file             %s
  Health (/livez, /readyz)         %s
  Metrics                          %s

Load the environment for the Azure SDKs and SPIFFE tools:
  . %s
Then, for example:
  spiffe-entra-gateway token --exchange "$AZURE_AUTHORITY_HOST" --tenant "$AZURE_TENANT_ID" --client-id "$AZURE_CLIENT_ID" --scope "$GATEWAY_DEV_SCOPE"
Azure SDK clients must disable instance discovery (DisableInstanceDiscovery / disableInstanceDiscovery: true).
`, i.AuthorityHost, i.Issuer, i.WorkloadSocket, i.TenantID, i.ClientID, i.Scope, i.CAFile, i.TokenFile, i.HealthURL, i.MetricsURL, i.EnvFile)
}
