package entra

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/entra/aadsts"
)

// instanceMetadata is one cloud in an instance discovery answer.
type instanceMetadata struct {
	PreferredNetwork string   `json:"preferred_network"`
	PreferredCache   string   `json:"preferred_cache"`
	Aliases          []string `json:"aliases"`
}

// instanceDiscovery answers MSAL's instance discovery for the gateway's own
// host: GET /common/discovery/instance?api-version=1.1&authorization_endpoint=...
// Any other host is an unknown instance, as Entra answers for hosts it
// does not serve; the gateway never contacts the host it is asked about.
func (s *Server) instanceDiscovery(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	endpoint, err := url.Parse(q.Get("authorization_endpoint"))
	if q.Get("authorization_endpoint") == "" || err != nil || endpoint.Scheme != "https" || !strings.EqualFold(endpoint.Host, r.Host) {
		s.writeError(w, r, aadsts.New(aadsts.InvalidInstance, "Unknown or invalid instance."))
		return
	}
	tenant, _, _ := strings.Cut(strings.TrimPrefix(endpoint.Path, "/"), "/")
	if tenant == "" {
		tenant = "common"
	}
	host := strings.ToLower(endpoint.Host)
	body, _ := json.Marshal(struct {
		TenantDiscoveryEndpoint string             `json:"tenant_discovery_endpoint"`
		APIVersion              string             `json:"api-version"`
		Metadata                []instanceMetadata `json:"metadata"`
	}{
		TenantDiscoveryEndpoint: "https://" + host + "/" + tenant + "/v2.0/.well-known/openid-configuration",
		APIVersion:              "1.1",
		Metadata:                []instanceMetadata{{PreferredNetwork: host, PreferredCache: host, Aliases: []string{host}}},
	})
	writeJSON(w, body, "max-age=86400, private")
}
