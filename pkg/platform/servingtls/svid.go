package servingtls

import (
	"context"
	"crypto/tls"
	"fmt"

	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/workloadapi"
)

// SVID serves the gateway's own X.509-SVID, rotated by the Workload API.
// Clients must trust the trust domain's CA: Entra does not, so the OIDC
// listener uses it behind a proxy or mesh that does.
type SVID struct {
	source *workloadapi.X509Source
}

// NewSVID waits for the first X.509-SVID from the Workload API at addr.
func NewSVID(ctx context.Context, addr string) (*SVID, error) {
	src, err := workloadapi.NewX509Source(ctx, workloadapi.WithClientOptions(workloadapi.WithAddr(addr)))
	if err != nil {
		return nil, fmt.Errorf("X.509-SVID from the Workload API at %s: %w", addr, err)
	}
	return &SVID{source: src}, nil
}

// Config returns a server configuration (TLS 1.2 or later) presenting the
// current SVID, without client authentication.
func (s *SVID) Config() *tls.Config {
	c := tlsconfig.TLSServerConfig(s.source)
	c.MinVersion = tls.VersionTLS12
	return c
}

// Close stops following the Workload API.
func (s *SVID) Close() error { return s.source.Close() }
