// Package devcert creates, once, the development certificate authority and
// the localhost serving certificate that `serve --dev` uses, and reuses them on
// later starts so that clients keep trusting the same CA file.
package devcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/atomicfile"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// File names inside the directory given to Ensure.
const (
	CAFile   = "ca.pem"
	CAKey    = "ca-key.pem"
	CertFile = "tls.crt"
	KeyFile  = "tls.key"
)

// DNSNames and IPs are the names the leaf certificate is valid for.
var (
	DNSNames = []string{"localhost"}
	IPs      = []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
)

// Paths are the files Ensure keeps.
type Paths struct {
	CA   string // the file clients trust
	Cert string
	Key  string
}

// Ensure returns the development CA and leaf in dir, creating them if any
// file is missing. The leaf is renewed when less than 30 days remain, or
// when it does not name every one of extraDNSNames (beside DNSNames).
func Ensure(dir string, now time.Time, extraDNSNames ...string) (Paths, tls.Certificate, error) {
	p := Paths{CA: filepath.Join(dir, CAFile), Cert: filepath.Join(dir, CertFile), Key: filepath.Join(dir, KeyFile)}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return p, tls.Certificate{}, fmt.Errorf("devcert: create %s: %w", dir, err)
	}
	caCert, caKey, err := loadOrCreateCA(dir, now)
	if err != nil {
		return p, tls.Certificate{}, err
	}
	if leaf, err := tls.LoadX509KeyPair(p.Cert, p.Key); err == nil && leaf.Leaf != nil &&
		leaf.Leaf.CheckSignatureFrom(caCert) == nil && leaf.Leaf.NotAfter.Sub(now) > 30*24*time.Hour &&
		!slices.ContainsFunc(extraDNSNames, func(n string) bool { return leaf.Leaf.VerifyHostname(n) != nil }) {
		return p, leaf, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return p, tls.Certificate{}, fmt.Errorf("devcert: generate leaf key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "localhost", Organization: []string{"spiffe-entra-gateway development"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(397 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     slices.Concat(DNSNames, extraDNSNames),
		IPAddresses:  IPs,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return p, tls.Certificate{}, fmt.Errorf("devcert: sign leaf: %w", err)
	}
	if err := writeKey(p.Key, key); err != nil {
		return p, tls.Certificate{}, err
	}
	if err := writePEM(p.Cert, "CERTIFICATE", der, 0o644); err != nil {
		return p, tls.Certificate{}, err
	}
	leaf, err := tls.LoadX509KeyPair(p.Cert, p.Key)
	if err != nil {
		return p, tls.Certificate{}, fmt.Errorf("devcert: load new leaf: %w", err)
	}
	return p, leaf, nil
}

func loadOrCreateCA(dir string, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certPath, keyPath := filepath.Join(dir, CAFile), filepath.Join(dir, CAKey)
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err == nil {
		if key, ok := pair.PrivateKey.(*ecdsa.PrivateKey); ok && pair.Leaf != nil && pair.Leaf.IsCA {
			return pair.Leaf, key, nil
		}
		return nil, nil, fmt.Errorf("devcert: %s is not a CA with an ECDSA key; remove it to start over", certPath)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("devcert: load CA %s: %w", certPath, err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("devcert: generate CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "spiffe-entra-gateway development CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("devcert: self-sign CA: %w", err)
	}
	if err := writeKey(keyPath, key); err != nil {
		return nil, nil, err
	}
	if err := writePEM(certPath, "CERTIFICATE", der, 0o644); err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("devcert: encode key: %w", err)
	}
	return writePEM(path, "PRIVATE KEY", der, 0o600)
}

// writePEM writes through atomicfile so a crash never leaves half a
// certificate behind.
func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	if err := atomicfile.Write(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		return fmt.Errorf("devcert: %w", err)
	}
	return nil
}

// Pool returns the system's roots and the CA in paths, for the gateway's
// own clients (which fetch its own OIDC listener in development).
func Pool(paths Paths) (*x509.CertPool, error) {
	data, err := os.ReadFile(paths.CA)
	if err != nil {
		return nil, fmt.Errorf("devcert: read CA: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("devcert: %s holds no certificate", paths.CA)
	}
	return pool, nil
}
