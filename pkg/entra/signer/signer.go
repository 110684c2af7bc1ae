// Package signer keeps the gateway's token signing keys in the store, signs
// access tokens with the current one, and publishes every key that signed or
// will sign a token that may still be presented.
package signer

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t is defined as a SHA-1 thumbprint.
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
)

// options tune the key schedule.
type options struct {
	keyLifetime     time.Duration
	tokenLifetime   time.Duration
	refreshInterval time.Duration
	now             func() time.Time
	logger          *slog.Logger
	keks            []*KEK
}

// Option configures a Signer.
type Option func(*options)

// WithKeyLifetime sets how long a key signs tokens (default 30 days).
func WithKeyLifetime(d time.Duration) Option { return func(o *options) { o.keyLifetime = d } }

// WithTokenLifetime sets the longest lifetime of a token: a retired key
// stays published this long after it stopped signing (default 25 hours).
func WithTokenLifetime(d time.Duration) Option { return func(o *options) { o.tokenLifetime = d } }

// WithRefreshInterval sets how often Run reloads the keys, picking up keys
// other replicas created and rotating on schedule (default 1 minute).
func WithRefreshInterval(d time.Duration) Option { return func(o *options) { o.refreshInterval = d } }

// WithClock sets the time source.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithKEKs sets the key-encryption keys: the first seals the keys the
// signer creates, every one opens keys stored earlier (so that the first
// can be replaced: see docs/security.md). Without any, keys are stored
// unsealed, which the gateway allows only when told to.
func WithKEKs(keks ...*KEK) Option { return func(o *options) { o.keks = keks } }

// Signer signs tokens with the current key.
type Signer struct {
	store store.Store
	opts  options

	mu       sync.RWMutex
	keys     []key  // ordered by NotBefore
	jwksJSON []byte // the published key set, rendered once per change
}

type key struct {
	store.SigningKey
	private *rsa.PrivateKey
	cert    *x509.Certificate
	headers [2]string // the JWS header, base64url-encoded, without and with x5t
}

// header is a token's JWS header, in the order its members have always been
// written (alphabetical, as go-jose wrote them when it signed here): tokens'
// bytes do not change with the way they are made.
type header struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
	X5T string `json:"x5t,omitempty"`
}

// New returns a signer over the keys in s. It holds no key until Refresh
// succeeds; until then Sign fails with ErrNoKey.
func New(s store.Store, opts ...Option) *Signer {
	o := options{keyLifetime: 30 * 24 * time.Hour, tokenLifetime: 25 * time.Hour, refreshInterval: time.Minute,
		now: time.Now, logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	return &Signer{store: s, opts: o}
}

// Run refreshes the keys every RefreshInterval until ctx ends; after a
// failure (the store unreachable) it retries sooner, so that a gateway
// started before its database gets keys as soon as the database answers.
func (sg *Signer) Run(ctx context.Context) {
	retry := sg.opts.refreshInterval / 12
	for {
		wait := sg.opts.refreshInterval
		if err := sg.Refresh(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			sg.opts.logger.Warn("cannot refresh the token signing keys; retrying", "error", err, "retry_in", retry)
			wait = retry
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// slot returns the schedule window that holds t. Windows are aligned to the
// Unix epoch so that replicas starting at once propose the same window and
// the store keeps exactly one key for it.
func (sg *Signer) slot(t time.Time) (time.Time, time.Time) {
	life := sg.opts.keyLifetime
	start := time.Unix(0, 0).Add(t.Sub(time.Unix(0, 0)).Truncate(life)).UTC()
	return start, start.Add(life)
}

// Refresh creates the keys for the current and the next window if missing,
// drops keys no token can still carry, and reloads the set from the store.
// The next window's key is published from its creation on, a whole key
// lifetime before it signs, so relying parties have it in time.
func (sg *Signer) Refresh(ctx context.Context) error {
	now := sg.opts.now()
	cur, next := sg.slot(now)
	for _, nb := range []time.Time{cur, next} {
		if err := sg.ensure(ctx, nb); err != nil {
			return err
		}
	}
	stored, err := sg.store.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("signer: list keys: %w", err)
	}
	keys := make([]key, 0, len(stored))
	for _, k := range stored {
		if now.Sub(k.NotAfter) > sg.opts.tokenLifetime {
			if err := sg.store.DeleteSigningKey(ctx, k.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("signer: delete retired key %s: %w", k.ID, err)
			}
			continue
		}
		if len(sg.opts.keks) > 0 && !sealed(k.PrivateKeyDER) {
			sg.opts.logger.Warn("a token signing key is stored unsealed, from before a key-encryption key was configured; it is replaced at its rotation", "kid", k.ID, "not_after", k.NotAfter)
		}
		der, err := open(sg.opts.keks, k)
		if err != nil {
			return err
		}
		k.PrivateKeyDER = der
		parsed, err := parse(k)
		if err != nil {
			return err
		}
		keys = append(keys, parsed)
	}
	set := jose.JSONWebKeySet{Keys: publicKeys(keys)}
	jwks, err := json.Marshal(set)
	if err != nil {
		return fmt.Errorf("signer: render key set: %w", err)
	}
	sg.mu.Lock()
	sg.keys, sg.jwksJSON = keys, jwks
	sg.mu.Unlock()
	return nil
}

func (sg *Signer) ensure(ctx context.Context, notBefore time.Time) error {
	stored, err := sg.store.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("signer: list keys: %w", err)
	}
	for _, k := range stored {
		if k.NotBefore.Equal(notBefore) {
			return nil
		}
	}
	k, err := generate(notBefore, notBefore.Add(sg.opts.keyLifetime), sg.opts.now())
	if err != nil {
		return err
	}
	if len(sg.opts.keks) > 0 {
		if k, err = seal(sg.opts.keks[0], k); err != nil {
			return err
		}
	}
	err = sg.store.CreateSigningKey(ctx, k)
	if errors.Is(err, store.ErrAlreadyExists) {
		return nil // another replica won the race
	}
	if err != nil {
		return fmt.Errorf("signer: store new key: %w", err)
	}
	sg.opts.logger.Info("created token signing key", "kid", k.ID, "not_before", k.NotBefore, "not_after", k.NotAfter)
	return nil
}

func generate(notBefore, notAfter, now time.Time) (store.SigningKey, error) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("signer: generate key: %w", err)
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "spiffe-entra-gateway token signing"},
		NotBefore:    notBefore.Add(-48 * time.Hour),
		NotAfter:     notAfter.Add(48 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("signer: self-sign key certificate: %w", err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("signer: encode key: %w", err)
	}
	return store.SigningKey{ID: thumbprint(der), PrivateKeyDER: pk, CertDER: der, NotBefore: notBefore, NotAfter: notAfter, CreatedAt: now.UTC()}, nil
}

// thumbprint is the base64url SHA-1 of the certificate: Entra uses it as
// both kid and x5t.
func thumbprint(der []byte) string {
	sum := sha1.Sum(der) //nolint:gosec // x5t is defined as a SHA-1 thumbprint.
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func parse(k store.SigningKey) (key, error) {
	pk, err := x509.ParsePKCS8PrivateKey(k.PrivateKeyDER)
	if err != nil {
		return key{}, fmt.Errorf("signer: key %s: %w", k.ID, err)
	}
	priv, ok := pk.(*rsa.PrivateKey)
	if !ok {
		return key{}, fmt.Errorf("signer: key %s is %T, not RSA", k.ID, pk)
	}
	cert, err := x509.ParseCertificate(k.CertDER)
	if err != nil {
		return key{}, fmt.Errorf("signer: key %s certificate: %w", k.ID, err)
	}
	out := key{SigningKey: k, private: priv, cert: cert}
	for i, h := range []header{{Alg: "RS256", Kid: k.ID, Typ: "JWT"}, {Alg: "RS256", Kid: k.ID, Typ: "JWT", X5T: k.ID}} { // kid is the x5t thumbprint
		js, err := json.Marshal(h)
		if err != nil {
			return key{}, fmt.Errorf("signer: key %s header: %w", k.ID, err)
		}
		out.headers[i] = base64.RawURLEncoding.EncodeToString(js)
	}
	return out, nil
}

// ErrNoKey means no stored key covers the current time; Refresh fixes it.
var ErrNoKey = errors.New("signer: no current signing key")

// Sign signs payload (JSON claims) with the current key. withX5T adds the
// x5t header that Entra puts on v1 tokens.
func (sg *Signer) Sign(payload []byte, withX5T bool) (string, error) {
	now := sg.opts.now()
	sg.mu.RLock()
	var cur *key
	for i := len(sg.keys) - 1; i >= 0; i-- {
		if k := &sg.keys[i]; !now.Before(k.NotBefore) && now.Before(k.NotAfter) {
			cur = k
			break
		}
	}
	sg.mu.RUnlock()
	if cur == nil {
		return "", ErrNoKey
	}
	h := cur.headers[0]
	if withX5T {
		h = cur.headers[1]
	}
	// The compact JWS, header.payload.signature, in one buffer: the
	// signature is over header.payload, RS256 (RSASSA-PKCS1-v1_5, SHA-256).
	enc := base64.RawURLEncoding
	tok := make([]byte, 0, len(h)+1+enc.EncodedLen(len(payload))+1+enc.EncodedLen(cur.private.Size()))
	tok = append(tok, h...)
	tok = append(tok, '.')
	tok = enc.AppendEncode(tok, payload)
	digest := sha256.Sum256(tok)
	sig, err := rsa.SignPKCS1v15(nil, cur.private, crypto.SHA256, digest[:])
	if err != nil {
		return "", fmt.Errorf("signer: sign: %w", err)
	}
	tok = append(tok, '.')
	return string(enc.AppendEncode(tok, sig)), nil
}

// PublicKeysJSON returns the published key set, {"keys": [...]}, as Entra
// publishes it: kid equal to x5t, the certificate in x5c, use "sig".
func (sg *Signer) PublicKeysJSON() []byte {
	sg.mu.RLock()
	defer sg.mu.RUnlock()
	return sg.jwksJSON
}

func publicKeys(keys []key) []jose.JSONWebKey {
	out := make([]jose.JSONWebKey, 0, len(keys))
	for _, k := range keys {
		sum := sha1.Sum(k.CertDER) //nolint:gosec // x5t is defined as a SHA-1 thumbprint.
		out = append(out, jose.JSONWebKey{
			Key: k.private.Public(), KeyID: k.ID, Use: "sig", Certificates: []*x509.Certificate{k.cert},
			CertificateThumbprintSHA1: sum[:],
		})
	}
	return out
}

// Ready reports whether the signer holds a key, that is whether a Refresh
// has reached the store.
func (sg *Signer) Ready() bool {
	sg.mu.RLock()
	defer sg.mu.RUnlock()
	return len(sg.keys) > 0
}

// PublicKey returns the public key with kid among the published keys, for
// checking tokens this gateway issued.
func (sg *Signer) PublicKey(kid string) (crypto.PublicKey, bool) {
	sg.mu.RLock()
	defer sg.mu.RUnlock()
	for _, k := range sg.keys {
		if k.ID == kid {
			return k.private.Public(), true
		}
	}
	return nil, false
}
