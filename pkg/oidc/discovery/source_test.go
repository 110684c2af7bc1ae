package discovery_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/oidc/discovery"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/oidc/keysource"
)

// source is a key source the test sets by hand.
type source struct {
	mu      sync.Mutex
	set     keysource.KeySet
	ok      bool
	status  keysource.Status
	updated chan struct{}
}

func newSource() *source { return &source{updated: make(chan struct{})} }

func (s *source) KeySet() (keysource.KeySet, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.set, s.ok
}

func (s *source) Updated() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.updated
}

func (s *source) Status() keysource.Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status
	st.Received, st.Changed = s.ok, s.set.Changed
	return st
}

func (s *source) Close() error { return nil }

// publish sets the keys as keysource does: ordered by kid, use sig.
func (s *source) publish(keys ...jose.JSONWebKey) {
	sort.Slice(keys, func(i, j int) bool { return keys[i].KeyID < keys[j].KeyID })
	s.mu.Lock()
	defer s.mu.Unlock()
	s.set, s.ok = keysource.KeySet{Keys: keys, Changed: time.Now()}, true
	close(s.updated)
	s.updated = make(chan struct{})
}

func (s *source) setUnavailable(since time.Time, err string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status.UnavailableSince, s.status.Err = since, err
}

// signingKey is a private key with the public JWK keysource would publish.
type signingKey struct {
	priv crypto.Signer
	jwk  jose.JSONWebKey
}

func newRSA(t testing.TB, kid string, bits int) signingKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{priv: k, jwk: jose.JSONWebKey{Key: k.Public(), KeyID: kid, Algorithm: "RS256", Use: "sig"}}
}

func newEC(t testing.TB, kid string) signingKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{priv: k, jwk: jose.JSONWebKey{Key: k.Public(), KeyID: kid, Algorithm: "ES256", Use: "sig"}}
}

func newIssuer(src *source) (*discovery.Issuer, error) {
	return discovery.NewIssuer(src, "https://oidc.example.org")
}

func newHandler(i *discovery.Issuer) (*discovery.Handler, error) {
	return discovery.New([]*discovery.Issuer{i})
}

// canceled is a context that has ended: Run renders once and returns.
func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}
