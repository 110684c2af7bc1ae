package issuermeta

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Document is one document of an issuer's metadata as it was fetched.
type Document struct {
	URL     string        `json:"url"`
	Status  int           `json:"status,omitempty"`
	Bytes   int           `json:"bytes"`
	Elapsed time.Duration `json:"elapsed_ns"`
}

// Metadata is one fetch of an issuer's metadata, stage by stage: the
// discovery document, then the JWKS it names. Inspect fills it as far as
// the fetch got.
type Metadata struct {
	Discovery Document `json:"discovery"`
	// Issuer is the issuer the discovery document names.
	Issuer string `json:"issuer,omitempty"`
	// JWKSURI is the discovery document's jwks_uri.
	JWKSURI string   `json:"jwks_uri,omitempty"`
	JWKS    Document `json:"jwks"`
	// Keys are the JWKS's entries in order, each with whether Entra would
	// verify tokens with it.
	Keys []KeyEntry `json:"keys,omitempty"`
}

// KeyEntry is one entry of an issuer's JWKS.
type KeyEntry struct {
	Key jose.JSONWebKey
	// Skipped says why Entra would not verify a token with this entry:
	// the entry does not parse, has no kid, is private, is past the
	// first 100, or is not for signatures. Empty when it would.
	Skipped string
}

// MarshalJSON describes the entry without its key material.
func (e KeyEntry) MarshalJSON() ([]byte, error) {
	kty := ""
	switch e.Key.Key.(type) {
	case *rsa.PublicKey:
		kty = "RSA"
	case *ecdsa.PublicKey:
		kty = "EC"
	case ed25519.PublicKey:
		kty = "OKP"
	}
	return json.Marshal(struct {
		KID     string `json:"kid,omitempty"`
		KTY     string `json:"kty,omitempty"`
		Alg     string `json:"alg,omitempty"`
		Use     string `json:"use,omitempty"`
		Skipped string `json:"skipped,omitempty"`
	}{e.Key.KeyID, kty, e.Key.Algorithm, e.Key.Use, e.Skipped})
}

// Stage names where an inspection failed.
type Stage string

// The stages of a fetch.
const (
	StageIssuerURL Stage = "issuer_url"
	StageDiscovery Stage = "discovery"
	StageJWKS      Stage = "jwks"
)

// FetchError is a failed stage of an inspection.
type FetchError struct {
	Stage Stage
	Err   error
}

func (e *FetchError) Error() string { return string(e.Stage) + ": " + e.Err.Error() }

func (e *FetchError) Unwrap() error { return e.Err }

// Inspect fetches issuer's metadata exactly as the cache does, through the
// same client (TLS roots, redirect rules, size and time bounds) and with
// the same key rules, without caching it. It returns what it found even
// when a stage failed; the error is then a *FetchError.
func (c *Cache) Inspect(ctx context.Context, issuer string) (*Metadata, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.timeout)
	defer cancel()
	md := &Metadata{Discovery: Document{URL: strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"}}
	if err := c.checkScheme(issuer); err != nil {
		return md, &FetchError{StageIssuerURL, err}
	}
	body, err := c.get(ctx, &md.Discovery)
	if err != nil {
		return md, &FetchError{StageDiscovery, err}
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return md, &FetchError{StageDiscovery, fmt.Errorf("%s is not a JSON discovery document: %w", md.Discovery.URL, err)}
	}
	md.Issuer, md.JWKSURI = doc.Issuer, doc.JWKSURI
	if doc.Issuer != issuer {
		return md, &FetchError{StageDiscovery, fmt.Errorf("%w: the discovery document names issuer %q, not %q", ErrIssuerMismatch, doc.Issuer, issuer)}
	}
	if doc.JWKSURI == "" {
		return md, &FetchError{StageDiscovery, errors.New("the discovery document has no jwks_uri")}
	}
	md.JWKS.URL = doc.JWKSURI
	if err := c.checkScheme(doc.JWKSURI); err != nil {
		return md, &FetchError{StageJWKS, err}
	}
	if body, err = c.get(ctx, &md.JWKS); err != nil {
		return md, &FetchError{StageJWKS, err}
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return md, &FetchError{StageJWKS, fmt.Errorf("%s is not a JWKS: %w", doc.JWKSURI, err)}
	}
	for i, raw := range set.Keys {
		md.Keys = append(md.Keys, c.keyEntry(i, raw))
	}
	return md, nil
}

// ErrIssuerMismatch means the discovery document names another issuer than
// the one it was fetched for; Entra compares them byte for byte.
var ErrIssuerMismatch = errors.New("issuer mismatch")

// keyEntry applies Entra's rules for which JWKS entries it verifies with.
func (c *Cache) keyEntry(i int, raw json.RawMessage) KeyEntry {
	var k jose.JSONWebKey
	switch err := k.UnmarshalJSON(raw); {
	case i >= maxKeys:
		return KeyEntry{Key: k, Skipped: fmt.Sprintf("entry %d: Entra reads only the first %d keys", i+1, maxKeys)}
	case err != nil:
		return KeyEntry{Skipped: fmt.Sprintf("entry %d does not parse as a JSON Web Key: %v", i+1, err)}
	case k.KeyID == "":
		return KeyEntry{Key: k, Skipped: fmt.Sprintf("entry %d has no kid: Entra finds keys by kid", i+1)}
	case !k.IsPublic():
		return KeyEntry{Key: k, Skipped: fmt.Sprintf("key %s is a private key", k.KeyID)}
	case k.Use == "" && c.opts.requireUseSig:
		return KeyEntry{Key: k, Skipped: fmt.Sprintf(`key %s has no "use": "sig"`, k.KeyID)}
	case k.Use != "" && k.Use != "sig":
		return KeyEntry{Key: k, Skipped: fmt.Sprintf(`key %s has "use": %q, not "sig"`, k.KeyID, k.Use)}
	}
	return KeyEntry{Key: k}
}

// get fetches doc.URL, recording its status, size and time, and returns
// the body of a 200 answer.
func (c *Cache) get(ctx context.Context, doc *Document) ([]byte, error) {
	start := time.Now()
	defer func() { doc.Elapsed = time.Since(start) }()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, doc.URL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	doc.Status = resp.StatusCode
	body, err := io.ReadAll(resp.Body)
	doc.Bytes = len(body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %s", doc.URL, resp.Status)
	}
	return body, nil
}
