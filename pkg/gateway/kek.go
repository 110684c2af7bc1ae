package gateway

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/signer"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/config"
)

// loadKEKs reads the configured key-encryption keys, the current one first.
func loadKEKs(c config.KeyEncryption) ([]*signer.KEK, error) {
	var keks []*signer.KEK
	add := func(key, text string) error {
		k, err := signer.ParseKEK(text)
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		keks = append(keks, k)
		return nil
	}
	readFile := func(key, file string) error {
		data, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		return add(key+" "+file, string(data))
	}
	switch {
	case c.Key != "":
		if err := add(config.EnvName("entra.key_encryption.key"), c.Key); err != nil {
			return nil, err
		}
	case c.KeyFile != "":
		if err := readFile("entra.key_encryption.key_file", c.KeyFile); err != nil {
			return nil, err
		}
	case len(c.PreviousKeyFiles) > 0:
		return nil, errors.New("entra.key_encryption.previous_key_files: set only beside key_file or key, the key that replaced them")
	}
	for _, f := range c.PreviousKeyFiles {
		if err := readFile("entra.key_encryption.previous_key_files", f); err != nil {
			return nil, err
		}
	}
	return keks, nil
}

// ensureDevKEK creates the development gateway's key-encryption key in
// file (0600) on first start, so that development runs the sealed path
// production runs.
func ensureDevKEK(file string) error {
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		return err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return err
	}
	if err := os.WriteFile(file, []byte(base64.StdEncoding.EncodeToString(raw)+"\n"), 0o600); err != nil {
		return fmt.Errorf("development key-encryption key %s: %w", file, err)
	}
	return nil
}
