package discovery

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"fmt"
	"strings"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/oidc/keysource"
)

// maxEntraKeys is how many keys Entra reads from a JWKS.
const maxEntraKeys = 100

// entraChecks returns what would make Entra refuse tokens of this issuer.
func entraChecks(issuer string, set keysource.KeySet) []string {
	var out []string
	if !strings.HasPrefix(issuer, "https://") {
		out = append(out, fmt.Sprintf("issuer %s is not https: Entra fetches issuer metadata over https only", issuer))
	}
	if len(set.Keys) > maxEntraKeys {
		out = append(out, fmt.Sprintf("the key set has %d keys: Entra reads only the first %d", len(set.Keys), maxEntraKeys))
	}
	for _, k := range set.Keys {
		switch pub := k.Key.(type) {
		case *rsa.PublicKey:
			if pub.N.BitLen() < 2048 {
				out = append(out, fmt.Sprintf("key %s is RSA-%d: Entra needs RSA keys of at least 2048 bits", k.KeyID, pub.N.BitLen()))
			}
		case *ecdsa.PublicKey:
			out = append(out, fmt.Sprintf("key %s is %s: Entra rejects %s JWT-SVIDs (AADSTS5002738): set jwt_key_type = \"rsa-2048\" in the SPIRE server", k.KeyID, k.Algorithm, k.Algorithm))
		}
	}
	return out
}
