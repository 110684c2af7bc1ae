// Package check gives Entra's verdict on an OIDC issuer and on a federated
// assertion before anything is deployed. It decides nothing itself: the
// issuer is fetched by issuermeta and judged by its rules, and assertions
// are verified by the federation verifier, exactly as the gateway's token
// endpoint does, so that the verdict cannot drift from the endpoint's.
package check

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/aadsts"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/issuermeta"
)

// Severity ranks a finding.
type Severity string

// Severities: a blocking finding makes Entra refuse every token of the
// issuer (or this assertion); a warning works today but fails in some
// cases or in Azure only.
const (
	Blocking Severity = "blocking"
	Warning  Severity = "warning"
)

// Finding is one thing Entra would object to, with the AADSTS code it
// answers a token exchange with (0 when the exchange does not fail) and
// the fix.
type Finding struct {
	Severity Severity `json:"severity"`
	Code     int      `json:"aadsts,omitempty"`
	What     string   `json:"finding"`
	Fix      string   `json:"fix,omitempty"`
}

// IssuerOptions configure Issuer.
type IssuerOptions struct {
	// CA holds PEM certificates trusted besides the system roots, with a
	// warning that Entra trusts only public roots.
	CA []byte
	// Timeout bounds each fetch and MaxBytes each document; zero means
	// the token endpoint's own bounds (issuermeta's defaults).
	Timeout  time.Duration
	MaxBytes int64
}

// IssuerReport is the verdict on an issuer.
type IssuerReport struct {
	Issuer   string               `json:"issuer"`
	Metadata *issuermeta.Metadata `json:"metadata"`
	// UsableKeys is how many keys Entra would verify RS256 tokens with.
	UsableKeys int       `json:"usable_keys"`
	Findings   []Finding `json:"findings"`
	Blocking   bool      `json:"blocking"`
}

func (r *IssuerReport) add(p issuermeta.Problem) {
	sev := Warning
	if p.Blocking {
		sev, r.Blocking = Blocking, true
	}
	r.Findings = append(r.Findings, Finding{Severity: sev, Code: p.Code, What: p.What, Fix: p.Fix})
}

// Issuer fetches issuer's metadata as Entra does from the internet (https,
// the system's roots) and returns every finding.
func Issuer(ctx context.Context, issuer string, opts IssuerOptions) IssuerReport {
	if opts.Timeout == 0 {
		opts.Timeout = issuermeta.DefaultTimeout
	}
	if opts.MaxBytes == 0 {
		opts.MaxBytes = issuermeta.DefaultMaxBytes
	}
	r := IssuerReport{Issuer: issuer}
	for _, p := range issuermeta.IssuerURLProblems(issuer) {
		r.add(p)
	}
	cacheOpts := []issuermeta.Option{issuermeta.WithTimeout(opts.Timeout), issuermeta.WithMaxBytes(opts.MaxBytes),
		// An http issuer is already a blocking finding; it is still
		// fetched to report on the rest.
		issuermeta.WithInsecureSchemes(),
		// The operator aims the check at an issuer of their choosing, on
		// their own machine: every network may be fetched from.
		issuermeta.WithAllowedNetworks(anyNetwork...)}
	md, err := issuermeta.New(cacheOpts...).Inspect(ctx, issuer)
	var unknownCA x509.UnknownAuthorityError
	if opts.CA != nil && errors.As(err, &unknownCA) {
		r.add(issuermeta.Problem{Code: aadsts.IssuerMetadataUnavailable,
			What: fmt.Sprintf("the certificate of %s is trusted only through --ca: Entra fetches issuers from the internet with public roots and would fail to reach it", hostOf(err, issuer)),
			Fix:  "serve the discovery provider with a certificate from a publicly trusted CA (the gateway's own Entra endpoint trusts oidc issuer CAs given in its configuration)"})
		md, err = issuermeta.New(append(cacheOpts, issuermeta.WithRootCAs(withSystemRoots(opts.CA)))...).Inspect(ctx, issuer)
	}
	r.Metadata = md
	if u, perr := url.Parse(md.JWKSURI); md.JWKSURI != "" && (perr != nil || u.Scheme != "https") {
		r.add(issuermeta.Problem{Blocking: true, Code: aadsts.IssuerMetadataUnavailable, What: fmt.Sprintf("jwks_uri %s is not https: Entra fetches keys over https only", md.JWKSURI),
			Fix: "publish the JWKS at an https jwks_uri (SPIRE's oidc-discovery-provider builds it from the request's host; the gateway's from its issuer)"})
	}
	if err != nil {
		r.add(fetchProblem(err, issuer, opts))
	}
	r.timings(md, opts)
	r.keys(md, err == nil)
	return r
}

// withSystemRoots trusts the system's roots and the PEM certificates in ca.
func withSystemRoots(ca []byte) *x509.CertPool {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	pool.AppendCertsFromPEM(ca)
	return pool
}

func hostOf(err error, issuer string) string {
	var fe *issuermeta.FetchError
	if errors.As(err, &fe) && fe.Stage == issuermeta.StageJWKS {
		return "the jwks_uri"
	}
	return issuer
}

// fetchProblem explains a failed fetch: Entra answers every one of them
// with AADSTS90061.
func fetchProblem(err error, issuer string, opts IssuerOptions) issuermeta.Problem {
	p := issuermeta.Problem{Blocking: true, Code: aadsts.IssuerMetadataUnavailable, What: "fetching the issuer's metadata failed: " + err.Error()}
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		recordErr tls.RecordHeaderError
		netErr    net.Error
		fe        *issuermeta.FetchError
	)
	switch {
	case errors.Is(err, issuermeta.ErrIssuerMismatch):
		p.Fix = fmt.Sprintf("the discovery document's issuer must be %q byte for byte (scheme, host, port, path, trailing slash): set the SPIRE server's jwt_issuer and the discovery provider's issuer to exactly that", issuer)
	case errors.As(err, &unknownCA):
		p.Fix = "serve the discovery provider with a certificate from a publicly trusted CA; for a private CA, give it with --ca to check the rest"
	case errors.As(err, &hostname), errors.As(err, &invalid):
		p.Fix = "serve a valid certificate for the issuer's host name"
	case errors.As(err, &recordErr):
		p.Fix = "the issuer answers plain HTTP on a TLS port: serve TLS there"
	case errors.As(err, &netErr) && netErr.Timeout(), errors.Is(err, context.DeadlineExceeded):
		p.Fix = fmt.Sprintf("answer within %s; the token endpoint gives up then, and Entra publishes no longer bound", opts.Timeout)
	case errors.As(err, &fe) && fe.Stage == issuermeta.StageJWKS:
		p.Fix = "serve the JWKS at the discovery document's jwks_uri over https (SPIRE's oidc-discovery-provider serves it at /keys)"
	default:
		p.Fix = "serve /.well-known/openid-configuration under the issuer URL over https, reachable from the internet"
	}
	return p
}

func (r *IssuerReport) timings(md *issuermeta.Metadata, opts IssuerOptions) {
	for _, doc := range []issuermeta.Document{md.Discovery, md.JWKS} {
		if doc.Status == 0 {
			continue
		}
		if doc.Elapsed > opts.Timeout/2 {
			r.add(issuermeta.Problem{What: fmt.Sprintf("%s answered in %s, more than half of the %s a fetch may take", doc.URL, doc.Elapsed.Round(time.Millisecond), opts.Timeout),
				Fix: "serve the documents from memory, close to the internet edge"})
		}
		if int64(doc.Bytes) > opts.MaxBytes/2 {
			r.add(issuermeta.Problem{What: fmt.Sprintf("%s is %d bytes, more than half of the %d a document may have", doc.URL, doc.Bytes, opts.MaxBytes),
				Fix: "publish fewer keys, without certificate chains"})
		}
	}
}

// keys judges the JWKS entries by the rules the token endpoint verifies
// with.
func (r *IssuerReport) keys(md *issuermeta.Metadata, fetched bool) {
	var usable []jose.JSONWebKey
	for _, e := range md.Keys {
		if e.Skipped != "" {
			r.add(issuermeta.Problem{Code: aadsts.SigningKeyNotFound, KeyID: e.Key.KeyID,
				What: e.Skipped + ": Entra ignores it, and tokens signed with it fail", Fix: "publish signing keys with a kid and \"use\": \"sig\""})
			continue
		}
		usable = append(usable, e.Key)
	}
	for _, p := range issuermeta.KeyProblems(usable) {
		r.add(p)
	}
	for _, k := range usable {
		if issuermeta.Unverifiable(k, jose.RS256) == nil {
			r.UsableKeys++
		}
	}
	if fetched && r.UsableKeys == 0 {
		r.add(issuermeta.Problem{Blocking: true, Code: aadsts.SigningKeyNotFound, What: "the JWKS has no key Entra verifies RS256 tokens with",
			Fix: `publish RSA keys of at least 2048 bits: jwt_key_type = "rsa-2048" in the SPIRE server's configuration`})
	}
}

// anyNetwork allows every address: the checks run on the operator's
// machine against the issuer the operator names.
var anyNetwork = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}
