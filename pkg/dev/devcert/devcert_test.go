package devcert

import (
	"bytes"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestEnsureCreatesOnceAndReuses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	now := time.Now()
	p, leaf, err := Ensure(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	ca1, _ := os.ReadFile(p.CA)
	cert1, _ := os.ReadFile(p.Cert)

	pool, err := Pool(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"localhost", "127.0.0.1", "::1"} {
		if _, err := leaf.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: name, CurrentTime: now}); err != nil {
			t.Errorf("leaf does not verify for %s: %v", name, err)
		}
	}
	if _, err := leaf.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "example.com", CurrentTime: now}); err == nil {
		t.Error("leaf verifies for example.com")
	}
	if info, _ := os.Stat(filepath.Join(dir, CAKey)); info.Mode().Perm() != 0o600 {
		t.Errorf("CA key mode %v, want 0600", info.Mode().Perm())
	}

	p2, _, err := Ensure(dir, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	ca2, _ := os.ReadFile(p2.CA)
	cert2, _ := os.ReadFile(p2.Cert)
	if !bytes.Equal(ca1, ca2) || !bytes.Equal(cert1, cert2) {
		t.Error("a second Ensure replaced the CA or the leaf")
	}

	// Close to expiry the leaf is renewed under the same CA.
	p3, renewed, err := Ensure(dir, leaf.Leaf.NotAfter.Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	ca3, _ := os.ReadFile(p3.CA)
	if !bytes.Equal(ca1, ca3) || renewed.Leaf.SerialNumber.Cmp(leaf.Leaf.SerialNumber) == 0 {
		t.Error("the leaf was not renewed under the same CA near its expiry")
	}
}

func TestEnsureRejectsForeignCA(t *testing.T) {
	dir := t.TempDir()
	p, _, err := Ensure(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// A leaf in place of the CA is refused with the path named.
	leaf, _ := os.ReadFile(p.Cert)
	key, _ := os.ReadFile(p.Key)
	os.WriteFile(p.CA, leaf, 0o644)
	os.WriteFile(filepath.Join(dir, CAKey), key, 0o600)
	if _, _, err := Ensure(dir, time.Now()); err == nil || !bytes.Contains([]byte(err.Error()), []byte(p.CA)) {
		t.Errorf("err = %v, want a refusal naming %s", err, p.CA)
	}
}

func TestEnsureAddsExtraNames(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	now := time.Now()
	_, plain, err := Ensure(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	if plain.Leaf.VerifyHostname("login.microsoftonline.com") == nil {
		t.Fatal("the plain leaf names login.microsoftonline.com")
	}
	// A leaf without a name asked for is replaced under the same CA.
	_, named, err := Ensure(dir, now, "login.microsoftonline.com", "sts.windows.net")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"localhost", "login.microsoftonline.com", "sts.windows.net"} {
		if err := named.Leaf.VerifyHostname(name); err != nil {
			t.Errorf("the new leaf: %v", err)
		}
	}
	if named.Leaf.CheckSignatureFrom(mustCA(t, dir)) != nil {
		t.Error("the new leaf is not from the same CA")
	}
	// Asked again, or for fewer names, the leaf is kept.
	_, again, err := Ensure(dir, now, "sts.windows.net")
	if err != nil {
		t.Fatal(err)
	}
	if again.Leaf.SerialNumber.Cmp(named.Leaf.SerialNumber) != 0 {
		t.Error("a leaf naming every name asked for was replaced")
	}
}

func mustCA(t *testing.T, dir string) *x509.Certificate {
	t.Helper()
	ca, _, err := loadOrCreateCA(dir, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ca
}
