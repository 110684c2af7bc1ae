// Package federation decides, as Entra does, whether an external JWT (a
// JWT-SVID, a Kubernetes service-account token, a GitHub Actions token, ...)
// may stand in for a client's secret, and answers with Entra's errors.
//
// The checks run in this order, so that each failure reports what Entra
// reports for it:
//
//  1. size, compact JWS form, algorithm (never none or HMAC);
//  2. the unverified iss, sub and aud (iss and aud required); tokens
//     Entra issued are refused;
//  3. matching against the client's credentials: any at all, then issuer,
//     then audience, then subject or expression;
//  4. the signing key, fetched only for the matched issuer, and the
//     signature (verified once per assertion and key: see Verify);
//  5. the validity window and the total lifetime.
package federation

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	josejson "github.com/go-jose/go-jose/v4/json"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/aadsts"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/federation/expression"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/issuermeta"
)

// ClockSkew is the leeway on exp and nbf: Entra does not publish its own,
// and back-dates its tokens by five minutes.
const ClockSkew = 5 * time.Minute

// MaxLifetime is Entra's limit on exp − iat of an external token.
const MaxLifetime = 25 * time.Hour

// KeyFinder finds an issuer's signing key; *issuermeta.Cache is one.
type KeyFinder interface {
	Key(ctx context.Context, issuer, kid string) (*jose.JSONWebKey, error)
}

// Match is an accepted assertion.
type Match struct {
	Credential store.FederatedCredential
	Issuer     string
	Subject    string
	Audience   string
	// Claims are shared with every later match of the same assertion:
	// read them, never modify them.
	Claims map[string]any
}

// Verifier checks assertions.
type Verifier struct {
	keys  KeyFinder
	opts  options
	cache verifiedCache
}

type options struct {
	now               func() time.Time
	anyIssuerExprs    bool
	algorithms        []jose.SignatureAlgorithm
	maxAssertionBytes int
	logger            *slog.Logger
}

// Option configures a Verifier.
type Option func(*options)

// WithClock sets the time source.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithAnyIssuerExpressions honours flexible credentials for every issuer;
// Entra honours them for GitHub, GitLab and Terraform Cloud only.
func WithAnyIssuerExpressions(allow bool) Option {
	return func(o *options) { o.anyIssuerExprs = allow }
}

// WithAlgorithms sets the accepted signature algorithms (default RS256
// only, as Entra). HMAC algorithms and none are never accepted.
func WithAlgorithms(algs ...jose.SignatureAlgorithm) Option {
	return func(o *options) {
		o.algorithms = slices.DeleteFunc(slices.Clone(algs), func(a jose.SignatureAlgorithm) bool {
			return a == jose.HS256 || a == jose.HS384 || a == jose.HS512 || a == "none"
		})
	}
}

// WithMaxAssertionSize bounds the assertion (default 16 KiB).
func WithMaxAssertionSize(n int) Option { return func(o *options) { o.maxAssertionBytes = n } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// NewVerifier returns a verifier finding keys with keys.
func NewVerifier(keys KeyFinder, opts ...Option) *Verifier {
	o := options{now: time.Now, algorithms: []jose.SignatureAlgorithm{jose.RS256}, maxAssertionBytes: 16 << 10, logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	return &Verifier{keys: keys, opts: o}
}

const wifDocs = "https://learn.microsoft.com/entra/workload-id/workload-identity-federation"

// Verify decides whether assertion stands in for the secret of the client
// whose federated credentials are creds. Every error it returns is an
// *aadsts.Error: a refusal in Entra's words.
//
// An assertion accepted before is not parsed again, and its signature is
// not verified again while the issuer's key for it is still the key that
// verified it; the match against creds, the key lookup and the time checks
// run every time, so a removed credential, a rotated key or the passing of
// exp is honoured at once.
func (v *Verifier) Verify(ctx context.Context, assertion string, creds []store.FederatedCredential) (*Match, error) {
	if len(assertion) > v.opts.maxAssertionBytes {
		return nil, aadsts.New(aadsts.InvalidJWT, "JWT token is invalid or malformed. The client assertion is larger than %d bytes.", v.opts.maxAssertionBytes)
	}
	sum := sha256.Sum256([]byte(assertion))
	a := v.cache.get(sum, v.opts.now())
	var jws *jose.JSONWebSignature
	if a == nil {
		var err error
		if jws, a, err = v.read(assertion); err != nil {
			return nil, err
		}
	}
	cred, aud, err := v.match(a.claims, a.all, creds)
	if err != nil {
		return nil, err
	}
	key, err := v.signingKey(ctx, a)
	if err != nil {
		return nil, err
	}
	if jws == nil && !a.verifiedBy(key.Key) {
		// The issuer's key changed since: the assertion is read and
		// verified again, with the key it has now.
		if jws, a, err = v.read(assertion); err != nil {
			return nil, err
		}
	}
	if jws != nil {
		if _, err := jws.Verify(key.Key); err != nil {
			return nil, aadsts.New(aadsts.ClientAssertionSignature, "Client assertion failed signature validation.")
		}
	}
	if err := v.checkTimes(a.claims); err != nil {
		return nil, err
	}
	if pub, ok := key.Key.(publicKey); ok && jws != nil {
		a.key, a.until = pub, a.claims.Expiry.Time().Add(ClockSkew)
		v.cache.put(sum, a, v.opts.now())
	}
	c := a.claims
	return &Match{Credential: cred, Issuer: c.Issuer, Subject: c.Subject, Audience: aud, Claims: a.all}, nil
}

func malformed() error {
	return aadsts.New(aadsts.InvalidJWT, "JWT token is invalid or malformed.")
}

// claims are the registered claims read before the signature is checked.
type claims struct {
	Issuer   string           `json:"iss"`
	Subject  string           `json:"sub"`
	Audience jwt.Audience     `json:"aud"`
	Expiry   *jwt.NumericDate `json:"exp"`
	NotBefor *jwt.NumericDate `json:"nbf"`
	IssuedAt *jwt.NumericDate `json:"iat"`
}

// parsed is what Verify reads from an assertion before its signature is
// checked.
type parsed struct {
	alg    jose.SignatureAlgorithm
	kid    string
	claims claims
	all    map[string]any
}

// read parses assertion and refuses it for what it says of itself, before
// any credential is consulted: a missing iss or aud, or Entra as issuer.
func (v *Verifier) read(assertion string) (*jose.JSONWebSignature, *verified, error) {
	jws, p, err := v.parse(assertion)
	if err != nil {
		return nil, nil, err
	}
	c := p.claims
	for _, f := range []struct {
		name    string
		missing bool
	}{{"iss", c.Issuer == ""}, {"aud", len(c.Audience) == 0}} {
		if f.missing {
			return nil, nil, aadsts.New(aadsts.MissingCredentialField, "The required field '%s' is missing from the credential. Ensure that you have all the necessary parameters for the login request.", f.name)
		}
	}
	if u, err := url.Parse(c.Issuer); err == nil && issuermeta.IsEntraHost(u.Hostname()) {
		return nil, nil, aadsts.New(aadsts.EntraIssuedAssertion, "AAD-issued tokens may not be used for federated identity flows.")
	}
	return jws, &verified{parsed: p}, nil
}

// parse accepts only a compact JWS with one signature by an allowed
// asymmetric algorithm and no critical headers, and decodes its claims. The header is read here, by encoding/json, for the refusals Entra
// gives before a token is malformed (typ, alg, crit), and go-jose's parser
// still has the last word on the form: both are kept, so that every
// assertion is refused as it was.
func (v *Verifier) parse(assertion string) (*jose.JSONWebSignature, parsed, error) {
	if strings.Count(assertion, ".") != 2 {
		return nil, parsed{}, malformed() // a JWE has five parts, a JWS in JSON form none
	}
	encoded, _, _ := strings.Cut(assertion, ".")
	head, err := base64.RawURLEncoding.DecodeString(encoded)
	if err != nil {
		return nil, parsed{}, malformed()
	}
	var h struct {
		Alg  string          `json:"alg"`
		Typ  *string         `json:"typ"`
		Crit json.RawMessage `json:"crit"`
	}
	if err := json.Unmarshal(head, &h); err != nil {
		return nil, parsed{}, malformed()
	}
	// An absent typ, as Kubernetes service-account tokens have, is fine.
	if h.Typ != nil && *h.Typ != "JWT" && *h.Typ != "http://openid.net/specs/jwt/1.0" {
		return nil, parsed{}, aadsts.New(aadsts.InvalidJWTHeaderType, "Invalid JWT header type specified, must be 'JWT' or 'http://openid.net/specs/jwt/1.0'.")
	}
	alg := jose.SignatureAlgorithm(h.Alg)
	if !slices.Contains(v.opts.algorithms, alg) {
		return nil, parsed{}, aadsts.New(aadsts.UnsupportedSigningAlgorithm, "Invalid JWT token. '%s' is not a supported signature algorithm.", h.Alg)
	}
	if h.Crit != nil {
		return nil, parsed{}, aadsts.New(aadsts.InvalidJWT, "JWT token is invalid or malformed. Critical header parameters are not supported.")
	}
	jws, err := jose.ParseSignedCompact(assertion, v.opts.algorithms)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, parsed{}, malformed()
	}
	// Decoded as go-jose's jwt.Claims decodes them; a new assertion is read
	// once in its life (the verified cache), so twice here costs little.
	payload := jws.UnsafePayloadWithoutVerification()
	var c claims
	var all map[string]any
	if josejson.Unmarshal(payload, &c) != nil || josejson.Unmarshal(payload, &all) != nil {
		return nil, parsed{}, malformed()
	}
	return jws, parsed{alg: alg, kid: jws.Signatures[0].Header.KeyID, claims: c, all: all}, nil
}

// match finds the credential the assertion satisfies, reporting the first
// mismatch in Entra's order: issuer, audience, subject.
func (v *Verifier) match(c claims, all map[string]any, creds []store.FederatedCredential) (store.FederatedCredential, string, error) {
	if len(creds) == 0 {
		return store.FederatedCredential{}, "", aadsts.New(aadsts.NoFederatedCredentials, "Client application has no configured federated identity credentials.")
	}
	// Two passes over creds, not filtered copies of it: this runs on every
	// exchange, a remembered assertion's too.
	sharedAudience := func(cr *store.FederatedCredential) (string, bool) {
		for _, a := range cr.Audiences {
			if slices.Contains(c.Audience, a) {
				return a, true
			}
		}
		return "", false
	}
	issuerKnown, audienceKnown := false, false
	for i := range creds {
		if creds[i].Issuer == c.Issuer {
			issuerKnown = true
			_, shared := sharedAudience(&creds[i])
			audienceKnown = audienceKnown || shared
		}
	}
	if !issuerKnown {
		return store.FederatedCredential{}, "", aadsts.New(aadsts.NoMatchingIssuer, "No matching federated identity record found for presented assertion issuer '%s'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. %s", c.Issuer, wifDocs)
	}
	if !audienceKnown {
		return store.FederatedCredential{}, "", aadsts.New(aadsts.NoMatchingAudience, "No matching federated identity record found for presented assertion audience '%s'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. %s", strings.Join(c.Audience, ","), wifDocs)
	}
	caseOnly, flexible := false, false
	for i := range creds {
		cr := &creds[i]
		audience, shared := sharedAudience(cr)
		if cr.Issuer != c.Issuer || !shared {
			continue
		}
		if cr.ClaimsMatchingExpression != "" {
			if !v.opts.anyIssuerExprs && !directory.ExpressionAllowedByEntra(cr.Issuer) {
				continue
			}
			flexible = true
			expr, err := expression.Parse(cr.ClaimsMatchingExpression)
			if err != nil {
				v.opts.logger.Warn("a stored claimsMatchingExpression does not parse", "credential", cr.ID, "error", err)
				continue
			}
			if expr.Eval(all) {
				return *cr, audience, nil
			}
			continue
		}
		if cr.Subject == c.Subject {
			return *cr, audience, nil
		}
		caseOnly = caseOnly || strings.EqualFold(cr.Subject, c.Subject)
	}
	switch {
	case flexible:
		return store.FederatedCredential{}, "", aadsts.New(aadsts.NoMatchingExpression, "No matching federated identity record found for presented assertion subject '%s' or no federated identity credential expression matched. Please check your federated identity credential Subject, Expression, Audience and Issuer against the presented assertion. %s", c.Subject, wifDocs)
	case caseOnly:
		return store.FederatedCredential{}, "", aadsts.New(aadsts.NoMatchingSubjectCase, "No matching federated identity record found for presented assertion subject '%s'. The subject matches with case-insensitive comparison, but not with case-sensitive comparison. Check your federated identity credential Subject, Audience and Issuer against the presented assertion. See documentation at: %s. See breaking change notification and remediation at: https://learn.microsoft.com/en-us/entra/identity-platform/reference-breaking-changes#august-2024.", c.Subject, wifDocs)
	}
	return store.FederatedCredential{}, "", aadsts.New(aadsts.NoMatchingSubject, "No matching federated identity record found for presented assertion subject '%s'. Check your federated identity credential Subject, Audience and Issuer against the presented assertion. %s", c.Subject, wifDocs)
}

// signingKey finds the key by kid only; jku, x5u and jwk headers are never
// followed.
func (v *Verifier) signingKey(ctx context.Context, a *verified) (*jose.JSONWebKey, error) {
	kid, issuer := a.kid, a.claims.Issuer
	key, err := v.keys.Key(ctx, issuer, kid)
	switch {
	case errors.Is(err, issuermeta.ErrKeyNotFound) || (err == nil && kid == ""):
		return nil, aadsts.New(aadsts.SigningKeyNotFound, "The certificate with identifier %s used to sign the federated credential could not be found in the metadata of identity provider %s. Please validate that your Identity Provider's metadata exposes the key used to sign the incoming token.", kid, issuer)
	case err != nil:
		v.opts.logger.Warn("issuer metadata unavailable", "issuer", issuer, "error", err)
		return nil, aadsts.New(aadsts.IssuerMetadataUnavailable, "Request to External OIDC endpoint failed.")
	}
	// The key rules `check issuer` and the discovery provider report.
	if issuermeta.Unverifiable(*key, a.alg) != nil {
		return nil, aadsts.New(aadsts.UnsupportedKeyForAlgorithm, "Invalid JWT token. Unsupported key for the signing algorithm.")
	}
	return key, nil
}

// entraTime is how Entra prints times in AADSTS700024.
const entraTime = "2006-01-02T15:04:05.0000000Z"

// TimeRange checks a client assertion's exp and nbf against now with
// ClockSkew, failing with Entra's AADSTS700024, which shows a missing nbf
// or exp as 1970 and requires exp. Certificate assertions share this check.
func TimeRange(now time.Time, nbf, exp *jwt.NumericDate) error {
	now = now.UTC()
	from, until := time.Unix(0, 0).UTC(), time.Unix(0, 0).UTC()
	if nbf != nil {
		from = nbf.Time().UTC()
	}
	if exp != nil {
		until = exp.Time().UTC()
	}
	if exp == nil || now.After(until.Add(ClockSkew)) || now.Add(ClockSkew).Before(from) {
		return aadsts.New(aadsts.AssertionTimeRange, "Client assertion is not within its valid time range. Current time: %s, assertion valid from %s, expiry time of assertion %s. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
			now.Format(entraTime), from.Format(entraTime), until.Format(entraTime))
	}
	return nil
}

func (v *Verifier) checkTimes(c claims) error {
	if err := TimeRange(v.opts.now(), c.NotBefor, c.Expiry); err != nil {
		return err
	}
	// The lifetime counts from iat; a token without one was, for Entra,
	// issued at 0, and so lives too long.
	start, exp := time.Unix(0, 0), c.Expiry.Time()
	if c.IssuedAt != nil {
		start = c.IssuedAt.Time()
	}
	if exp.Sub(start) > MaxLifetime {
		return aadsts.New(aadsts.AssertionLifetime, "External OIDC Provider token must have a lifetime of less than or equal to 1.01:00:00. Token issued at %d. Token expires on %d.", start.Unix(), exp.Unix())
	}
	return nil
}
