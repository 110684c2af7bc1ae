package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/config"
)

// FuzzLoad feeds Load arbitrary files: it must answer with a configuration
// or an error, never panic, and every error line must name a key or the
// file.
func FuzzLoad(f *testing.F) {
	f.Add(minimal)
	f.Add(strings.Replace(minimal, "oidc:\n", "oidc:\n  max_age: 5x\n  isuer: x\n", 1))
	f.Add("oidc: {additional_domains: [{trust_domain: a, issuer: 1}, 2, null]}\nstore: [1]\n")
	f.Add("tls: &a {mode: *a}\n")
	path := filepath.Join(f.TempDir(), "gateway.yaml")
	f.Fuzz(func(t *testing.T, body string) {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := config.Load(path, nil)
		if err != nil && strings.Contains(err.Error(), "JSON") {
			t.Errorf("the error speaks of JSON for a YAML file: %v", err)
		}
	})
}
