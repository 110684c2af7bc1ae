package k8stest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/dev/devcert"
)

// pki is the cluster's credentials: a CA and a loopback serving
// certificate (the development CA's, which is valid for 127.0.0.1), the
// service-account signing key and the administrator's bearer token.
type pki struct {
	caFile, serverCert, serverKey, saKey, tokenFile string
	caPEM                                           []byte
	token                                           string
	leaf                                            tls.Certificate
}

func newPKI(t testing.TB, dir string) pki {
	t.Helper()
	paths, leaf, err := devcert.Ensure(filepath.Join(dir, "pki"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p := pki{caFile: paths.CA, serverCert: paths.Cert, serverKey: paths.Key, leaf: leaf,
		saKey: filepath.Join(dir, "pki", "sa.key"), tokenFile: filepath.Join(dir, "pki", "tokens.csv")}
	if p.caPEM, err = os.ReadFile(paths.CA); err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// SEC 1, not PKCS #8: the API server reads the public key from this
	// file too, and finds none in a PKCS #8 block.
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.saKey, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	secret := make([]byte, 16)
	rand.Read(secret)
	p.token = hex.EncodeToString(secret)
	if err := os.WriteFile(p.tokenFile, []byte(p.token+",admin,admin-uid,system:masters\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// WebhookServer serves h over HTTPS on a loopback port, with a certificate
// the cluster's CA signed, until the test ends. It returns what an
// admission webhook's clientConfig needs: the server's URL (append the
// path) and the caBundle.
func (c *Cluster) WebhookServer(t testing.TB, h http.Handler) (url string, caBundle []byte) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{c.pki.leaf}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL, c.CAPEM
}
