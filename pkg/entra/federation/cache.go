package federation

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"sync"
	"time"
)

// maxVerified bounds the assertions a Verifier remembers. Workloads present
// one JWT-SVID for minutes (SPIRE caches them, azidentity re-reads the
// same token file, MSAL reuses its assertion), so a few distinct live
// assertions per workload cover a large fleet.
const maxVerified = 1024

// publicKey is what crypto's public keys have in common: Equal compares
// the key material, not the pointer.
type publicKey interface {
	Equal(x crypto.PublicKey) bool
}

// verified is an assertion as parse read it; once its signature verified,
// with the key that verified it and the time past which it is refused
// anyway (exp + ClockSkew).
type verified struct {
	parsed
	key   publicKey
	until time.Time
}

// verifiedBy reports whether key is the key that verified e. The issuer
// cache hands out the same key object until it fetches the issuer's keys
// again, so the pointer usually answers; Equal decides otherwise, so that
// the same key fetched again still counts as the same.
func (e *verified) verifiedBy(key crypto.PublicKey) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if cached, ok := e.key.(*rsa.PublicKey); ok && cached == k {
			return true
		}
	case *ecdsa.PublicKey:
		if cached, ok := e.key.(*ecdsa.PublicKey); ok && cached == k {
			return true
		}
	}
	return e.key.Equal(key)
}

// verifiedCache holds assertions whose signature verified, by the SHA-256
// of the whole assertion, so that the same bytes are not parsed and
// RSA-verified again on every exchange. It holds nothing else: a refused
// assertion is never stored, so an attacker's assertions cannot fill it.
type verifiedCache struct {
	mu      sync.Mutex
	entries map[[sha256.Size]byte]*verified
}

// get returns the entry for sum, nil when there is none or it has expired.
// The entry is shared: it must not be modified.
func (c *verifiedCache) get(sum [sha256.Size]byte, now time.Time) *verified {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[sum]
	if e != nil && now.After(e.until) {
		delete(c.entries, sum)
		return nil
	}
	return e
}

// put stores e under sum. When the cache is full, expired entries go
// first, then, if none had expired, one arbitrary entry: the cost stays
// bounded and far below the signature verification that preceded it.
func (c *verifiedCache) put(sum [sha256.Size]byte, e *verified, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = make(map[[sha256.Size]byte]*verified)
	}
	if _, ok := c.entries[sum]; !ok && len(c.entries) >= maxVerified {
		for k, old := range c.entries {
			if now.After(old.until) {
				delete(c.entries, k)
			}
		}
		for k := range c.entries {
			if len(c.entries) < maxVerified {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[sum] = e
}
