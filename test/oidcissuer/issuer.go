// Package oidcissuer is an OIDC issuer on loopback TLS for tests: it serves
// a discovery document and a JWKS, counts the requests it serves, and signs
// tokens with its keys.
package oidcissuer

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// Issuer is a test issuer. Its URL is its issuer.
type Issuer struct {
	URL string
	// RSA and EC sign tokens; their kids are RSAKID and ECKID.
	RSA           *rsa.PrivateKey
	EC            *ecdsa.PrivateKey
	RSAKID, ECKID string
	// DiscoveryHits and JWKSHits count the requests served.
	DiscoveryHits, JWKSHits atomic.Int64

	srv *httptest.Server

	mu            sync.Mutex
	keys          []jose.JSONWebKey
	claimedIssuer string
	omitUse       bool
	intercept     func(w http.ResponseWriter, r *http.Request) bool
}

// New starts an issuer publishing an RSA-2048 and a P-256 key, with use "sig".
func New(t testing.TB) *Issuer {
	t.Helper()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	is := &Issuer{RSA: rk, EC: ek, RSAKID: "rsa-1", ECKID: "ec-1"}
	is.keys = []jose.JSONWebKey{
		{Key: &rk.PublicKey, KeyID: is.RSAKID, Use: "sig", Algorithm: "RS256"},
		{Key: &ek.PublicKey, KeyID: is.ECKID, Use: "sig", Algorithm: "ES256"},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		is.DiscoveryHits.Add(1)
		is.mu.Lock()
		iss := is.claimedIssuer
		is.mu.Unlock()
		if iss == "" {
			iss = is.URL
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": iss, "jwks_uri": is.URL + "/keys",
			"response_types_supported": []string{"id_token"}, "subject_types_supported": []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"}})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		is.JWKSHits.Add(1)
		is.mu.Lock()
		keys := append([]jose.JSONWebKey(nil), is.keys...)
		omit := is.omitUse
		is.mu.Unlock()
		if omit {
			for i := range keys {
				keys[i].Use = ""
			}
		}
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: keys})
	})
	is.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		is.mu.Lock()
		intercept := is.intercept
		is.mu.Unlock()
		if intercept != nil && intercept(w, r) {
			return
		}
		mux.ServeHTTP(w, r)
	}))
	is.URL = is.srv.URL
	t.Cleanup(is.srv.Close)
	return is
}

// Pool trusts the issuers' certificates.
func Pool(issuers ...*Issuer) *x509.CertPool {
	p := x509.NewCertPool()
	for _, is := range issuers {
		p.AddCert(is.srv.Certificate())
	}
	return p
}

// Publish adds a key to the JWKS.
func (is *Issuer) Publish(k jose.JSONWebKey) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.keys = append(is.keys, k)
}

// Replace publishes keys instead of the current ones.
func (is *Issuer) Replace(keys ...jose.JSONWebKey) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.keys = keys
}

// CAPEM is the PEM of the certificate the issuer serves, its own CA.
func (is *Issuer) CAPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: is.srv.Certificate().Raw})
}

// ClaimIssuer makes the discovery document name another issuer.
func (is *Issuer) ClaimIssuer(iss string) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.claimedIssuer = iss
}

// OmitUse drops "use" from the published keys.
func (is *Issuer) OmitUse() {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.omitUse = true
}

// Intercept lets f answer requests first; it returns true when it did.
func (is *Issuer) Intercept(f func(w http.ResponseWriter, r *http.Request) bool) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.intercept = f
}

// Close stops the issuer.
func (is *Issuer) Close() { is.srv.Close() }

// Sign signs claims with key under alg and the given protected headers;
// typ is "JWT" unless headers set it ("" leaves it out).
func Sign(t testing.TB, alg jose.SignatureAlgorithm, key any, headers map[jose.HeaderKey]any, claims map[string]any) string {
	t.Helper()
	opts := &jose.SignerOptions{}
	if _, ok := headers["typ"]; !ok {
		opts = opts.WithType("JWT")
	}
	for k, v := range headers {
		if k != "typ" || v != "" {
			opts = opts.WithHeader(k, v)
		}
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}
