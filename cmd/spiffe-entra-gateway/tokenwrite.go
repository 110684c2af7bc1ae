package main

import (
	"context"
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
	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/workload/tokenfile"
)

// writeFlags are the flags of the token-file sidecar, token --write.
type writeFlags struct {
	path          string
	mode          string
	minRemaining  time.Duration
	once          bool
	healthAddr    string
	envFile       string
	authorityHost string
	spiffeID      string
}

func (w *writeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&w.path, "write", "", "keep FILE holding a valid JWT-SVID (for AZURE_FEDERATED_TOKEN_FILE) until stopped")
	fs.StringVar(&w.mode, "mode", "0644", "with --write: permissions of the token and environment files, octal")
	fs.DurationVar(&w.minRemaining, "min-remaining", tokenfile.DefaultMinRemaining, "with --write: the token in the file stays valid at least this long; refreshed before")
	fs.BoolVar(&w.once, "once", false, "with --write: write the file once and exit (for init containers)")
	fs.StringVar(&w.healthAddr, "health-addr", "", "with --write: serve /livez and /readyz on this address, such as :8080")
	fs.StringVar(&w.envFile, "env-file", "", "with --write: also write FILE with AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE and AZURE_AUTHORITY_HOST")
	fs.StringVar(&w.authorityHost, "authority-host", "", "with --env-file: AZURE_AUTHORITY_HOST to write (omitted when empty: the SDKs' default, Entra)")
	fs.StringVar(&w.spiffeID, "spiffe-id", "", "the SPIFFE ID to ask for when the workload has several")
}

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
	opts := []tokenfile.Option{tokenfile.WithAudiences(audiences...), tokenfile.WithMode(os.FileMode(mode)), tokenfile.WithMinRemaining(w.minRemaining)}
	if w.spiffeID != "" {
		id, err := spiffeid.FromString(w.spiffeID)
		if err != nil {
			fmt.Fprintf(stderr, "token: --spiffe-id %q: %v\n", w.spiffeID, err)
			return 2
		}
		opts = append(opts, tokenfile.WithSubject(id))
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
	writer := tokenfile.New(w.path, client, opts...)

	if w.envFile != "" {
		err := tokenfile.WriteEnv(w.envFile, "Written by 'spiffe-entra-gateway token --write'.", [][2]string{
			{"AZURE_CLIENT_ID", clientID},
			{"AZURE_TENANT_ID", tenant},
			{"AZURE_FEDERATED_TOKEN_FILE", w.path},
			{"AZURE_AUTHORITY_HOST", w.authorityHost},
		}, os.FileMode(mode))
		if err != nil {
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
		srv := &http.Server{Handler: healthHandler(writer), ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		logger.Info("health endpoint", "addr", ln.Addr().String())
	}
	logger.Info("keeping the token file current", "path", w.path, "socket", socket, "min_remaining", w.minRemaining)
	_ = writer.Run(ctx)
	logger.Info("stopped; the token file is left in place", "path", w.path)
	return 0
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

// healthHandler answers the kubelet: /livez while the process runs, /readyz
// while the file holds a token valid for the minimum remainder.
func healthHandler(writer *tokenfile.Writer) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := writer.Ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	})
	return mux
}
