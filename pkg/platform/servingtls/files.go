// Package servingtls provides the certificates the gateway's listeners
// serve: PEM files read again when they change (cert-manager,
// spiffe-helper), or the gateway's own X.509-SVID from the Workload API.
package servingtls

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"
)

// Files serves a certificate chain and key from PEM files. The files are
// read every interval and, when their bytes changed and form a valid pair,
// replace the served certificate; a broken pair keeps the last good one.
type Files struct {
	certFile, keyFile string
	interval          time.Duration
	logger            *slog.Logger

	cert              atomic.Pointer[tls.Certificate]
	lastCert, lastKey []byte
	failing           bool
}

// Option configures Files.
type Option func(*Files)

// WithInterval sets how often the files are read (default 10 s).
func WithInterval(d time.Duration) Option { return func(f *Files) { f.interval = d } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(f *Files) { f.logger = l } }

// NewFiles reads the pair once and fails if it is not usable.
func NewFiles(certFile, keyFile string, opts ...Option) (*Files, error) {
	f := &Files{certFile: certFile, keyFile: keyFile, interval: 10 * time.Second, logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(f)
	}
	if _, err := f.reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// reload reads both files and reports whether the certificate changed.
func (f *Files) reload() (bool, error) {
	certPEM, err := os.ReadFile(f.certFile)
	if err != nil {
		return false, fmt.Errorf("TLS certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(f.keyFile)
	if err != nil {
		return false, fmt.Errorf("TLS key: %w", err)
	}
	if bytes.Equal(certPEM, f.lastCert) && bytes.Equal(keyPEM, f.lastKey) {
		return false, nil
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return false, fmt.Errorf("TLS certificate %s and key %s: %w", f.certFile, f.keyFile, err)
	}
	f.cert.Store(&cert)
	f.lastCert, f.lastKey = certPEM, keyPEM
	return true, nil
}

// Run reads the files again every interval until ctx ends.
func (f *Files) Run(ctx context.Context) {
	t := time.NewTicker(f.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changed, err := f.reload()
		switch {
		case err != nil && !f.failing:
			f.failing = true
			f.logger.Error("cannot read the TLS certificate again; serving the last one", "error", err)
		case err == nil && changed:
			f.failing = false
			f.logger.Info("serving a new TLS certificate", "cert_file", f.certFile, "not_after", f.cert.Load().Leaf.NotAfter)
		case err == nil:
			f.failing = false
		}
	}
}

// Config returns a server configuration (TLS 1.2 or later) that serves
// the current certificate.
func (f *Files) Config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return f.cert.Load(), nil
		},
	}
}
