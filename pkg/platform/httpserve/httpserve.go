// Package httpserve serves HTTP listeners with the bounds every listener of
// the project shares — header size, timeouts (shorter on a public
// listener), connections in all and per address — and shuts them down
// gracefully: the gateway's, the webhook's and the token sidecar's health
// listener (its loopback managed-identity endpoint keeps a longer write
// timeout than these bounds allow: an exchange may take a minute).
package httpserve

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
	// Public marks a listener open to the internet (the OIDC discovery
	// provider Entra fetches from): shorter timeouts for idle and slow
	// clients.
	Public bool
}

// newServer returns an http.Server with bounded header size and timeouts, so
// that slow or oversized requests cannot hold connections open; a public
// listener's are shorter.
func newServer(h http.Handler, tlsConfig *tls.Config, public bool, logger *slog.Logger) *http.Server {
	srv := &http.Server{
		Handler:           h,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	if public {
		// Its requests are GETs without a body: the whole request within the
		// header's bound. Its connections bound their writes themselves
		// (limitedConn), at a lower cost per request than WriteTimeout: its
		// handlers answer from memory, so a bound on each write is a bound
		// on the response.
		srv.ReadHeaderTimeout, srv.ReadTimeout, srv.IdleTimeout, srv.WriteTimeout = 5*time.Second, 5*time.Second, 30*time.Second, 0
	}
	return srv
}

// A public listener's connections bound each write by publicWriteTimeout
// and may bound a request's reads up to publicReadSlack more tightly than
// ReadTimeout (limitedConn).
const (
	publicWriteTimeout = 30 * time.Second
	publicReadSlack    = 50 * time.Millisecond
)

// prepare returns the server of l and its listener within the connection
// caps, which bounds the writes of a public listener.
func prepare(l Listener, logger *slog.Logger) (*http.Server, *limitListener) {
	srv := newServer(l.Handler, l.TLS, l.Public, logger)
	ln := limitConns(l.Net, maxConns, maxConnsPerAddr)
	if l.Public {
		ln.writeTimeout, ln.readSlack = publicWriteTimeout, publicReadSlack
	}
	return srv, ln
}

// shutdownGrace bounds how long a shutdown waits for the requests in flight
// before it closes the connections still open.
const shutdownGrace = 10 * time.Second

// Serve serves every listener until ctx ends, then shuts them down
// gracefully within shutdownGrace. It returns the first listener's failure,
// or nil.
func Serve(ctx context.Context, logger *slog.Logger, listeners ...Listener) error {
	return serveWithin(ctx, logger, shutdownGrace, listeners...)
}

// serveWithin is Serve with the shutdown's bound given. A shutdown stops
// accepting, logs what it waits for, waits up to grace for the requests in
// flight and then closes whatever is left, logging which it was.
func serveWithin(ctx context.Context, logger *slog.Logger, grace time.Duration, listeners ...Listener) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, l := range listeners {
		srv, ln := prepare(l, logger)
		srv.ConnState = markActive
		g.Go(func() error {
			var err error
			if l.TLS != nil {
				err = srv.ServeTLS(ln, "", "")
			} else {
				err = srv.Serve(ln)
			}
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return fmt.Errorf("%s listener %s: %w", l.Name, l.Net.Addr(), err)
		})
		g.Go(func() error {
			<-ctx.Done()
			start := time.Now()
			logger.Info("shutting down: no new connections; waiting for the requests in flight", "listener", l.Name, "in_flight", ln.inFlight(), "bound", grace)
			shutdown, cancel := context.WithTimeout(context.Background(), grace)
			defer cancel()
			if err := srv.Shutdown(shutdown); err != nil {
				logger.Warn("shutdown bound reached: closing the connections still open", "listener", l.Name, "in_flight", ln.inFlight(), "waited", time.Since(start).Round(time.Millisecond))
				return srv.Close()
			}
			logger.Info("stopped: every request in flight answered", "listener", l.Name, "waited", time.Since(start).Round(time.Millisecond))
			return nil
		})
	}
	return g.Wait()
}
