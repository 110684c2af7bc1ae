package arm

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory"
	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
)

// rbacPath matches {scope}/providers/Microsoft.Authorization/{roleAssignments|roleDefinitions}[/{name}]
// at the scopes the gateway has: a subscription, a resource group, a
// user-assigned managed identity.
var rbacPath = regexp.MustCompile(`(?i)^(/subscriptions/([^/]+)(?:/resourcegroups/[^/]+(?:/providers/Microsoft\.ManagedIdentity/userAssignedIdentities/[^/]+)?)?)/providers/Microsoft\.Authorization/(roleAssignments|roleDefinitions)(?:/([^/]+))?/?$`)

const (
	roleAssignmentType = "Microsoft.Authorization/roleAssignments"
	roleDefinitionType = "Microsoft.Authorization/roleDefinitions"
)

// authorize is ARM's 403 AuthorizationFailed unless an Azure role
// assignment of the caller, at scope or above, allows action. Tokens carry
// no Azure roles: the store is asked on every call, so a revoked
// assignment takes effect at once.
func (s *Server) authorize(q *call, action, scope string) error {
	as, err := s.store.ListPrincipalRoleAssignments(q.r.Context(), q.caller.ObjectID)
	if err != nil {
		return err
	}
	as = slices.DeleteFunc(as, func(a store.RoleAssignment) bool { return a.TenantID != q.caller.TenantID })
	if directory.AzureAuthorized(as, action, scope) {
		return nil
	}
	return newError(http.StatusForbidden, "AuthorizationFailed", fmt.Sprintf(
		"The client '%s' with object id '%s' does not have authorization to perform action '%s' over scope '%s' or the scope is invalid. If access was recently granted, please refresh your credentials.",
		q.caller.AppID, q.caller.ObjectID, action, scope))
}

type roleAssignmentProperties struct {
	RoleDefinitionID string `json:"roleDefinitionId"`
	PrincipalID      string `json:"principalId"`
	PrincipalType    string `json:"principalType,omitempty"`
	Scope            string `json:"scope,omitempty"`
	CreatedOn        string `json:"createdOn,omitempty"`
}

type roleAssignmentJSON struct {
	ID         string                   `json:"id"`
	Name       string                   `json:"name"`
	Type       string                   `json:"type"`
	Properties roleAssignmentProperties `json:"properties"`
}

func roleDefinitionID(sub, roleID string) string {
	return "/subscriptions/" + strings.ToLower(sub) + "/providers/" + roleDefinitionType + "/" + roleID
}

func toRoleAssignmentJSON(a store.RoleAssignment) roleAssignmentJSON {
	_, sub, _ := directory.AzureScope(a.Scope)
	return roleAssignmentJSON{ID: a.Scope + "/providers/" + roleAssignmentType + "/" + a.ID, Name: a.ID, Type: roleAssignmentType,
		Properties: roleAssignmentProperties{RoleDefinitionID: roleDefinitionID(sub, a.RoleDefinitionID), PrincipalID: a.PrincipalID,
			PrincipalType: "ServicePrincipal", Scope: a.Scope, CreatedOn: a.CreatedAt.UTC().Format(time.RFC3339)}}
}

// roleAssignments serves {scope}/providers/Microsoft.Authorization/roleAssignments[/{name}].
func (s *Server) roleAssignments(q *call, scope, name string) error {
	scope, _, _ = directory.AzureScope(scope)
	w, r := q.w, q.r
	if name == "" {
		if r.Method != http.MethodGet {
			return newError(http.StatusMethodNotAllowed, "MethodNotAllowed", "The HTTP method is not allowed on this resource.")
		}
		return s.listRoleAssignments(q, scope)
	}
	action, ok := actions[r.Method]
	if !ok {
		return newError(http.StatusMethodNotAllowed, "MethodNotAllowed", "The HTTP method is not allowed on this resource.")
	}
	if err := s.authorize(q, roleAssignmentType+"/"+action, scope); err != nil {
		return err
	}
	if _, err := uuid.Parse(name); err != nil {
		return badRequest("InvalidRoleAssignmentId", "The role assignment ID '%s' is not valid. The role assignment ID must be a GUID.", name)
	}
	name = strings.ToLower(name)
	have, err := s.store.GetRoleAssignment(r.Context(), name)
	missing := errors.Is(err, store.ErrNotFound) || (err == nil && (have.TenantID != q.caller.TenantID || have.Scope != scope))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	switch r.Method {
	case http.MethodGet:
		if missing {
			return newError(http.StatusNotFound, "RoleAssignmentNotFound", fmt.Sprintf("The role assignment '%s' is not found.", name))
		}
		writeJSON(w, http.StatusOK, toRoleAssignmentJSON(have))
	case http.MethodDelete:
		if missing {
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
		if err := s.store.DeleteRoleAssignment(r.Context(), name); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		writeJSON(w, http.StatusOK, toRoleAssignmentJSON(have))
	case http.MethodPut:
		return s.putRoleAssignment(q, scope, name, have, err == nil)
	}
	return nil
}

func (s *Server) putRoleAssignment(q *call, scope, name string, have store.RoleAssignment, exists bool) error {
	w, r := q.w, q.r
	var in struct {
		Properties *roleAssignmentProperties `json:"properties"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.Properties == nil || in.Properties.RoleDefinitionID == "" || in.Properties.PrincipalID == "" {
		return badRequest("InvalidRequestContent", "The request content was invalid: properties.roleDefinitionId and properties.principalId are required.")
	}
	roleRef := in.Properties.RoleDefinitionID
	role, ok := directory.FindAzureRole(roleRef[strings.LastIndex(roleRef, "/")+1:])
	if !ok || !strings.Contains(strings.ToLower(roleRef), "/providers/microsoft.authorization/roledefinitions/") {
		return badRequest("RoleDefinitionDoesNotExist", "The specified role definition with ID '%s' does not exist.", roleRef[strings.LastIndex(roleRef, "/")+1:])
	}
	principal := strings.ToLower(in.Properties.PrincipalID)
	if found, err := s.principalExists(q, principal); err != nil {
		return err
	} else if !found {
		return badRequest("PrincipalNotFound", "Principal %s does not exist in the directory %s. Check that you have the correct principal ID.", principal, q.caller.TenantID)
	}
	want := store.RoleAssignment{ID: name, TenantID: q.caller.TenantID, Scope: scope, RoleDefinitionID: role.ID, PrincipalID: principal, CreatedAt: time.Now().UTC()}
	if exists {
		if have.TenantID == want.TenantID && have.Scope == want.Scope && have.RoleDefinitionID == want.RoleDefinitionID && have.PrincipalID == want.PrincipalID {
			writeJSON(w, http.StatusCreated, toRoleAssignmentJSON(have))
			return nil
		}
		return newError(http.StatusConflict, "RoleAssignmentUpdateNotPermitted", "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.")
	}
	err := s.store.CreateRoleAssignment(r.Context(), want)
	switch {
	case errors.Is(err, store.ErrAlreadyExists):
		return newError(http.StatusConflict, "RoleAssignmentExists", "The role assignment already exists.")
	case err != nil:
		return err
	}
	writeJSON(w, http.StatusCreated, toRoleAssignmentJSON(want))
	return nil
}

// principalExists reports whether id is a service principal or a managed
// identity of the caller's tenant.
func (s *Server) principalExists(q *call, id string) (bool, error) {
	sp, err := s.store.GetServicePrincipal(q.r.Context(), id)
	if err == nil {
		return sp.TenantID == q.caller.TenantID, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	mis, err := s.store.ListManagedIdentities(q.r.Context(), q.caller.TenantID)
	return slices.ContainsFunc(mis, func(mi store.ManagedIdentity) bool { return mi.PrincipalID == id }), err
}

// listRoleAssignments lists the assignments that apply at scope (at or
// above it) and those below it, as ARM does; $filter=atScope() keeps the
// first, $filter=principalId eq '{id}' one principal's.
func (s *Server) listRoleAssignments(q *call, scope string) error {
	if err := s.authorize(q, roleAssignmentType+"/read", scope); err != nil {
		return err
	}
	atScope, principal := false, ""
	switch f := strings.TrimSpace(q.r.URL.Query().Get("$filter")); {
	case f == "":
	case f == "atScope()":
		atScope = true
	case strings.HasPrefix(f, "principalId eq '") && strings.HasSuffix(f, "'"):
		principal = strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(f, "principalId eq '"), "'"))
	default:
		return badRequest("UnsupportedQuery", "The filter '%s' is not supported. Supported filters are atScope() and principalId eq '{id}'.", f)
	}
	as, err := s.store.ListRoleAssignments(q.r.Context(), q.caller.TenantID)
	if err != nil {
		return err
	}
	out := []roleAssignmentJSON{}
	for _, a := range as {
		applies := directory.ScopeCovers(a.Scope, scope) || (!atScope && directory.ScopeCovers(scope, a.Scope))
		if applies && (principal == "" || a.PrincipalID == principal) {
			out = append(out, toRoleAssignmentJSON(a))
		}
	}
	writeJSON(q.w, http.StatusOK, map[string]any{"value": out})
	return nil
}

type permissionJSON struct {
	Actions        []string `json:"actions"`
	NotActions     []string `json:"notActions"`
	DataActions    []string `json:"dataActions"`
	NotDataActions []string `json:"notDataActions"`
}

type roleDefinitionJSON struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	Properties struct {
		RoleName         string           `json:"roleName"`
		Type             string           `json:"type"`
		Description      string           `json:"description"`
		AssignableScopes []string         `json:"assignableScopes"`
		Permissions      []permissionJSON `json:"permissions"`
	} `json:"properties"`
}

func toRoleDefinitionJSON(sub string, r directory.AzureRole) roleDefinitionJSON {
	out := roleDefinitionJSON{ID: roleDefinitionID(sub, r.ID), Name: r.ID, Type: roleDefinitionType}
	p := &out.Properties
	p.RoleName, p.Type, p.Description, p.AssignableScopes = r.Name, "BuiltInRole", r.Description, []string{"/"}
	p.Permissions = []permissionJSON{{Actions: r.Actions, NotActions: append([]string{}, r.NotActions...), DataActions: []string{}, NotDataActions: []string{}}}
	return out
}

// roleDefinitions serves the built-in roles, which every tenant's callers
// may read (az looks a role's name up here before assigning it);
// $filter=roleName eq '{name}' is supported.
func (s *Server) roleDefinitions(q *call, sub, name string) error {
	if q.r.Method != http.MethodGet {
		return newError(http.StatusMethodNotAllowed, "MethodNotAllowed", "The HTTP method is not allowed on this resource.")
	}
	if name != "" {
		r, ok := directory.FindAzureRole(name)
		if !ok || !strings.EqualFold(r.ID, name) {
			return newError(http.StatusNotFound, "RoleDefinitionDoesNotExist", fmt.Sprintf("The specified role definition with ID '%s' does not exist.", name))
		}
		writeJSON(q.w, http.StatusOK, toRoleDefinitionJSON(sub, r))
		return nil
	}
	var roleName string
	if f := strings.TrimSpace(q.r.URL.Query().Get("$filter")); f != "" {
		v, ok := strings.CutPrefix(f, "roleName eq '")
		if !ok || !strings.HasSuffix(v, "'") {
			return badRequest("UnsupportedQuery", "The filter '%s' is not supported. The supported filter is roleName eq '{name}'.", f)
		}
		roleName = strings.TrimSuffix(v, "'")
	}
	out := []roleDefinitionJSON{}
	for _, r := range directory.AzureRoles {
		if roleName == "" || strings.EqualFold(r.Name, roleName) {
			out = append(out, toRoleDefinitionJSON(sub, r))
		}
	}
	writeJSON(q.w, http.StatusOK, map[string]any{"value": out})
	return nil
}
