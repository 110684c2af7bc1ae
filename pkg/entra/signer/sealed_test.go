package signer_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/signer"
)

func kek(t *testing.T, fill byte) *signer.KEK {
	t.Helper()
	k, err := signer.ParseKEK(" " + strings.TrimSpace(encode(bytes.Repeat([]byte{fill}, 32))) + "\n")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestKeysAreSealedAtRest: with a key-encryption key, what the store holds
// is no private key (a stolen database or backup signs nothing); the signer
// opens it again, with the key configured now or a previous one, and
// refuses, naming the key, when neither fits.
func TestKeysAreSealedAtRest(t *testing.T) {
	s := openStore(t)
	c := &clock{t: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	ctx := context.Background()
	old, current := kek(t, 1), kek(t, 2)
	sg := signer.New(s, signer.WithClock(c.now), signer.WithKEKs(old))
	if err := sg.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	stored, err := s.ListSigningKeys(ctx)
	if err != nil || len(stored) != 2 {
		t.Fatalf("stored keys: %d %v", len(stored), err)
	}
	for _, k := range stored {
		if _, err := x509.ParsePKCS8PrivateKey(k.PrivateKeyDER); err == nil {
			t.Fatalf("key %s is stored as a plain PKCS#8 private key", k.ID)
		}
	}
	kid := signedBy(t, sg)

	// Rotation: the new key first, the old one kept to open what it sealed.
	rotated := signer.New(s, signer.WithClock(c.now), signer.WithKEKs(current, old))
	if err := rotated.Refresh(ctx); err != nil {
		t.Fatalf("with the old key as a previous one: %v", err)
	}
	if got := signedBy(t, rotated); got != kid {
		t.Fatalf("signed by %s after the rotation, want %s", got, kid)
	}
	err = signer.New(s, signer.WithClock(c.now), signer.WithKEKs(current)).Refresh(ctx)
	if err == nil || !strings.Contains(err.Error(), "is sealed with key-encryption key "+old.ID()+", which is not configured") {
		t.Fatalf("without the key that sealed them: %v", err)
	}
	err = signer.New(s, signer.WithClock(c.now)).Refresh(ctx)
	if err == nil || !strings.Contains(err.Error(), "not configured") {
		t.Fatalf("without any key-encryption key: %v", err)
	}

	// A sealed key moved to another row does not open: the id is bound.
	k := stored[0]
	k.ID, k.NotBefore, k.NotAfter = "moved", k.NotBefore.Add(2400*time.Hour), k.NotAfter.Add(2400*time.Hour)
	if err := s.CreateSigningKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	if err := sg.Refresh(ctx); err == nil || !strings.Contains(err.Error(), "altered or moved") {
		t.Fatalf("a key moved to another id: %v", err)
	}
}

// TestUnsealedKeysStillOpen: keys stored before a key-encryption key was
// configured keep signing until they rotate; new ones are sealed.
func TestUnsealedKeysStillOpen(t *testing.T) {
	s := openStore(t)
	c := &clock{t: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	ctx := context.Background()
	plain := signer.New(s, signer.WithClock(c.now), signer.WithKeyLifetime(time.Hour), signer.WithTokenLifetime(time.Hour))
	if err := plain.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	kid := signedBy(t, plain)
	sealedSigner := signer.New(s, signer.WithClock(c.now), signer.WithKeyLifetime(time.Hour), signer.WithTokenLifetime(time.Hour), signer.WithKEKs(kek(t, 3)))
	if err := sealedSigner.Refresh(ctx); err != nil || signedBy(t, sealedSigner) != kid {
		t.Fatalf("an unsealed key with a key-encryption key configured: %v", err)
	}
	c.add(4 * time.Hour)
	if err := sealedSigner.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	stored, _ := s.ListSigningKeys(ctx)
	for _, k := range stored {
		if _, err := x509.ParsePKCS8PrivateKey(k.PrivateKeyDER); err == nil {
			t.Errorf("after the rotation key %s is still unsealed", k.ID)
		}
	}
}

func TestParseKEK(t *testing.T) {
	for _, bad := range []string{"", "c2hvcnQ=", strings.Repeat("A", 44) + "=", "not base64!"} {
		if _, err := signer.ParseKEK(bad); err == nil || !strings.Contains(err.Error(), "head -c 32 /dev/urandom | base64") {
			t.Errorf("ParseKEK(%q): %v", bad, err)
		}
	}
}

func encode(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
