package devworkload

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/atomicfile"
	"os"
	"path/filepath"

	"github.com/go-jose/go-jose/v4"
)

// keyFile is the persisted signing key in the key directory.
const keyFile = "jwt-signing-key.pem"

type signingKey struct {
	kid     string
	private *rsa.PrivateKey
	signer  jose.Signer
}

func loadOrCreateKey(dir string) (*signingKey, error) {
	path := filepath.Join(dir, keyFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		k, err := newKey()
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(k.private)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("devworkload: key directory: %w", err)
		}
		if err := atomicfile.Write(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return nil, fmt.Errorf("devworkload: key: %w", err)
		}
		return k, nil
	}
	if err != nil {
		return nil, fmt.Errorf("devworkload: read key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("devworkload: %s holds no PEM key", path)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("devworkload: %s: %w", path, err)
	}
	priv, ok := parsed.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("devworkload: %s holds a %T, not an RSA key", path, parsed)
	}
	return withSigner(priv)
}

func newKey() (*signingKey, error) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("devworkload: generate key: %w", err)
	}
	return withSigner(priv)
}

// withSigner derives the kid (the RFC 7638 thumbprint, stable for a key)
// and the JOSE signer.
func withSigner(priv *rsa.PrivateKey) (*signingKey, error) {
	jwk := jose.JSONWebKey{Key: &priv.PublicKey}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	kid := base64.RawURLEncoding.EncodeToString(tp)
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: priv, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, err
	}
	return &signingKey{kid: kid, private: priv, signer: s}, nil
}

// jwksJSON renders the bundle as the Workload API carries it: a JWKS of
// public keys without "use", as SPIRE's agent sends it.
func jwksJSON(keys []*signingKey) ([]byte, error) {
	set := jose.JSONWebKeySet{}
	for _, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.private.PublicKey, KeyID: k.kid})
	}
	return json.Marshal(set)
}
