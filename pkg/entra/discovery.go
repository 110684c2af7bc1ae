package entra

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// discoveryV2 is the v2.0 OpenID configuration in Entra's field order.
type discoveryV2 struct {
	TokenEndpoint                     string   `json:"token_endpoint"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	JWKSURI                           string   `json:"jwks_uri"`
	ResponseModesSupported            []string `json:"response_modes_supported"`
	SubjectTypesSupported             []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported  []string `json:"id_token_signing_alg_values_supported"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	ScopesSupported                   []string `json:"scopes_supported"`
	Issuer                            string   `json:"issuer"`
	RequestURIParameterSupported      bool     `json:"request_uri_parameter_supported"`
	UserinfoEndpoint                  string   `json:"userinfo_endpoint"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	DeviceAuthorizationEndpoint       string   `json:"device_authorization_endpoint"`
	HTTPLogoutSupported               bool     `json:"http_logout_supported"`
	FrontchannelLogoutSupported       bool     `json:"frontchannel_logout_supported"`
	EndSessionEndpoint                string   `json:"end_session_endpoint"`
	ClaimsSupported                   []string `json:"claims_supported"`
	KerberosEndpoint                  string   `json:"kerberos_endpoint"`
	TenantRegionScope                 *string  `json:"tenant_region_scope"`
	CloudInstanceName                 string   `json:"cloud_instance_name"`
	CloudGraphHostName                string   `json:"cloud_graph_host_name"`
	MSGraphHost                       string   `json:"msgraph_host"`
	RBACURL                           string   `json:"rbac_url"`
}

var authMethods = []string{"client_secret_post", "private_key_jwt", "client_secret_basic"}

// baseURL is the scheme and host:port the client used: MSAL compares the
// discovered issuer's host with its authority's.
func baseURL(r *http.Request) string {
	return "https://" + r.Host
}

// tenantSegment returns the tenant as Entra writes it into URLs: the tenant
// id, or the {tenantid} placeholder for the multi-tenant aliases.
func (s *Server) tenantSegment(r *http.Request) (string, error) {
	name := r.PathValue("tenant")
	if isMultiTenant(name) {
		return "{tenantid}", nil
	}
	if strings.EqualFold(name, adfs) && s.opts.defaultTenant != "" {
		name = s.opts.defaultTenant
	}
	dir, err := s.view(r.Context())
	if err != nil {
		return "", err
	}
	t, err := resolveTenant(r.Context(), dir, name)
	if err != nil {
		return "", err
	}
	return t.ID, nil
}

func isMultiTenant(name string) bool {
	switch strings.ToLower(name) {
	case "common", "organizations":
		return true
	}
	return false
}

// adfs is the tenant segment of an ADFS-shaped authority (WithDefaultTenant).
const adfs = "adfs"

func (s *Server) discovery(version int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v2 := version == 2
		if strings.EqualFold(r.PathValue("tenant"), adfs) {
			// MSAL reads {authority}/.well-known/openid-configuration for ADFS
			// and then speaks v2.0 to the token endpoint found there.
			v2 = true
		}
		tid, err := s.tenantSegment(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		base := baseURL(r) + "/" + tid
		var doc any
		if v2 {
			doc = discoveryV2{
				TokenEndpoint:                     base + "/oauth2/v2.0/token",
				TokenEndpointAuthMethodsSupported: authMethods,
				JWKSURI:                           base + "/discovery/v2.0/keys",
				ResponseModesSupported:            []string{"query", "fragment", "form_post"},
				SubjectTypesSupported:             []string{"pairwise"},
				IDTokenSigningAlgValuesSupported:  []string{"RS256"},
				ResponseTypesSupported:            []string{"code", "id_token", "code id_token", "id_token token"},
				ScopesSupported:                   []string{"openid", "profile", "email", "offline_access"},
				Issuer:                            base + "/v2.0",
				UserinfoEndpoint:                  "https://graph.microsoft.com/oidc/userinfo",
				AuthorizationEndpoint:             base + "/oauth2/v2.0/authorize",
				DeviceAuthorizationEndpoint:       base + "/oauth2/v2.0/devicecode",
				HTTPLogoutSupported:               true,
				FrontchannelLogoutSupported:       true,
				EndSessionEndpoint:                base + "/oauth2/v2.0/logout",
				ClaimsSupported:                   claimsSupported,
				KerberosEndpoint:                  base + "/kerberos",
				CloudInstanceName:                 "microsoftonline.com",
				CloudGraphHostName:                "graph.windows.net",
				MSGraphHost:                       "graph.microsoft.com",
				RBACURL:                           "https://pas.windows.net",
			}
		} else {
			doc = discoveryV1{
				TokenEndpoint:                     base + "/oauth2/token",
				TokenEndpointAuthMethodsSupported: authMethods,
				JWKSURI:                           baseURL(r) + "/common/discovery/keys",
				ResponseModesSupported:            []string{"query", "fragment", "form_post"},
				SubjectTypesSupported:             []string{"pairwise"},
				IDTokenSigningAlgValuesSupported:  []string{"RS256"},
				ResponseTypesSupported:            []string{"code", "id_token", "code id_token", "token id_token", "token"},
				ScopesSupported:                   []string{"openid"},
				Issuer:                            v1Issuer(tid),
				AuthorizationEndpoint:             base + "/oauth2/authorize",
				DeviceAuthorizationEndpoint:       base + "/oauth2/devicecode",
				EndSessionEndpoint:                base + "/oauth2/logout",
				CloudInstanceName:                 "microsoftonline.com",
				CloudGraphHostName:                "graph.windows.net",
				MSGraphHost:                       "graph.microsoft.com",
				RBACURL:                           "https://pas.windows.net",
			}
		}
		body, _ := json.Marshal(doc)
		writeJSON(w, body, "max-age=86400, private")
	}
}

// discoveryV1 is the v1 OpenID configuration.
type discoveryV1 struct {
	TokenEndpoint                     string   `json:"token_endpoint"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	JWKSURI                           string   `json:"jwks_uri"`
	ResponseModesSupported            []string `json:"response_modes_supported"`
	SubjectTypesSupported             []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported  []string `json:"id_token_signing_alg_values_supported"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	ScopesSupported                   []string `json:"scopes_supported"`
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	DeviceAuthorizationEndpoint       string   `json:"device_authorization_endpoint"`
	EndSessionEndpoint                string   `json:"end_session_endpoint"`
	CloudInstanceName                 string   `json:"cloud_instance_name"`
	CloudGraphHostName                string   `json:"cloud_graph_host_name"`
	MSGraphHost                       string   `json:"msgraph_host"`
	RBACURL                           string   `json:"rbac_url"`
}

var claimsSupported = []string{
	"sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host",
	"aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash",
	"c_hash", "email",
}

// v1Issuer is the issuer of v1 tokens, which Entra does not put on its own host.
func v1Issuer(tid string) string { return "https://sts.windows.net/" + tid + "/" }

// keys serves the signing keys. The v2 endpoint adds the issuer member, as
// Entra's does, so that multi-tenant validators can check iss per key.
func (s *Server) keys(version int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tid, err := s.tenantSegment(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		body := s.signer.PublicKeysJSON()
		if version == 2 {
			if body, err = withIssuer(body, baseURL(r)+"/"+tid+"/v2.0"); err != nil {
				s.writeError(w, r, fmt.Errorf("add the issuer to the key set: %w", err))
				return
			}
		}
		writeJSON(w, body, "max-age=86400, private")
	}
}

func withIssuer(jwks []byte, issuer string) ([]byte, error) {
	var set struct {
		Keys []map[string]json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &set); err != nil {
		return nil, err
	}
	iss, _ := json.Marshal(issuer)
	for _, k := range set.Keys {
		k["issuer"] = iss
	}
	return json.Marshal(set)
}

func writeJSON(w http.ResponseWriter, body []byte, cacheControl string) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", cacheControl)
	_, _ = w.Write(body)
}
