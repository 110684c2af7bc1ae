package servingtls_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/servingtls"
)

// issue writes a self-signed certificate for localhost named cn.
func issue(t *testing.T, dir, cn string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		DNSNames: []string{"localhost"}, NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	// Write both, then rename, as cert-manager's atomic writer does.
	for name, block := range map[string]*pem.Block{"tls.crt": {Type: "CERTIFICATE", Bytes: der}, "tls.key": {Type: "PRIVATE KEY", Bytes: keyDER}} {
		if err := os.WriteFile(filepath.Join(dir, name+".new"), pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"tls.crt", "tls.key"} {
		if err := os.Rename(filepath.Join(dir, name+".new"), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

// servedName returns the common name of the certificate a TLS server
// built on cfg presents.
func servedName(t *testing.T, addr string) string {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) // the test reads the certificate, it trusts nothing
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
}

func TestFilesFollowRenewalsAndKeepTheLastGoodPair(t *testing.T) {
	dir := t.TempDir()
	issue(t, dir, "first")
	f, err := servingtls.NewFiles(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), servingtls.WithInterval(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go f.Run(ctx)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", f.Config())
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.NotFoundHandler(), ReadHeaderTimeout: time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	addr := ln.Addr().String()
	if got := servedName(t, addr); got != "first" {
		t.Fatalf("served %q", got)
	}

	issue(t, dir, "renewed")
	waitFor(t, func() bool { return servedName(t, addr) == "renewed" })

	// A half-written renewal: a key that does not match the certificate.
	other := t.TempDir()
	issue(t, other, "mismatch")
	key, _ := os.ReadFile(filepath.Join(other, "tls.key"))
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if got := servedName(t, addr); got != "renewed" {
		t.Fatalf("after a broken pair the server presents %q, want the last good one", got)
	}
	issue(t, dir, "fixed")
	waitFor(t, func() bool { return servedName(t, addr) == "fixed" })
	min := f.Config().MinVersion
	if min != tls.VersionTLS12 {
		t.Fatalf("MinVersion %x", min)
	}
}

func TestFilesRefuseABadPairAtStart(t *testing.T) {
	dir := t.TempDir()
	if _, err := servingtls.NewFiles(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")); err == nil || !strings.Contains(err.Error(), "TLS certificate") {
		t.Fatalf("missing files: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "tls.crt"), []byte("not pem"), 0o600)
	os.WriteFile(filepath.Join(dir, "tls.key"), []byte("not pem"), 0o600)
	if _, err := servingtls.NewFiles(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")); err == nil || !strings.Contains(err.Error(), dir) {
		t.Fatalf("garbage files: %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
