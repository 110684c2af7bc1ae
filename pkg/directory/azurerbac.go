package directory

import (
	"regexp"
	"strings"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
)

// AzureRole is a built-in Azure role: what its holders may do on the ARM
// surface, in Azure's action syntax (a * matches anything, slashes too).
type AzureRole struct {
	ID          string // the role definition's GUID, the same in every Azure tenant
	Name        string
	Description string
	Actions     []string
	NotActions  []string
}

// The built-in roles the gateway models, with Azure's ids.
var (
	RoleOwner = AzureRole{ID: "8e3af657-a8ff-443c-a75c-2fe8c4bcb635", Name: "Owner",
		Description: "Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.",
		Actions:     []string{"*"}}
	RoleContributor = AzureRole{ID: "b24988ac-6180-42a0-ab88-20f7382dd24c", Name: "Contributor",
		Description: "Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC.",
		Actions:     []string{"*"},
		NotActions:  []string{"Microsoft.Authorization/*/Delete", "Microsoft.Authorization/*/Write", "Microsoft.Authorization/elevateAccess/Action"}}
	RoleManagedIdentityContributor = AzureRole{ID: "e40ec5ca-96e0-45a2-b4ff-59039f2c2b59", Name: "Managed Identity Contributor",
		Description: "Create, Read, Update, and Delete User Assigned Identity",
		Actions:     []string{"Microsoft.ManagedIdentity/userAssignedIdentities/*", "Microsoft.Authorization/*/read"}}
	RoleManagedIdentityOperator = AzureRole{ID: "f1a07417-d97a-45cb-824c-7a7467783830", Name: "Managed Identity Operator",
		Description: "Read and Assign User Assigned Identity",
		Actions: []string{"Microsoft.ManagedIdentity/userAssignedIdentities/read", "Microsoft.ManagedIdentity/userAssignedIdentities/*/read",
			"Microsoft.ManagedIdentity/userAssignedIdentities/*/assign/action", "Microsoft.Authorization/*/read"}}
	RoleReader = AzureRole{ID: "acdd72a7-3385-48ef-bd42-f606fba81ae7", Name: "Reader",
		Description: "View all resources, but does not allow you to make any changes.",
		Actions:     []string{"*/read"}}
)

// AzureRoles are the built-in roles, in the order ARM lists them.
var AzureRoles = []AzureRole{RoleOwner, RoleContributor, RoleManagedIdentityContributor, RoleManagedIdentityOperator, RoleReader}

// FindAzureRole finds a built-in role by GUID or by name (case-insensitive).
func FindAzureRole(idOrName string) (AzureRole, bool) {
	for _, r := range AzureRoles {
		if strings.EqualFold(r.ID, idOrName) || strings.EqualFold(r.Name, idOrName) {
			return r, true
		}
	}
	return AzureRole{}, false
}

// Allows reports whether the role permits action: one of Actions matches
// it and none of NotActions does. Actions compare case-insensitively.
func (r AzureRole) Allows(action string) bool {
	matches := func(patterns []string) bool {
		for _, p := range patterns {
			if actionMatches(p, action) {
				return true
			}
		}
		return false
	}
	return matches(r.Actions) && !matches(r.NotActions)
}

// actionMatches reports whether action matches pattern, Azure's action
// syntax: a * matches any run of characters, slashes too, and letters
// compare case-insensitively. It runs on every ARM request for every role
// assigned to the caller, so it compiles nothing.
func actionMatches(pattern, action string) bool {
	parts := strings.Split(strings.ToLower(pattern), "*")
	s := strings.ToLower(action)
	if len(parts) == 1 {
		return s == parts[0]
	}
	first, last := parts[0], parts[len(parts)-1]
	if !strings.HasPrefix(s, first) {
		return false
	}
	s = s[len(first):]
	for _, mid := range parts[1 : len(parts)-1] {
		i := strings.Index(s, mid)
		if i < 0 {
			return false
		}
		s = s[i+len(mid):]
	}
	return strings.HasSuffix(s, last)
}

// ScopeCovers reports whether an assignment at scope applies to target: the
// same scope or one below it, compared case-insensitively.
func ScopeCovers(scope, target string) bool {
	scope, target = strings.TrimSuffix(strings.ToLower(scope), "/"), strings.TrimSuffix(strings.ToLower(target), "/")
	return target == scope || strings.HasPrefix(target, scope+"/")
}

// AzureAuthorized reports whether any of assignments grants action at
// target.
func AzureAuthorized(assignments []store.RoleAssignment, action, target string) bool {
	for _, a := range assignments {
		if r, ok := FindAzureRole(a.RoleDefinitionID); ok && ScopeCovers(a.Scope, target) && r.Allows(action) {
			return true
		}
	}
	return false
}

// AzureScope checks that scope is one the gateway assigns roles at — a
// subscription, a resource group or a user-assigned managed identity — and
// returns it in lower case with its subscription id.
func AzureScope(scope string) (normalized, subscription string, ok bool) {
	m := azureScope.FindStringSubmatch(scope)
	if m == nil {
		return "", "", false
	}
	return strings.TrimSuffix(strings.ToLower(scope), "/"), strings.ToLower(m[1]), true
}

var azureScope = regexp.MustCompile(`(?i)^/subscriptions/([^/]+)(?:/resourcegroups/[^/]+(?:/providers/Microsoft\.ManagedIdentity/userAssignedIdentities/[^/]+)?)?/?$`)
