package keysource_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/oidc/keysource"
)

func rsaKey(t *testing.T) crypto.PublicKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k.Public()
}

func ecKey(t *testing.T, c elliptic.Curve) crypto.PublicKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k.Public()
}

// spiffeBundle is what `spire-server bundle show -format spiffe` writes.
func spiffeBundle(t *testing.T, keys map[string]crypto.PublicKey) []byte {
	t.Helper()
	b := spiffebundle.New(td)
	for kid, k := range keys {
		if err := b.AddJWTAuthority(kid, k); err != nil {
			t.Fatal(err)
		}
	}
	b.SetRefreshHint(time.Minute)
	out, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func plainJWKS(t *testing.T, keys map[string]crypto.PublicKey) []byte {
	t.Helper()
	var set jose.JSONWebKeySet
	for kid, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k, KeyID: kid})
	}
	out, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

func openFile(t *testing.T, path string) *keysource.File {
	t.Helper()
	src, err := keysource.NewFile(context.Background(), td, path, keysource.WithInterval(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

func TestFileReadsBothFormats(t *testing.T) {
	for name, format := range map[string]func(*testing.T, map[string]crypto.PublicKey) []byte{
		"spiffe bundle": spiffeBundle, "jwks": plainJWKS,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bundle.json")
			writeFile(t, path, format(t, map[string]crypto.PublicKey{"b": rsaKey(t), "a": ecKey(t, elliptic.P256()), "c": ecKey(t, elliptic.P384())}))
			src := openFile(t, path)
			set, ok := src.KeySet()
			if !ok || strings.Join(kids(set), ",") != "a,b,c" {
				t.Fatalf("keys = %v %v, want a,b,c in order", ok, kids(set))
			}
			for _, k := range set.Keys {
				want := map[string]string{"a": "ES256", "b": "RS256", "c": "ES384"}[k.KeyID]
				if k.Algorithm != want || k.Use != "sig" {
					t.Errorf("key %s: alg %q use %q, want %s sig", k.KeyID, k.Algorithm, k.Use, want)
				}
			}
		})
	}
}

func TestFileFollowsChangesAndKeepsLastGoodKeys(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bundle.json")
	writeFile(t, path, spiffeBundle(t, map[string]crypto.PublicKey{"one": rsaKey(t)}))
	src := openFile(t, path)
	first, _ := src.KeySet()

	updated := src.Updated()
	writeFile(t, path, spiffeBundle(t, map[string]crypto.PublicKey{"one": first.Keys[0].Key, "two": rsaKey(t)}))
	select {
	case <-updated:
	case <-time.After(5 * time.Second):
		t.Fatal("a changed file was not read again")
	}
	second, _ := src.KeySet()
	if strings.Join(kids(second), ",") != "one,two" {
		t.Fatalf("keys = %v", kids(second))
	}

	writeFile(t, path, []byte(`{"keys": [`))
	waitFor(t, "the broken file to be reported", func() bool { return !src.Status().UnavailableSince.IsZero() })
	if st := src.Status(); !strings.Contains(st.Err, path) {
		t.Fatalf("status error %q does not name the file", st.Err)
	}
	if kept, _ := src.KeySet(); !kept.Changed.Equal(second.Changed) {
		t.Fatal("a broken file replaced the last good keys")
	}

	// Kubernetes updates a mounted ConfigMap by swapping a symbolic link.
	target := filepath.Join(dir, "v2.json")
	writeFile(t, target, plainJWKS(t, map[string]crypto.PublicKey{"three": rsaKey(t)}))
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the swapped file", func() bool { s, _ := src.KeySet(); return strings.Join(kids(s), ",") == "three" })
	waitFor(t, "recovery", func() bool { return src.Status().UnavailableSince.IsZero() })
}

func TestFileRefusals(t *testing.T) {
	dir := t.TempDir()
	big := make([]byte, 2<<20)
	for i := range big {
		big[i] = ' '
	}
	cases := map[string]struct {
		data []byte
		want string
	}{
		"not json":       {[]byte("kid: a"), "not a JWKS"},
		"no keys member": {[]byte(`{"spiffe_refresh_hint": 60}`), `no "keys" member`},
		"empty":          {[]byte(`{"keys": []}`), "no JWT key for trust domain example.org"},
		"too large":      {big, "larger than"},
		"only p521":      {plainJWKS(t, map[string]crypto.PublicKey{"p521": ecKey(t, elliptic.P521())}), "no JWT key"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
			writeFile(t, path, tc.data)
			_, err := keysource.NewFile(context.Background(), td, path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := keysource.NewFile(context.Background(), td, filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("missing file: error = %v", err)
	}
}

func TestFileSkipsUnusableKeysBesideGoodOnes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bundle.json")
	writeFile(t, path, plainJWKS(t, map[string]crypto.PublicKey{"good": rsaKey(t), "p521": ecKey(t, elliptic.P521())}))
	set, _ := openFile(t, path).KeySet()
	if strings.Join(kids(set), ",") != "good" {
		t.Fatalf("keys = %v, want only the RSA key", kids(set))
	}
}
