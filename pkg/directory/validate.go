package directory

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
)

// TokenExchangeAudience is the audience Entra expects federated assertions
// to carry, and the default of a federated credential's audiences.
const TokenExchangeAudience = "api://AzureADTokenExchange"

// Rule names a validation rule, so that each API surface can map it to its
// own error code (Graph's InvalidFederatedIdentityCredentialValue, ARM's
// InvalidFederatedIdentityCredentialsAudienceLength, ...).
type Rule string

// Rules of federated identity credentials (reference/entra.md, section 1.1).
const (
	RuleName            Rule = "name"
	RuleRequired        Rule = "required"
	RuleTooLong         Rule = "too-long"
	RuleAudienceCount   Rule = "audience-count"
	RuleSubjectOrClaims Rule = "subject-or-claims"
	RuleNameImmutable   Rule = "name-immutable"
	RuleExpression      Rule = "expression"
	RuleIssuerURL       Rule = "issuer-url"
)

// FieldError is one violated rule, naming the field and the value.
type FieldError struct {
	Field   string // as Graph names it: name, issuer, subject, audiences, description, claimsMatchingExpression
	Value   string
	Rule    Rule
	Message string
}

func (e *FieldError) Error() string { return e.Message }

// maxValue is Entra's limit on issuer, subject, audience and description.
const maxValue = 600

var ficName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{2,119}$`)

// ExpressionParser checks a flexible credential's expression; the
// federation package provides it, so that the directory and the token
// endpoint agree on the language.
type ExpressionParser func(expr string) error

// ValidateFederatedCredential checks c against Entra's rules. Uniqueness and
// the per-owner limit are enforced by the store in the same transaction as
// the write.
func ValidateFederatedCredential(c store.FederatedCredential, parse ExpressionParser) error {
	if !ficName.MatchString(c.Name) {
		return &FieldError{Field: "name", Value: c.Name, Rule: RuleName,
			Message: fmt.Sprintf("The name of a federated identity credential must be within 3 and 120 characters, only contain letters (A-Z, a-z), numbers, hyphens and underscores, and start with a letter or a number; %q is not.", c.Name)}
	}
	if c.Issuer == "" {
		return required("issuer")
	}
	if utf8.RuneCountInString(c.Issuer) <= maxValue && !issuerURL(c.Issuer) {
		return &FieldError{Field: "issuer", Value: c.Issuer, Rule: RuleIssuerURL,
			Message: fmt.Sprintf("The federated identity credential's issuer must be an https URL with a host name and no user info, query or fragment, as OpenID Connect Discovery requires of an issuer; %q is not.", c.Issuer)}
	}
	for _, f := range []struct{ field, value string }{{"issuer", c.Issuer}, {"subject", c.Subject}, {"description", c.Description}} {
		if utf8.RuneCountInString(f.value) > maxValue {
			return tooLong(f.field, f.value)
		}
	}
	if len(c.Audiences) != 1 {
		return &FieldError{Field: "audiences", Value: fmt.Sprint(c.Audiences), Rule: RuleAudienceCount,
			Message: fmt.Sprintf("Federated identity credentials must have exactly 1 audience; %d given.", len(c.Audiences))}
	}
	if c.Audiences[0] == "" {
		return required("audiences")
	}
	if utf8.RuneCountInString(c.Audiences[0]) > maxValue {
		return tooLong("audiences", c.Audiences[0])
	}
	switch {
	case c.Subject != "" && c.ClaimsMatchingExpression != "":
		return &FieldError{Field: "subject", Value: c.Subject, Rule: RuleSubjectOrClaims,
			Message: "A federated identity credential has either a subject or a claimsMatchingExpression, not both."}
	case c.Subject == "" && c.ClaimsMatchingExpression == "":
		return &FieldError{Field: "subject", Rule: RuleSubjectOrClaims,
			Message: "A federated identity credential needs a subject or a claimsMatchingExpression."}
	case c.ClaimsMatchingExpression != "":
		if err := parse(c.ClaimsMatchingExpression); err != nil {
			return &FieldError{Field: "claimsMatchingExpression", Value: c.ClaimsMatchingExpression, Rule: RuleExpression,
				Message: fmt.Sprintf("The claimsMatchingExpression is not valid: %v.", err)}
		}
	}
	return nil
}

// ValidateFederatedCredentialUpdate checks an update of old to c: the name
// cannot change, and the result must be valid.
func ValidateFederatedCredentialUpdate(old, c store.FederatedCredential, parse ExpressionParser) error {
	if c.Name != old.Name {
		return &FieldError{Field: "name", Value: c.Name, Rule: RuleNameImmutable,
			Message: fmt.Sprintf("The name of a federated identity credential cannot be changed (from %q to %q).", old.Name, c.Name)}
	}
	return ValidateFederatedCredential(c, parse)
}

// issuerURL reports whether iss is an issuer Entra can fetch keys from: an
// https URL naming a host, without user info, query or fragment (OpenID
// Connect Discovery 1.0, section 2). Anything else would let a caller aim the
// issuer fetcher at a file or an internal endpoint.
func issuerURL(iss string) bool {
	u, err := url.Parse(iss)
	return err == nil && u.Scheme == "https" && u.Hostname() != "" && u.User == nil &&
		u.RawQuery == "" && !u.ForceQuery && u.Fragment == "" && !strings.Contains(iss, "#") && strings.TrimSpace(iss) == iss
}

func required(field string) *FieldError {
	return &FieldError{Field: field, Rule: RuleRequired, Message: fmt.Sprintf("The federated identity credential's %s is required.", field)}
}

func tooLong(field, value string) *FieldError {
	return &FieldError{Field: field, Value: value, Rule: RuleTooLong,
		Message: fmt.Sprintf("The federated identity credential's %s must be at most %d characters; it has %d.", field, maxValue, utf8.RuneCountInString(value))}
}

// ManagedIdentityID is a user-assigned managed identity's ARM resource id,
// with the subscription and resource group in lower case as ARM compares
// them case-insensitively.
func ManagedIdentityID(subscription, resourceGroup, name string) string {
	return "/subscriptions/" + strings.ToLower(subscription) + "/resourcegroups/" + strings.ToLower(resourceGroup) +
		"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/" + name
}
