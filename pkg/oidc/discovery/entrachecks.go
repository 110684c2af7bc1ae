package discovery

import (
	"fmt"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/issuermeta"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/oidc/keysource"
)

// entraChecks returns what would make Entra refuse tokens of this issuer,
// by the rules the token endpoint and `check issuer` apply.
func entraChecks(issuer string, set keysource.KeySet) []string {
	var out []string
	for _, p := range append(issuermeta.IssuerURLProblems(issuer), issuermeta.KeyProblems(set.Keys)...) {
		s := p.What
		if p.Code != 0 {
			s += fmt.Sprintf(" (AADSTS%d)", p.Code)
		}
		if p.Fix != "" {
			s += ": " + p.Fix
		}
		out = append(out, s)
	}
	return out
}
