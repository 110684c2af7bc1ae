package directory

import (
	"slices"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
)

// ExpressionIssuers are the issuers Entra honours flexible credentials
// (claimsMatchingExpression) for, compared byte for byte.
var ExpressionIssuers = []string{"https://token.actions.githubusercontent.com", "https://gitlab.com", "https://app.terraform.io"}

// ExpressionAllowedByEntra reports whether Entra would honour a flexible
// credential for issuer.
func ExpressionAllowedByEntra(issuer string) bool { return slices.Contains(ExpressionIssuers, issuer) }

// EntraWouldRefuse explains why Entra would refuse c although the gateway
// can be told to accept it, or returns "" when Entra would accept it. The
// gateway warns with this text whenever such a credential is stored.
func EntraWouldRefuse(c store.FederatedCredential) string {
	if c.ClaimsMatchingExpression != "" && !ExpressionAllowedByEntra(c.Issuer) {
		return "Entra honours claimsMatchingExpression only for GitHub, GitLab and Terraform Cloud issuers; " +
			"this credential works only on a gateway run with flexible credentials allowed for any issuer"
	}
	return ""
}
