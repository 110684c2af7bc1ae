package sqlstore

import (
	"context"
	"strings"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
)

const subscriptionColumns = "id, tenant_id, display_name, managed_by"

// CreateSubscription stores sub under its lower-case id.
func (s *Store) CreateSubscription(ctx context.Context, sub store.Subscription) error {
	return s.exec(ctx, false, "INSERT INTO subscriptions ("+subscriptionColumns+") VALUES (?, ?, ?, ?)",
		strings.ToLower(sub.ID), sub.TenantID, sub.DisplayName, sub.ManagedBy)
}

// GetSubscription finds a subscription by id, case-insensitively.
func (s *Store) GetSubscription(ctx context.Context, id string) (store.Subscription, error) {
	return one(ctx, s, scanSubscription, "SELECT "+subscriptionColumns+" FROM subscriptions WHERE id = ?", strings.ToLower(id))
}

// ListSubscriptions lists a tenant's subscriptions by id.
func (s *Store) ListSubscriptions(ctx context.Context, tenantID string) ([]store.Subscription, error) {
	return many(ctx, s, s.d, scanSubscription, "SELECT "+subscriptionColumns+" FROM subscriptions WHERE tenant_id = ? ORDER BY id", tenantID)
}

func scanSubscription(r scanner) (store.Subscription, error) {
	var sub store.Subscription
	err := r.Scan(&sub.ID, &sub.TenantID, &sub.DisplayName, &sub.ManagedBy)
	return sub, err
}

const roleAssignmentColumns = "id, tenant_id, scope, role_definition_id, principal_id, managed_by, created_at"

// CreateRoleAssignment stores a with its scope in lower case.
func (s *Store) CreateRoleAssignment(ctx context.Context, a store.RoleAssignment) error {
	return s.exec(ctx, false, "INSERT INTO role_assignments ("+roleAssignmentColumns+") VALUES (?, ?, ?, ?, ?, ?, ?)",
		a.ID, a.TenantID, strings.ToLower(a.Scope), a.RoleDefinitionID, a.PrincipalID, a.ManagedBy, ms(a.CreatedAt))
}

// GetRoleAssignment finds an assignment by id.
func (s *Store) GetRoleAssignment(ctx context.Context, id string) (store.RoleAssignment, error) {
	return one(ctx, s, scanRoleAssignment, "SELECT "+roleAssignmentColumns+" FROM role_assignments WHERE id = ?", id)
}

// ListRoleAssignments lists a tenant's assignments by id.
func (s *Store) ListRoleAssignments(ctx context.Context, tenantID string) ([]store.RoleAssignment, error) {
	return many(ctx, s, s.d, scanRoleAssignment, "SELECT "+roleAssignmentColumns+" FROM role_assignments WHERE tenant_id = ? ORDER BY id", tenantID)
}

// ListPrincipalRoleAssignments lists the assignments principalID holds, by id.
func (s *Store) ListPrincipalRoleAssignments(ctx context.Context, principalID string) ([]store.RoleAssignment, error) {
	return many(ctx, s, s.d, scanRoleAssignment, "SELECT "+roleAssignmentColumns+" FROM role_assignments WHERE principal_id = ? ORDER BY id", principalID)
}

func scanRoleAssignment(r scanner) (store.RoleAssignment, error) {
	var a store.RoleAssignment
	var created int64
	err := r.Scan(&a.ID, &a.TenantID, &a.Scope, &a.RoleDefinitionID, &a.PrincipalID, &a.ManagedBy, &created)
	a.CreatedAt = fromMS(created)
	return a, err
}

// DeleteRoleAssignment removes one assignment.
func (s *Store) DeleteRoleAssignment(ctx context.Context, id string) error {
	return s.exec(ctx, true, "DELETE FROM role_assignments WHERE id = ?", id)
}
