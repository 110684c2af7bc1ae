package entra

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"

	"github.com/go-jose/go-jose/v4"
	josejson "github.com/go-jose/go-jose/v4/json"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/aadsts"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/federation"
)

// certificateAlgorithms are what MSAL signs certificate assertions with.
var certificateAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.PS256}

const certDocs = "https://learn.microsoft.com/entra/identity-platform/certificate-credentials"

// certificateAssertion parses assertion as a client's own assertion, signed
// with a certificate registered on the app (ClientCertificateCredential):
// its issuer is the client id. It returns nil for any other assertion, which
// is then checked as a federated one.
func certificateAssertion(assertion, clientID string) *jwt.JSONWebToken {
	if !issuedBy(assertion, clientID) {
		return nil
	}
	tok, err := jwt.ParseSigned(assertion, certificateAlgorithms)
	if err != nil || len(tok.Headers) != 1 {
		return nil
	}
	var c struct {
		Issuer string `json:"iss"`
	}
	if tok.UnsafeClaimsWithoutVerification(&c) != nil || !strings.EqualFold(c.Issuer, clientID) {
		return nil
	}
	return tok
}

// issuedBy reports whether the payload of the compact JWS assertion names
// clientID as its iss, read as go-jose reads it. Most assertions are
// federated ones, issued by a URL: this spares them a whole parse here, so
// that they are parsed once, by the federation verifier, or not at all when
// it remembers them.
func issuedBy(assertion, clientID string) bool {
	_, rest, ok := strings.Cut(assertion, ".")
	payload, _, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 {
		return false
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return false
	}
	var c struct {
		Issuer string `json:"iss"`
	}
	return josejson.Unmarshal(raw, &c) == nil && strings.EqualFold(c.Issuer, clientID)
}

// verifyCertificateAssertion checks tok against the app's key credentials:
// the certificate named by x5t#S256 or x5t, within its validity, the
// signature, iss = sub = client id, aud = this token endpoint, and the times.
func (s *Server) verifyCertificateAssertion(r *http.Request, req tokenRequest, cl client, tok *jwt.JSONWebToken) error {
	if !cl.Application {
		return notRegistered(cl, "", "The client is a managed identity, which has no certificates.")
	}
	h := tok.Headers[0]
	s256, sha1 := thumbprint(h.ExtraHeaders["x5t#S256"]), thumbprint(h.ExtraHeaders["x5t"])
	if s256 == nil && sha1 == nil {
		if h.KeyID == "" {
			return aadsts.New(aadsts.NoKeyIdentifier, "Invalid JWT token. No certificate SHA-1 thumbprint, certificate SHA-256 thumbprint, nor keyId specified in token header.")
		}
		return notRegistered(cl, "", "The key was not found.")
	}
	creds, err := req.dir.ListKeyCredentials(r.Context(), cl.OwnerID)
	if err != nil {
		return fmt.Errorf("list key credentials: %w", err)
	}
	presented := hex.EncodeToString(sha1)
	if s256 != nil {
		presented = hex.EncodeToString(s256)
	}
	for _, kc := range creds {
		if !(s256 != nil && bytes.Equal(kc.ThumbprintSHA256, s256) || s256 == nil && bytes.Equal(kc.ThumbprintSHA1, sha1)) {
			continue
		}
		now := s.opts.now()
		if now.Before(kc.StartDateTime) || now.After(kc.EndDateTime) {
			return notRegistered(cl, presented, "The key used is expired.")
		}
		cert, err := x509.ParseCertificate(kc.CertDER)
		if err != nil {
			return fmt.Errorf("stored key credential %s: %w", kc.KeyID, err)
		}
		var c jwt.Claims
		if err := tok.Claims(cert.PublicKey, &c); err != nil {
			return aadsts.New(aadsts.ClientAssertionSignature, "Client assertion failed signature validation. [Reason - The provided signature value did not match the expected signature value., Thumbprint of key used by client: '%s', Found key 'Start=%s, End=%s', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '%s'.]",
				strings.ToUpper(presented), kc.StartDateTime.UTC().Format("01/02/2006 15:04:05"), kc.EndDateTime.UTC().Format("01/02/2006 15:04:05"), cl.AppID)
		}
		if !strings.EqualFold(c.Subject, cl.AppID) {
			return aadsts.New(aadsts.ClientAssertionClient, "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at %s .", certDocs)
		}
		if endpoint := req.base + r.URL.Path; !c.Audience.Contains(endpoint) {
			return aadsts.New(aadsts.ClientAssertionSignature, "The audience '%s' of the client assertion is not the token endpoint '%s'. Review the documentation at %s .", strings.Join(c.Audience, ","), endpoint, certDocs)
		}
		return federation.TimeRange(now, c.NotBefore, c.Expiry)
	}
	return notRegistered(cl, presented, "The key was not found.")
}

func notRegistered(cl client, thumbprint, reason string) error {
	return aadsts.New(aadsts.ClientAssertionSignature, "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - %s, Thumbprint of key used by client: '%s', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '%s'. Review the documentation at https://docs.microsoft.com/en-us/graph/deployments if using national cloud.]",
		reason, strings.ToUpper(thumbprint), cl.AppID)
}

// thumbprint decodes an x5t or x5t#S256 header; MSAL libraries disagree on
// padding and alphabet, so every base64 form is accepted.
func thumbprint(v any) []byte {
	s, ok := v.(string)
	if !ok || s == "" {
		return nil
	}
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b
		}
	}
	return nil
}
