// Package gateway assembles the gateway's parts into running listeners.
package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"
)

// Listener is one listener and what it serves.
type Listener struct {
	Name    string // for logs: "entra", "oidc", ...
	Net     net.Listener
	Handler http.Handler
	// TLS serves HTTPS with this configuration; nil serves plain HTTP.
	TLS *tls.Config
}

// newServer returns an http.Server with bounded header size and timeouts, so
// that slow or oversized requests cannot hold connections open.
func newServer(h http.Handler, tlsConfig *tls.Config, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
}

// serve serves every listener until ctx ends, then shuts them down
// gracefully.
func serve(ctx context.Context, logger *slog.Logger, listeners ...Listener) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, l := range listeners {
		srv := newServer(l.Handler, l.TLS, logger)
		g.Go(func() error {
			var err error
			if l.TLS != nil {
				err = srv.ServeTLS(l.Net, "", "")
			} else {
				err = srv.Serve(l.Net)
			}
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return fmt.Errorf("%s listener %s: %w", l.Name, l.Net.Addr(), err)
		})
		g.Go(func() error {
			<-ctx.Done()
			shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return srv.Shutdown(shutdown)
		})
	}
	return g.Wait()
}

// tlsConfig serves cert with TLS 1.2 or later.
func tlsConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
}
