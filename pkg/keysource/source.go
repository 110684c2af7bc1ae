// Package keysource supplies the OIDC discovery provider with the JWT
// signing keys of a trust domain, pushed as they change.
package keysource

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// KeySet is a trust domain's public JWT keys, each with kid, kty, use "sig"
// and alg, ordered by kid.
type KeySet struct {
	Keys []jose.JSONWebKey
	// Changed is when the set last changed.
	Changed time.Time
	// Refreshed is when the source last confirmed the set.
	Refreshed time.Time
}

// Source supplies key sets.
type Source interface {
	// KeySet returns the current set; false until the first one arrives.
	KeySet() (KeySet, bool)
	// Updated returns a channel closed at the next change or refresh.
	Updated() <-chan struct{}
	Close() error
}

// publisher holds the current set for a Source implementation.
type publisher struct {
	mu      sync.Mutex
	set     KeySet
	raw     []byte
	ok      bool
	updated chan struct{}
	now     func() time.Time
}

func newPublisher(now func() time.Time) *publisher {
	return &publisher{updated: make(chan struct{}), now: now}
}

func (p *publisher) KeySet() (KeySet, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.set, p.ok
}

func (p *publisher) Updated() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.updated
}

// publish takes a new set of keys. The change time moves only when the
// rendered keys differ, so documents stay byte-identical until then.
func (p *publisher) publish(keys []jose.JSONWebKey) error {
	sort.Slice(keys, func(i, j int) bool { return keys[i].KeyID < keys[j].KeyID })
	raw, err := json.Marshal(keys)
	if err != nil {
		return err
	}
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.ok || !bytes.Equal(raw, p.raw) {
		p.set.Keys, p.set.Changed, p.raw = keys, now, raw
	}
	p.set.Refreshed, p.ok = now, true
	close(p.updated)
	p.updated = make(chan struct{})
	return nil
}

// publicJWK returns the public part of k as the provider publishes it,
// with use "sig" and the alg of its type; keys that cannot sign JWT-SVIDs
// are refused with the reason.
func publicJWK(k jose.JSONWebKey) (jose.JSONWebKey, error) {
	if k.KeyID == "" {
		return jose.JSONWebKey{}, fmt.Errorf("a key has no kid")
	}
	out := jose.JSONWebKey{KeyID: k.KeyID, Use: "sig"}
	switch pub := k.Public().Key.(type) {
	case *rsa.PublicKey:
		out.Key, out.Algorithm = pub, string(jose.RS256)
	case *ecdsa.PublicKey:
		out.Key = pub
		switch pub.Curve {
		case elliptic.P256():
			out.Algorithm = string(jose.ES256)
		case elliptic.P384():
			out.Algorithm = string(jose.ES384)
		default:
			return jose.JSONWebKey{}, fmt.Errorf("key %s: curve %s is not used for JWT-SVIDs", k.KeyID, pub.Curve.Params().Name)
		}
	default:
		return jose.JSONWebKey{}, fmt.Errorf("key %s: %T is not an RSA or EC public key", k.KeyID, k.Key)
	}
	return out, nil
}
