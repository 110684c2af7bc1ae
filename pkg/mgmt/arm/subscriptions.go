package arm

import (
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
)

// SubscriptionAPIVersions are the api-version values served for listing
// subscriptions and reading resource groups (az 2.45 uses 2019-11-01 and
// 2022-09-01).
var SubscriptionAPIVersions = []string{"2016-06-01", "2019-11-01", "2020-01-01", "2021-04-01", "2022-09-01", "2022-12-01"}

// DefaultLocation is the location of every resource group: the gateway
// keeps no resource groups, and az identity create without -l takes the
// group's.
const DefaultLocation = "westus"

// resourceGroupPath is a resource group, the one resource above identities
// az reads.
var resourceGroupPath = regexp.MustCompile(`(?i)^/subscriptions/([^/]+)/resourcegroups/([^/]+)/?$`)

// subscriptions answers GET /subscriptions (az checks --subscription
// against it at login), GET /tenants (az account tenant list) and GET of a
// resource group; it reports false for any other path.
func (s *Server) subscriptions(q *call) (bool, error) {
	p := strings.TrimSuffix(q.r.URL.Path, "/")
	m := resourceGroupPath.FindStringSubmatch(q.r.URL.Path)
	if p != "/subscriptions" && p != "/tenants" && m == nil {
		return false, nil
	}
	if q.r.Method != http.MethodGet {
		return true, newError(http.StatusMethodNotAllowed, "MethodNotAllowed", "The HTTP method is not allowed on this resource.")
	}
	if err := checkVersion(q.r, SubscriptionAPIVersions); err != nil {
		return true, err
	}
	if m != nil {
		return true, s.resourceGroup(q, m[1], m[2])
	}
	if p == "/tenants" {
		return true, s.tenants(q)
	}
	subs, err := s.store.ListSubscriptions(q.r.Context(), q.caller.TenantID)
	if err != nil {
		return true, err
	}
	as, err := s.store.ListPrincipalRoleAssignments(q.r.Context(), q.caller.ObjectID)
	if err != nil {
		return true, err
	}
	out := []map[string]any{}
	for _, sub := range subs {
		// Listed where the caller holds a role, at the subscription or
		// below, as ARM lists them.
		scope := "/subscriptions/" + strings.ToLower(sub.ID)
		if !slices.ContainsFunc(as, func(a store.RoleAssignment) bool {
			lower := strings.ToLower(a.Scope)
			return a.TenantID == q.caller.TenantID && (lower == scope || strings.HasPrefix(lower, scope+"/"))
		}) {
			continue
		}
		out = append(out, map[string]any{
			"id": "/subscriptions/" + sub.ID, "authorizationSource": "RoleBased", "managedByTenants": []any{},
			"subscriptionId": sub.ID, "tenantId": sub.TenantID, "displayName": sub.DisplayName, "state": "Enabled",
			"subscriptionPolicies": map[string]string{"locationPlacementId": "Public_2014-09-01", "quotaId": "PayAsYouGo_2014-09-01", "spendingLimit": "Off"},
		})
	}
	writeJSON(q.w, http.StatusOK, map[string]any{"value": out, "count": map[string]any{"type": "Total", "value": len(out)}})
	return true, nil
}

// tenants lists the caller's tenant, the one a token names.
func (s *Server) tenants(q *call) error {
	t, err := s.store.GetTenant(q.r.Context(), q.caller.TenantID)
	if err != nil {
		return err
	}
	domains := t.Domains
	if domains == nil {
		domains = []string{}
	}
	writeJSON(q.w, http.StatusOK, map[string]any{"value": []map[string]any{{
		"id": "/tenants/" + t.ID, "tenantId": t.ID, "tenantCategory": "Home", "displayName": t.DisplayName,
		"domains": domains, "defaultDomain": firstOr(domains, ""), "tenantType": "AAD",
	}}})
	return nil
}

func firstOr(list []string, fallback string) string {
	if len(list) > 0 {
		return list[0]
	}
	return fallback
}

// resourceGroup answers for any resource group of a subscription of the
// caller's tenant that the caller may read: the gateway keeps identities
// under any group name, so every group exists.
func (s *Server) resourceGroup(q *call, sub, rg string) error {
	if err := s.checkSubscription(q, sub); err != nil {
		return err
	}
	id := "/subscriptions/" + strings.ToLower(sub) + "/resourceGroups/" + rg
	if err := s.authorize(q, "Microsoft.Resources/subscriptions/resourceGroups/read", id); err != nil {
		return err
	}
	writeJSON(q.w, http.StatusOK, map[string]any{
		"id": id, "name": rg, "type": "Microsoft.Resources/resourceGroups", "location": DefaultLocation,
		"properties": map[string]string{"provisioningState": "Succeeded"},
	})
	return nil
}

// MetadataEndpoints answers GET /metadata/endpoints, where az cloud register
// reads a cloud's login endpoint and audiences when its configuration leaves
// them out: the gateway's ADFS-shaped authority (entra.WithDefaultTenant)
// and its own address for Graph.
func MetadataEndpoints(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"error": map[string]string{"code": "MethodNotAllowed", "message": "The HTTP method is not allowed on this resource."}})
		return
	}
	self := "https://" + r.Host + "/"
	writeJSON(w, http.StatusOK, map[string]any{
		"galleryEndpoint": self, "graphEndpoint": self, "portalEndpoint": self,
		"authentication": map[string]any{"loginEndpoint": self + "adfs", "audiences": directory.ARMResources},
	})
}
