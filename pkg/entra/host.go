package entra

import (
	"net/http"
	"strings"
	"time"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/aadsts"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/platform/hostname"
)

// DevHosts are the development gateway's authority host names.
var DevHosts = []string{"localhost", "127.0.0.1", "::1"}

// HostPolicy serves only requests whose Host is one of hosts (names without
// port, compared case-insensitively) and answers any other with Entra's
// AADSTS50049, before next sees it. The Host is written into discovery
// (issuer, jwks_uri, token_endpoint), into the iss of issued tokens and into
// the audience a client assertion must name; a caller choosing it could
// make the gateway accept an assertion meant for Entra itself
// (Host: login.microsoftonline.com) or publish documents naming a host of
// its own.
func HostPolicy(hosts []string, next http.Handler) http.Handler {
	allowed := map[string]bool{}
	for _, h := range hosts {
		allowed[strings.ToLower(strings.Trim(h, "[]"))] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowed[hostname.Of(r.Host)] {
			aadsts.Write(w, r, aadsts.New(aadsts.InvalidInstance, "Unknown or invalid instance."), time.Now())
			return
		}
		next.ServeHTTP(w, r)
	})
}
