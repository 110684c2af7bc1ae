package keysource

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/spiffe/go-spiffe/v2/bundle/jwtbundle"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// maxFileSize bounds a bundle file; a trust domain's bundle is a few KiB.
const maxFileSize = 1 << 20

// File reads a trust domain's keys from a SPIFFE bundle or a JWKS file, the
// way SPIRE's bundle publishers and `spire-server bundle show -format
// spiffe` write them, and reads it again when it changes. The file is read
// whole every interval: comparing contents rather than modification times
// follows Kubernetes' ConfigMap updates, which swap a symbolic link.
type File struct {
	*publisher
	path     string
	td       spiffeid.TrustDomain
	interval time.Duration
	logger   *slog.Logger
	last     []byte
	cancel   context.CancelFunc
	done     chan struct{}
}

// FileOption configures a File source.
type FileOption func(*File)

// WithInterval sets how often the file is read (default 5 s).
func WithInterval(d time.Duration) FileOption { return func(f *File) { f.interval = d } }

// WithFileLogger sets the logger.
func WithFileLogger(l *slog.Logger) FileOption { return func(f *File) { f.logger = l } }

// NewFile reads path once, failing when it holds no usable key set, then
// follows it until Close.
func NewFile(ctx context.Context, td spiffeid.TrustDomain, path string, opts ...FileOption) (*File, error) {
	f := &File{publisher: newPublisher(), path: path, td: td, interval: 5 * time.Second,
		logger: slog.New(slog.DiscardHandler), done: make(chan struct{})}
	for _, opt := range opts {
		opt(f)
	}
	if err := f.reload(); err != nil {
		return nil, err
	}
	ctx, f.cancel = context.WithCancel(ctx)
	go f.follow(ctx)
	return f, nil
}

func (f *File) follow(ctx context.Context) {
	defer close(f.done)
	t := time.NewTicker(f.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := f.reload(); err != nil {
			if f.fail(err) {
				f.logger.Warn("the bundle file cannot be used; serving the last keys", "error", err)
			}
		} else if f.recovered() {
			f.logger.Info("the bundle file is usable again", "path", f.path)
		}
	}
}

// reload reads the file and publishes its keys if its bytes changed.
func (f *File) reload() error {
	data, err := readBounded(f.path)
	if err != nil {
		return err
	}
	if f.last != nil && bytes.Equal(data, f.last) {
		return nil
	}
	keys, skipped, err := parseBundle(f.td, data)
	for _, e := range skipped {
		f.logger.Warn("skipping a key of the bundle file", "path", f.path, "error", e)
	}
	if err != nil {
		return fmt.Errorf("bundle file %s: %w", f.path, err)
	}
	if len(keys) == 0 {
		return fmt.Errorf("bundle file %s: no JWT key for trust domain %s", f.path, f.td)
	}
	if err := f.publish(keys); err != nil {
		return err
	}
	f.last = data
	f.logger.Info("bundle file read", "path", f.path, "keys", len(keys))
	return nil
}

func readBounded(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("bundle file: %w", err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("bundle file %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("bundle file %s is larger than %d bytes", path, maxFileSize)
	}
	return data, nil
}

// parseBundle reads a SPIFFE bundle (keys with use "jwt-svid" and
// "x509-svid") or a plain JWKS, and returns its JWT keys and why it skipped
// the others.
func parseBundle(td spiffeid.TrustDomain, data []byte) (keys []jose.JSONWebKey, skipped []error, err error) {
	var probe struct {
		Keys []struct {
			Use string `json:"use"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, nil, fmt.Errorf("not a JWKS: %w", err)
	}
	if probe.Keys == nil {
		return nil, nil, errors.New(`not a JWKS: no "keys" member`)
	}
	spiffeFormat := false
	for _, k := range probe.Keys {
		if k.Use == "jwt-svid" || k.Use == "x509-svid" {
			spiffeFormat = true
		}
	}
	var authorities map[string]crypto.PublicKey
	if spiffeFormat {
		b, err := spiffebundle.Parse(td, data)
		if err != nil {
			return nil, nil, err
		}
		authorities = b.JWTAuthorities()
	} else {
		b, err := jwtbundle.Parse(td, data)
		if err != nil {
			return nil, nil, err
		}
		authorities = b.JWTAuthorities()
	}
	keys = publicJWKs(authorities, func(err error) { skipped = append(skipped, err) })
	return keys, skipped, nil
}

// Close stops following the file.
func (f *File) Close() error {
	f.cancel()
	<-f.done
	return nil
}
