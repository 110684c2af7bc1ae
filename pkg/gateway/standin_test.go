package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/dev/devcert"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/config"
)

func TestCheckEntraHostNames(t *testing.T) {
	plain, _, err := devcert.Ensure(filepath.Join(t.TempDir(), "plain"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	entra, _, err := devcert.Ensure(filepath.Join(t.TempDir(), "entra"), time.Now(), "sts.windows.net")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		paths    devcert.Paths
		standIn  bool
		wantErr  string
		wantWarn bool
	}{
		{"own names", plain, false, "", false},
		{"Microsoft's name, not configured", entra, false, "names sts.windows.net, Microsoft's own hosts", false},
		{"Microsoft's name, configured", entra, true, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Defaults()
			cfg.TLS.CertFile, cfg.TLS.KeyFile = tc.paths.Cert, tc.paths.Key
			cfg.Entra.StandInForEntra = tc.standIn
			var log bytes.Buffer
			pair, err := tls.LoadX509KeyPair(tc.paths.Cert, tc.paths.Key)
			if err != nil {
				t.Fatal(err)
			}
			err = checkEntraHostNames(pair.Leaf, cfg, slog.New(slog.NewTextHandler(&log, nil)))
			if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("error %v, want %q", err, tc.wantErr)
			}
			if got := strings.Contains(log.String(), "STANDING IN FOR MICROSOFT ENTRA ID"); got != tc.wantWarn {
				t.Errorf("warning logged: %v, want %v: %s", got, tc.wantWarn, log.String())
			}
		})
	}
}

// TestNewChecksTheLoadedCertificate: New checks the certificate servingtls
// loaded, before anything else starts.
func TestNewChecksTheLoadedCertificate(t *testing.T) {
	entra, _, err := devcert.Ensure(filepath.Join(t.TempDir(), "entra"), time.Now(), "sts.windows.net")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.TLS.CertFile, cfg.TLS.KeyFile = entra.Cert, entra.Key
	_, err = New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "names sts.windows.net, Microsoft's own hosts") {
		t.Fatalf("New: %v, want the stand-in refusal", err)
	}
}
