package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/jwtsvid"
	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/health"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/httpserve"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/workload/identityendpoint"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/workload/tokenfile"
)

// writeFlags are the flags of the sidecar: the token file (token --write)
// and the managed-identity endpoint (token --identity-endpoint).
type writeFlags struct {
	path           string
	mode           string
	minRemaining   time.Duration
	once           bool
	healthAddr     string
	envFile        string
	authorityHost  string
	spiffeID       string
	identityAddr   string
	identityHeader string
}

func (w *writeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&w.path, "write", "", "keep FILE holding a valid JWT-SVID (for AZURE_FEDERATED_TOKEN_FILE) until stopped")
	fs.StringVar(&w.mode, "mode", "0644", "with --write or --env-file: permissions of the token and environment files, octal")
	fs.DurationVar(&w.minRemaining, "min-remaining", tokenfile.DefaultMinRemaining, "with --write: the token in the file stays valid at least this long; refreshed before")
	fs.BoolVar(&w.once, "once", false, "with --write: write the file once and exit (for init containers)")
	fs.StringVar(&w.healthAddr, "health-addr", "", "with --write or --identity-endpoint: serve /livez and /readyz on this address, such as :8080")
	fs.StringVar(&w.envFile, "env-file", "", "with --write or --identity-endpoint: also write FILE with the variables the Azure SDKs read (AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE, AZURE_AUTHORITY_HOST, IDENTITY_ENDPOINT, IDENTITY_HEADER, MSI_ENDPOINT, MSI_SECRET)")
	fs.StringVar(&w.authorityHost, "authority-host", "", "AZURE_AUTHORITY_HOST for --env-file (omitted when empty: the SDKs' default, Entra); with --identity-endpoint, where tokens are exchanged (default "+entraAuthorityHost+")")
	fs.StringVar(&w.spiffeID, "spiffe-id", "", "the SPIFFE ID to ask for when the workload has several")
	fs.StringVar(&w.identityAddr, "identity-endpoint", "", "serve the managed-identity endpoint (IMDS, App Service and Cloud Shell protocols) on this loopback or link-local address, such as 127.0.0.1:8081 or 169.254.169.254:80")
	fs.StringVar(&w.identityHeader, "identity-header", "", "with --identity-endpoint: the secret App Service clients send (IDENTITY_HEADER; default $IDENTITY_HEADER, else random)")
}

// entraAuthorityHost is Entra's own authority host, the SDKs' default.
const entraAuthorityHost = "https://login.microsoftonline.com"

func (w *writeFlags) run(socket string, audiences []string, tenant, clientID string, timeout time.Duration, stderr io.Writer) int {
	mode, err := strconv.ParseUint(w.mode, 8, 32)
	if err != nil || mode > 0o777 {
		fmt.Fprintf(stderr, "token: --mode %q: want octal permissions such as 0644\n", w.mode)
		return 2
	}
	if w.minRemaining <= 0 {
		fmt.Fprintf(stderr, "token: --min-remaining %s: want a positive duration\n", w.minRemaining)
		return 2
	}
	params := jwtsvid.Params{Audience: audiences[0], ExtraAudiences: audiences[1:]}
	opts := []tokenfile.Option{tokenfile.WithAudiences(audiences...), tokenfile.WithMode(os.FileMode(mode)), tokenfile.WithMinRemaining(w.minRemaining)}
	if w.spiffeID != "" {
		id, err := spiffeid.FromString(w.spiffeID)
		if err != nil {
			fmt.Fprintf(stderr, "token: --spiffe-id %q: %v\n", w.spiffeID, err)
			return 2
		}
		opts = append(opts, tokenfile.WithSubject(id))
		params.Subject = id
	}
	if w.identityAddr != "" {
		if w.once {
			fmt.Fprintln(stderr, "token: --once writes a file and exits; it cannot serve --identity-endpoint")
			return 2
		}
		if tenant == "" || clientID == "" {
			fmt.Fprintln(stderr, "token: --identity-endpoint needs --tenant and --client-id")
			return 2
		}
		if err := identityendpoint.CheckListenAddr(w.identityAddr); err != nil {
			fmt.Fprintf(stderr, "token: --identity-endpoint: %v\n", err)
			return 2
		}
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	opts = append(opts, tokenfile.WithLogger(logger))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	client, err := workloadapi.New(ctx, workloadapi.WithAddr(socket))
	if err != nil {
		fmt.Fprintf(stderr, "token: Workload API %s: %v\n", socket, err)
		return 1
	}
	defer client.Close()

	env := [][2]string{{"AZURE_CLIENT_ID", clientID}, {"AZURE_TENANT_ID", tenant}, {"AZURE_FEDERATED_TOKEN_FILE", w.path}, {"AZURE_AUTHORITY_HOST", w.authorityHost}}
	var ready func() error
	if w.identityAddr != "" {
		endpoint, err := w.serveIdentity(ctx, client, params, tenant, clientID, logger)
		if err != nil {
			fmt.Fprintf(stderr, "token: --identity-endpoint: %v\n", err)
			return 1
		}
		env = append(env, endpoint...)
		ready = func() error {
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			_, err := client.FetchJWTSVID(ctx, params)
			return err
		}
	}
	var writer *tokenfile.Writer
	if w.path != "" {
		writer = tokenfile.New(w.path, client, opts...)
		ready = writer.Ready
	}
	if w.envFile != "" {
		if err := tokenfile.WriteEnv(w.envFile, "Written by 'spiffe-entra-gateway token'.", env, os.FileMode(mode)); err != nil {
			fmt.Fprintf(stderr, "token: --env-file: %v\n", err)
			return 1
		}
	}
	if w.once {
		return writeOnce(ctx, writer, timeout, logger, stderr)
	}
	if w.healthAddr != "" {
		ln, err := net.Listen("tcp", w.healthAddr)
		if err != nil {
			fmt.Fprintf(stderr, "token: --health-addr: %v\n", err)
			return 1
		}
		// Ready: the file holds a token valid for the minimum remainder, or,
		// without a file, the Workload API hands out SVIDs.
		check := health.Check{Name: "token", Ready: func() (bool, any) {
			if err := ready(); err != nil {
				return false, err.Error()
			}
			return true, nil
		}}
		// It listens on the pod's network (the kubelet probes it there):
		// served with the bounds of every listener of the project, until the
		// signal ends ctx. A broken listener shows as a failing probe.
		go func() {
			_ = httpserve.Serve(ctx, logger, httpserve.Listener{Name: "health", Net: ln, Handler: health.Handler(check)})
		}()
		logger.Info("health endpoint", "addr", ln.Addr().String())
	}
	if writer == nil {
		<-ctx.Done()
		logger.Info("stopped")
		return 0
	}
	logger.Info("keeping the token file current", "path", w.path, "socket", socket, "min_remaining", w.minRemaining)
	_ = writer.Run(ctx)
	logger.Info("stopped; the token file is left in place", "path", w.path)
	return 0
}

// serveIdentity starts the managed-identity endpoint until ctx ends and
// returns the variables that point clients at it.
func (w *writeFlags) serveIdentity(ctx context.Context, client *workloadapi.Client, params jwtsvid.Params,
	tenant, clientID string, logger *slog.Logger) ([][2]string, error) {
	header := cmp.Or(w.identityHeader, os.Getenv("IDENTITY_HEADER"))
	if header == "" {
		header = rand.Text()
	}
	authority := cmp.Or(w.authorityHost, entraAuthorityHost)
	endpoint, err := identityendpoint.New(identityendpoint.Config{
		AuthorityHost: authority, TenantID: tenant, ClientID: clientID, Header: header, Logger: logger,
		Assertion: func(ctx context.Context) (string, error) {
			svid, err := client.FetchJWTSVID(ctx, params)
			if err != nil {
				return "", err
			}
			return svid.Marshal(), nil
		},
	})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", w.identityAddr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: endpoint, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 2 * time.Minute}
	go func() { _ = srv.Serve(ln) }() // ErrServerClosed at shutdown; a broken listener shows as a failing probe
	context.AfterFunc(ctx, func() { srv.Close() })
	base := "http://" + ln.Addr().String()
	logger.Info("managed-identity endpoint", "addr", ln.Addr().String(), "identity_endpoint", base+identityendpoint.MSIPath,
		"authority_host", authority, "tenant", tenant, "client_id", clientID)
	return identityendpoint.Env(base, header), nil
}

// writeOnce writes the file, retrying until the Workload API answers or the
// timeout passes. A token shorter-lived than the minimum remainder is written
// with a warning: an init container's job is to let the application start.
func writeOnce(ctx context.Context, writer *tokenfile.Writer, timeout time.Duration, logger *slog.Logger, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for wait := 250 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		_, err := writer.Refresh(ctx)
		var short *tokenfile.TooShortError
		switch {
		case err == nil:
			return 0
		case errors.As(err, &short):
			logger.Warn("token file written, but it will not stay valid long enough", "error", err)
			return 0
		}
		select {
		case <-ctx.Done():
			fmt.Fprintf(stderr, "token: %v\n", err)
			return 1
		case <-time.After(wait):
		}
	}
}
