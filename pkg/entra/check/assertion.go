package check

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/aadsts"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/federation"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/issuermeta"
)

// Token is what an assertion says about itself, read without verifying it.
type Token struct {
	Alg       string   `json:"alg,omitempty"`
	Kid       string   `json:"kid,omitempty"`
	Typ       string   `json:"typ,omitempty"`
	Issuer    string   `json:"iss,omitempty"`
	Subject   string   `json:"sub,omitempty"`
	Audience  []string `json:"aud,omitempty"`
	IssuedAt  *int64   `json:"iat,omitempty"`
	NotBefore *int64   `json:"nbf,omitempty"`
	Expiry    *int64   `json:"exp,omitempty"`
}

// Refusal is the token endpoint's answer to an assertion it refuses.
type Refusal struct {
	Code    int    `json:"aadsts"`
	Error   string `json:"error"`
	Status  int    `json:"status"`
	Message string `json:"message"`
}

// Credential is a federated identity credential, in Graph's field names.
type Credential struct {
	ID                       string   `json:"id,omitempty"`
	Name                     string   `json:"name"`
	Issuer                   string   `json:"issuer"`
	Subject                  string   `json:"subject,omitempty"`
	Audiences                []string `json:"audiences"`
	ClaimsMatchingExpression string   `json:"claimsMatchingExpression,omitempty"`
}

func credential(c store.FederatedCredential) *Credential {
	return &Credential{ID: c.ID, Name: c.Name, Issuer: c.Issuer, Subject: c.Subject, Audiences: c.Audiences, ClaimsMatchingExpression: c.ClaimsMatchingExpression}
}

// NearMiss is the credential that came closest to matching, and how it
// differs from the assertion.
type NearMiss struct {
	Credential  *Credential `json:"credential"`
	Differences []string    `json:"differences"`
}

// AssertionReport is the verdict on an assertion.
type AssertionReport struct {
	Token        Token       `json:"token"`
	Exchangeable bool        `json:"exchangeable"`
	Matched      *Credential `json:"matched,omitempty"`
	Refusal      *Refusal    `json:"refusal,omitempty"`
	Nearest      *NearMiss   `json:"nearest,omitempty"`
}

// Assertion says whether Entra would exchange assertion for a client
// holding creds: v is the token endpoint's verifier, so the answer is the
// endpoint's. When no credential matches, it names the nearest one.
func Assertion(ctx context.Context, v *federation.Verifier, assertion string, creds []store.FederatedCredential) AssertionReport {
	r := AssertionReport{Token: readToken(assertion)}
	m, err := v.Verify(ctx, assertion, creds)
	if err == nil {
		r.Exchangeable, r.Matched = true, credential(m.Credential)
		return r
	}
	var aerr *aadsts.Error
	if !errors.As(err, &aerr) {
		aerr = aadsts.New(aadsts.ServiceUnavailable, "%v", err)
	}
	r.Refusal = &Refusal{Code: aerr.Code, Error: aerr.OAuth, Status: aerr.Status, Message: aerr.Error()}
	switch aerr.Code {
	case aadsts.NoMatchingIssuer, aadsts.NoMatchingAudience, aadsts.NoMatchingSubject, aadsts.NoMatchingSubjectCase, aadsts.NoMatchingExpression:
		r.Nearest = nearest(r.Token, creds)
	}
	return r
}

// Verifier returns the token endpoint's assertion verifier, fetching
// issuers with the system's roots and the PEM certificates in ca, from any
// network: the operator aims the check at an issuer of their choosing.
func Verifier(ca []byte) *federation.Verifier {
	opts := []issuermeta.Option{issuermeta.WithAllowedNetworks(anyNetwork...)}
	if ca != nil {
		opts = append(opts, issuermeta.WithRootCAs(withSystemRoots(ca)))
	}
	return federation.NewVerifier(issuermeta.New(opts...))
}

// readToken decodes the header and claims without judging them: the
// verifier does that.
func readToken(assertion string) Token {
	var t Token
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return t
	}
	if b, err := base64.RawURLEncoding.DecodeString(parts[0]); err == nil {
		_ = json.Unmarshal(b, &t)
	}
	var c struct {
		Iss string          `json:"iss"`
		Sub string          `json:"sub"`
		Aud json.RawMessage `json:"aud"`
		Iat *int64          `json:"iat"`
		Nbf *int64          `json:"nbf"`
		Exp *int64          `json:"exp"`
	}
	if b, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil && json.Unmarshal(b, &c) == nil {
		t.Issuer, t.Subject, t.IssuedAt, t.NotBefore, t.Expiry = c.Iss, c.Sub, c.Iat, c.Nbf, c.Exp
		var one string
		if json.Unmarshal(c.Aud, &one) == nil {
			t.Audience = []string{one}
		} else {
			_ = json.Unmarshal(c.Aud, &t.Audience)
		}
	}
	return t
}

// nearest ranks the credentials by how far each is from the assertion: a
// value differing only in case, whitespace or a trailing slash counts as
// one, any other difference as three.
func nearest(t Token, creds []store.FederatedCredential) *NearMiss {
	var best *NearMiss
	bestScore := 0
	for _, c := range creds {
		var diffs []string
		score := 0
		note := func(field, want, got string) {
			if d, near := compare(field, want, got); d != "" {
				diffs = append(diffs, d)
				score += map[bool]int{true: 1, false: 3}[near]
			}
		}
		note("issuer", c.Issuer, t.Issuer)
		aud := ""
		if len(c.Audiences) > 0 {
			aud = c.Audiences[0]
		}
		if !slices.Contains(t.Audience, aud) {
			got := strings.Join(t.Audience, ",")
			for _, a := range t.Audience {
				if _, near := compare("", aud, a); near {
					got = a
				}
			}
			note("audience", aud, got)
		}
		if c.ClaimsMatchingExpression != "" {
			diffs = append(diffs, fmt.Sprintf("the credential matches by the expression %q, which Entra honours for GitHub, GitLab and Terraform Cloud issuers only, and it did not match", c.ClaimsMatchingExpression))
			score += 3
		} else {
			note("subject", c.Subject, t.Subject)
		}
		if best == nil || score < bestScore {
			best, bestScore = &NearMiss{Credential: credential(c), Differences: diffs}, score
		}
	}
	return best
}

// compare describes how got differs from want, and whether the difference
// is a near one.
func compare(field, want, got string) (string, bool) {
	switch {
	case want == got:
		return "", false
	case strings.EqualFold(want, got):
		return fmt.Sprintf("%s differs only in case: the credential has %q, the token %q (Entra compares case-sensitively)", field, want, got), true
	case strings.TrimSpace(want) == strings.TrimSpace(got):
		return fmt.Sprintf("%s differs only in whitespace: the credential has %q, the token %q", field, want, got), true
	case strings.TrimSuffix(want, "/") == strings.TrimSuffix(got, "/"):
		return fmt.Sprintf("%s differs only by a trailing slash: the credential has %q, the token %q (Entra adds or removes none)", field, want, got), true
	}
	return fmt.Sprintf("%s differs: the credential has %q, the token %q", field, want, got), false
}
