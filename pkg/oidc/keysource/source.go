// Package keysource supplies the OIDC discovery provider with the JWT
// signing keys of a trust domain, pushed as they change.
package keysource

import (
	"bytes"
	"crypto"
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
}

// Status is the health of a source.
type Status struct {
	// Received is true once a first key set arrived.
	Received bool `json:"received"`
	// Changed is when the key set last changed.
	Changed time.Time `json:"changed,omitzero"`
	// UnavailableSince is when the source stopped answering; zero while it
	// answers. The last keys stay published meanwhile.
	UnavailableSince time.Time `json:"unavailable_since,omitzero"`
	// Err is why the source is unavailable.
	Err string `json:"error,omitempty"`
}

// Source supplies key sets.
type Source interface {
	// KeySet returns the current set; false until the first one arrives.
	KeySet() (KeySet, bool)
	// Updated returns a channel closed at the next change of the set.
	Updated() <-chan struct{}
	// Status reports whether the source is answering.
	Status() Status
	Close() error
}

// publisher holds the current set for a Source implementation.
type publisher struct {
	mu          sync.Mutex
	set         KeySet
	raw         []byte
	ok          bool
	unavailable time.Time
	err         string
	updated     chan struct{}
}

func newPublisher() *publisher {
	return &publisher{updated: make(chan struct{})}
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

func (p *publisher) Status() Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Status{Received: p.ok, Changed: p.set.Changed, UnavailableSince: p.unavailable, Err: p.err}
}

// publish takes a new set of keys and marks the source available. The set
// and its change time move only when the rendered keys differ, so documents
// stay byte-identical until then.
func (p *publisher) publish(keys []jose.JSONWebKey) error {
	sort.Slice(keys, func(i, j int) bool { return keys[i].KeyID < keys[j].KeyID })
	raw, err := json.Marshal(keys)
	if err != nil {
		return err
	}
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.unavailable, p.err = time.Time{}, ""
	if p.ok && bytes.Equal(raw, p.raw) {
		return nil
	}
	p.set, p.raw, p.ok = KeySet{Keys: keys, Changed: now}, raw, true
	close(p.updated)
	p.updated = make(chan struct{})
	return nil
}

// fail marks the source unavailable from now, unless it already is, and
// reports whether this starts an outage.
func (p *publisher) fail(err error) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.err = err.Error()
	if !p.unavailable.IsZero() {
		return false
	}
	p.unavailable = time.Now()
	return true
}

// recovered reports whether the source was unavailable, and marks it
// available.
func (p *publisher) recovered() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	was := !p.unavailable.IsZero()
	p.unavailable, p.err = time.Time{}, ""
	return was
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

// publicJWKs converts authorities keyed by kid, skipping (and reporting)
// the ones that cannot sign JWT-SVIDs.
func publicJWKs(authorities map[string]crypto.PublicKey, skip func(error)) []jose.JSONWebKey {
	keys := make([]jose.JSONWebKey, 0, len(authorities))
	for kid, k := range authorities {
		jwk, err := publicJWK(jose.JSONWebKey{Key: k, KeyID: kid})
		if err != nil {
			skip(err)
			continue
		}
		keys = append(keys, jwk)
	}
	return keys
}
