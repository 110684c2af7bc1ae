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
			if actionPattern(p).MatchString(action) {
				return true
			}
		}
		return false
	}
	return matches(r.Actions) && !matches(r.NotActions)
}

func actionPattern(p string) *regexp.Regexp {
	return regexp.MustCompile("(?i)^" + strings.ReplaceAll(regexp.QuoteMeta(p), `\*`, ".*") + "$")
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
