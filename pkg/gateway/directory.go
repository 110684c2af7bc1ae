package gateway

// The directory side of a gateway: its store, the Entra endpoint over it,
// and the seed applied to it.

import (
	"context"
	"crypto/x509"
	"fmt"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/filemode"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/seed"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store/sqlstore"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/federation/expression"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/statelock"
)

// openStore opens the configured store; a SQLite file is locked first,
// for one process per file. It returns a nil interface on failure: a nil
// *sqlstore.Store inside the interface would pass the cleanup's nil check
// and panic in Close.
func (s *Server) openStore(ctx context.Context) (store.Store, error) {
	if s.cfg.Store.Driver == "postgres" {
		st, err := sqlstore.OpenPostgres(ctx, s.cfg.Store.PostgresDSN)
		if err != nil {
			return nil, err
		}
		return st, nil
	}
	path := s.cfg.Store.SQLitePath
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store.sqlite_path: %w", err)
	}
	// The gateway's own data directory is its owner's alone; a directory
	// named elsewhere (such as /tmp) is not the gateway's to change.
	if filepath.Clean(filepath.Dir(path)) == filepath.Clean(s.cfg.DataDir) {
		if err := filemode.Tighten(s.cfg.DataDir, 0o700, s.logger); err != nil {
			return nil, fmt.Errorf("data_dir: %w", err)
		}
	}
	lock, err := statelock.Acquire(path+".lock", "the SQLite database "+path)
	if err != nil {
		return nil, fmt.Errorf("store.sqlite_path: %w", err)
	}
	st, err := sqlstore.OpenSQLite(path, sqlstore.WithLogger(s.logger))
	if err != nil {
		_ = lock.Release()
		return nil, fmt.Errorf("store.sqlite_path: %w", err)
	}
	s.storeLock = lock
	return st, nil
}

// newEntra opens the store and assembles the Entra endpoint over it.
func (s *Server) newEntra(ctx context.Context) error {
	st, err := s.openStore(ctx)
	if err != nil {
		return err
	}
	s.store = st
	opts := EntraOptions{AnyIssuerExpressions: s.cfg.Entra.AllowFlexibleCredentialsForAnyIssuer, DefaultTenant: s.cfg.Entra.DefaultTenant,
		Metrics: s.metrics, Logger: s.logger, AllowedHosts: s.cfg.Entra.AllowedHosts}
	for _, n := range s.cfg.Entra.IssuerFetch.AllowedNetworks {
		opts.IssuerNetworks = append(opts.IssuerNetworks, netip.MustParsePrefix(n)) // checked by Validate
	}
	if opts.KEKs, err = loadKEKs(s.cfg.Entra.KeyEncryption); err != nil {
		return err
	}
	if len(opts.KEKs) == 0 {
		s.logger.Warn("the token signing keys are stored unsealed (entra.key_encryption.allow_unencrypted): a copy of the database can sign tokens")
	}
	if f := s.cfg.Entra.IssuerCAFile; f != "" {
		pem, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("entra.issuer_ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("entra.issuer_ca_file: %s holds no PEM certificate", f)
		}
		opts.IssuerRootCAs = pool
	}
	s.ent = NewEntra(s.store, opts)
	f := s.cfg.Entra.SeedFile
	if f == "" && len(s.opts.seed.Tenants) == 0 {
		return nil
	}
	if f != "" {
		// A broken file stops the start; a store that is down does not:
		// Run applies the file as soon as the store answers.
		data, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("entra.seed_file: %w", err)
		}
		if s.seedFile, err = seed.Parse(data); err != nil {
			return fmt.Errorf("entra.seed_file %s: %w", f, err)
		}
		s.seedData = data
	}
	s.seeder = &seed.Applier{Store: s.store, ParseExpression: expression.Check, Logger: s.logger.With("component", "seed"), Base: s.opts.seed}
	// A first try now, so that a store that answers holds the seed before
	// the listeners open; Run retries what fails.
	s.startErr = s.trySeed(ctx)
	return nil
}

// trySeed applies the seed once and returns why the store did not take it.
func (s *Server) trySeed(ctx context.Context) error {
	what := []any{"path", s.cfg.Entra.SeedFile}
	if s.cfg.Entra.SeedFile == "" {
		what = []any{"seed", "the development tenant"}
	}
	if err := s.seeder.Apply(ctx, s.seedFile); err != nil {
		s.logger.Error("cannot apply the seed file; retrying", append(what, "error", err)...)
		return err
	}
	s.seeded.Store(true)
	s.logger.Info("seed file applied", what...)
	return nil
}

// applySeed applies the seed file, retrying until the store takes it, then
// follows the file's changes.
func (s *Server) applySeed(ctx context.Context) {
	for !s.seeded.Load() {
		select {
		case <-ctx.Done():
			return
		case <-time.After(seedInterval):
		}
		_ = s.trySeed(ctx) // logged; tried again
	}
	if path := s.cfg.Entra.SeedFile; path != "" {
		s.seeder.Watch(ctx, path, s.seedData, seedInterval)
	}
}
