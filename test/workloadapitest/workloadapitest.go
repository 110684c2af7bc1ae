// Package workloadapitest runs the development Workload API (a real gRPC
// SPIFFE Workload API server) on a unix socket for tests, and restarts it
// to simulate an agent going away and coming back.
package workloadapitest

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/dev/devworkload"
)

// API is a running development Workload API whose signing key is kept in
// a directory, so that a restarted server signs with the same key.
type API struct {
	// Addr is the socket address for go-spiffe (unix://...).
	Addr string
	// Server is the current server; Start replaces it.
	Server *devworkload.Server

	t    testing.TB
	dir  string
	base []devworkload.Option
}

// Start serves a Workload API in dir with opts (on top of a key directory
// in dir) until the test ends.
func Start(t testing.TB, dir string, opts ...devworkload.Option) *API {
	t.Helper()
	a := &API{t: t, dir: dir, Addr: "unix://" + filepath.Join(dir, "agent.sock"),
		base: append([]devworkload.Option{devworkload.WithKeyDir(filepath.Join(dir, "keys"))}, opts...)}
	a.Start()
	t.Cleanup(func() { a.Server.Stop() })
	return a
}

// Start starts a new server on the socket, with the options given to the
// package's Start followed by opts. Stop the previous one first.
func (a *API) Start(opts ...devworkload.Option) {
	a.t.Helper()
	srv, err := devworkload.New(append(append([]devworkload.Option(nil), a.base...), opts...)...)
	if err != nil {
		a.t.Fatal(err)
	}
	ln, err := devworkload.ListenUnix(strings.TrimPrefix(a.Addr, "unix://"))
	if err != nil {
		a.t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	a.Server = srv
}

// Client returns a go-spiffe client of the API, closed when the test ends.
func (a *API) Client() *workloadapi.Client {
	a.t.Helper()
	c, err := workloadapi.New(context.Background(), workloadapi.WithAddr(a.Addr))
	if err != nil {
		a.t.Fatal(err)
	}
	a.t.Cleanup(func() { c.Close() })
	return c
}
