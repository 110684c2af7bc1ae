package issuermeta

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"fmt"
	"net/url"
	"strings"

	"github.com/go-jose/go-jose/v4"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/aadsts"
)

// Problem is a property of an issuer that makes Entra refuse its tokens
// (Blocking), or that Entra tolerates but documents against. The token
// endpoint, the discovery provider's readiness and `check issuer` all take
// their verdicts from these rules.
type Problem struct {
	Blocking bool `json:"blocking"`
	// Code is the AADSTS code a token exchange fails with; 0 when the
	// exchange does not fail.
	Code int `json:"aadsts,omitempty"`
	// KeyID names the key concerned, if any.
	KeyID string `json:"kid,omitempty"`
	What  string `json:"what"`
	Fix   string `json:"fix,omitempty"`
}

// MinRSABits is the smallest RSA key Entra verifies with.
const MinRSABits = 2048

const fixKeyType = `sign JWT-SVIDs with RSA: jwt_key_type = "rsa-2048" in the SPIRE server's configuration`

// IssuerURLProblems returns Entra's objections to an issuer URL before
// anything is fetched.
func IssuerURLProblems(issuer string) []Problem {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" {
		return []Problem{{Blocking: true, Code: aadsts.IssuerMetadataUnavailable, What: fmt.Sprintf("issuer %q is not an absolute URL", issuer),
			Fix: "set the SPIRE server's jwt_issuer to the https URL the discovery provider is reached at"}}
	}
	var out []Problem
	if u.Scheme != "https" {
		out = append(out, Problem{Blocking: true, Code: aadsts.IssuerMetadataUnavailable, What: fmt.Sprintf("issuer %s is not https: Entra fetches issuer metadata over https only", issuer),
			Fix: "serve the discovery provider over TLS with a publicly trusted certificate and set jwt_issuer to its https URL"})
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		out = append(out, Problem{Blocking: true, Code: aadsts.IssuerMetadataUnavailable, What: fmt.Sprintf("issuer %s has user information, a query or a fragment, which OIDC discovery does not allow", issuer),
			Fix: "use a plain https URL, optionally with a path, as jwt_issuer"})
	}
	if IsEntraHost(u.Hostname()) {
		out = append(out, Problem{Blocking: true, Code: aadsts.EntraIssuedAssertion, What: fmt.Sprintf("issuer %s is one of Entra's own hosts: Entra refuses its own tokens as federated assertions", issuer)})
	}
	return out
}

// IsEntraHost reports Entra's own token issuing hosts.
func IsEntraHost(host string) bool {
	host = strings.ToLower(host)
	for _, h := range []string{"login.microsoftonline.com", "login.windows.net", "login.microsoft.com", "sts.windows.net",
		"login.microsoftonline.us", "login.chinacloudapi.cn", "login.partner.microsoftonline.cn"} {
		if host == h || strings.HasSuffix(host, "."+h) {
			return true
		}
	}
	return false
}

// KeyProblems returns Entra's objections to a key set: how many keys it
// holds and each key's type, size, algorithm and use.
func KeyProblems(keys []jose.JSONWebKey) []Problem {
	var out []Problem
	if len(keys) > maxKeys {
		out = append(out, Problem{Code: aadsts.SigningKeyNotFound, What: fmt.Sprintf("the key set has %d keys: Entra reads only the first %d; tokens signed by the others fail", len(keys), maxKeys),
			Fix: "publish fewer keys: remove retired keys from the bundle"})
	}
	for _, k := range keys {
		if p := Unverifiable(k, jose.RS256); p != nil {
			out = append(out, *p)
			continue
		}
		if k.Use == "" {
			out = append(out, Problem{KeyID: k.KeyID, What: fmt.Sprintf(`key %s has no "use": Entra's documentation expects "use": "sig"`, k.KeyID),
				Fix: "set_key_use = true in SPIRE's oidc-discovery-provider (the gateway's discovery provider always sets it)"})
		}
	}
	return out
}

// Unverifiable returns why Entra would not verify a token signed with alg
// by key k, or nil when it would. Entra verifies RS256 only; a verifier
// configured for ES256 as well (federation.WithAlgorithms) accepts EC keys
// for it.
func Unverifiable(k jose.JSONWebKey, alg jose.SignatureAlgorithm) *Problem {
	family := string(alg)[:min(2, len(alg))]
	switch pub := k.Key.(type) {
	case *rsa.PublicKey:
		if n := pub.N.BitLen(); n < MinRSABits {
			return &Problem{Blocking: true, Code: aadsts.UnsupportedKeyForAlgorithm, KeyID: k.KeyID,
				What: fmt.Sprintf("key %s is RSA-%d: Entra needs RSA keys of at least %d bits", k.KeyID, n, MinRSABits), Fix: fixKeyType}
		}
		if k.Algorithm != "" && k.Algorithm != string(alg) || family != "RS" && family != "PS" {
			return &Problem{Blocking: true, Code: aadsts.UnsupportedKeyForAlgorithm, KeyID: k.KeyID,
				What: fmt.Sprintf("key %s declares alg %s, but tokens are signed %s: Entra refuses a key whose alg differs from the token's", k.KeyID, k.Algorithm, alg),
				Fix:  "publish the key with alg RS256, or without alg"}
		}
		return nil
	case *ecdsa.PublicKey, ed25519.PublicKey:
		if _, ec := pub.(*ecdsa.PublicKey); ec && family == "ES" && (k.Algorithm == "" || k.Algorithm == string(alg)) {
			return nil
		}
		name := k.Algorithm
		if name == "" {
			name = fmt.Sprintf("%T", pub)
		}
		return &Problem{Blocking: true, Code: aadsts.UnsupportedSigningAlgorithm, KeyID: k.KeyID,
			What: fmt.Sprintf("key %s is %s: Entra rejects %s JWT-SVIDs", k.KeyID, name, name), Fix: fixKeyType}
	}
	return &Problem{Blocking: true, Code: aadsts.UnsupportedSigningAlgorithm, KeyID: k.KeyID,
		What: fmt.Sprintf("key %s is not an RSA public key", k.KeyID), Fix: fixKeyType}
}
