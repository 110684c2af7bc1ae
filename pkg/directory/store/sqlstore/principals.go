package sqlstore

import (
	"context"
	"database/sql"
	"strings"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
)

const assignmentColumns = "id, principal_id, resource_id, app_role_id, managed_by"

// CreateAppRoleAssignment stores a.
func (s *Store) CreateAppRoleAssignment(ctx context.Context, a store.AppRoleAssignment) error {
	return s.exec(ctx, false, "INSERT INTO app_role_assignments ("+assignmentColumns+") VALUES (?, ?, ?, ?, ?)", a.ID, a.PrincipalID, a.ResourceID, a.AppRoleID, a.ManagedBy)
}

// ListAppRoleAssignments lists a principal's assignments by id.
func (s *Store) ListAppRoleAssignments(ctx context.Context, principalID string) ([]store.AppRoleAssignment, error) {
	return many(ctx, s, s.d, func(r scanner) (store.AppRoleAssignment, error) {
		var a store.AppRoleAssignment
		err := r.Scan(&a.ID, &a.PrincipalID, &a.ResourceID, &a.AppRoleID, &a.ManagedBy)
		return a, err
	}, "SELECT "+assignmentColumns+" FROM app_role_assignments WHERE principal_id = ? ORDER BY id", principalID)
}

// DeleteAppRoleAssignment removes one assignment.
func (s *Store) DeleteAppRoleAssignment(ctx context.Context, id string) error {
	return s.exec(ctx, true, "DELETE FROM app_role_assignments WHERE id = ?", id)
}

const miColumns = "id, tenant_id, subscription_id, resource_group, name, location, client_id, principal_id, managed_by"

// CreateManagedIdentity stores mi.
func (s *Store) CreateManagedIdentity(ctx context.Context, mi store.ManagedIdentity) error {
	return s.exec(ctx, false, "INSERT INTO managed_identities ("+miColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
		mi.ID, mi.TenantID, mi.SubscriptionID, mi.ResourceGroup, mi.Name, mi.Location, mi.ClientID, mi.PrincipalID, mi.ManagedBy)
}

// GetManagedIdentity finds an identity by its ARM resource id.
func (s *Store) GetManagedIdentity(ctx context.Context, id string) (store.ManagedIdentity, error) {
	return one(ctx, s, scanMI, "SELECT "+miColumns+" FROM managed_identities WHERE id = ?", id)
}

// GetManagedIdentityByClientID finds an identity by client id.
func (s *Store) GetManagedIdentityByClientID(ctx context.Context, tenantID, clientID string) (store.ManagedIdentity, error) {
	return one(ctx, s, scanMI, "SELECT "+miColumns+" FROM managed_identities WHERE tenant_id = ? AND client_id = ?", tenantID, clientID)
}

// ListManagedIdentities lists a tenant's identities by id.
func (s *Store) ListManagedIdentities(ctx context.Context, tenantID string) ([]store.ManagedIdentity, error) {
	return many(ctx, s, s.d, scanMI, "SELECT "+miColumns+" FROM managed_identities WHERE tenant_id = ? ORDER BY id", tenantID)
}

func scanMI(r scanner) (store.ManagedIdentity, error) {
	var m store.ManagedIdentity
	err := r.Scan(&m.ID, &m.TenantID, &m.SubscriptionID, &m.ResourceGroup, &m.Name, &m.Location, &m.ClientID, &m.PrincipalID, &m.ManagedBy)
	return m, err
}

// DeleteManagedIdentity removes the identity with its federated credentials
// and role assignments.
func (s *Store) DeleteManagedIdentity(ctx context.Context, id string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var principal string
		if err := tx.QueryRowContext(ctx, s.d.rebind("SELECT principal_id FROM managed_identities WHERE id = ?"), id).Scan(&principal); err != nil {
			return err
		}
		for _, st := range []struct{ q, arg string }{
			{"DELETE FROM federated_credentials WHERE owner_id = ?", principal},
			{"DELETE FROM app_role_assignments WHERE principal_id = ?", principal},
			{"DELETE FROM role_assignments WHERE principal_id = ?", principal},
			{"DELETE FROM managed_identities WHERE id = ?", id},
		} {
			if _, err := tx.ExecContext(ctx, s.d.rebind(st.q), st.arg); err != nil {
				return err
			}
		}
		return nil
	})
}

const userColumns = "object_id, tenant_id, upn, display_name, password_hash, managed_by"

// CreateUser stores u.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	return s.exec(ctx, false, "INSERT INTO users ("+userColumns+") VALUES (?, ?, ?, ?, ?, ?)", u.ObjectID, u.TenantID, strings.ToLower(u.UserPrincipalName), u.DisplayName, u.PasswordHash, u.ManagedBy)
}

func scanUser(r scanner) (store.User, error) {
	var u store.User
	err := r.Scan(&u.ObjectID, &u.TenantID, &u.UserPrincipalName, &u.DisplayName, &u.PasswordHash, &u.ManagedBy)
	return u, err
}

// GetUserByUPN finds a user by user principal name, case-insensitively.
func (s *Store) GetUserByUPN(ctx context.Context, tenantID, upn string) (store.User, error) {
	return one(ctx, s, scanUser, "SELECT "+userColumns+" FROM users WHERE tenant_id = ? AND upn = ?", tenantID, strings.ToLower(upn))
}

// UpdateUser replaces the user's name, password hash and marker with what fn
// makes of the stored user, in one transaction.
func (s *Store) UpdateUser(ctx context.Context, objectID string, fn store.Update[store.User]) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		old, err := scanUser(tx.QueryRowContext(ctx, s.d.rebind("SELECT "+userColumns+" FROM users WHERE object_id = ?"+s.d.forUpdate), objectID))
		if err != nil {
			return err
		}
		u, err := apply(fn, old)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.d.rebind("UPDATE users SET upn = ?, display_name = ?, password_hash = ?, managed_by = ? WHERE object_id = ?"),
			strings.ToLower(u.UserPrincipalName), u.DisplayName, u.PasswordHash, u.ManagedBy, objectID)
		return err
	})
}

const signingKeyColumns = "id, private_key, cert, not_before, not_after, created_at"

// CreateSigningKey stores k unless a key for the same window exists: the
// unique not_before makes racing replicas end with one key.
func (s *Store) CreateSigningKey(ctx context.Context, k store.SigningKey) error {
	return s.exec(ctx, false, "INSERT INTO signing_keys ("+signingKeyColumns+") VALUES (?, ?, ?, ?, ?, ?)",
		k.ID, k.PrivateKeyDER, k.CertDER, ms(k.NotBefore), ms(k.NotAfter), ms(k.CreatedAt))
}

// ListSigningKeys lists keys by NotBefore.
func (s *Store) ListSigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	return many(ctx, s, s.d, func(r scanner) (store.SigningKey, error) {
		var k store.SigningKey
		var nb, na, created int64
		err := r.Scan(&k.ID, &k.PrivateKeyDER, &k.CertDER, &nb, &na, &created)
		k.NotBefore, k.NotAfter, k.CreatedAt = fromMS(nb), fromMS(na), fromMS(created)
		return k, err
	}, "SELECT "+signingKeyColumns+" FROM signing_keys ORDER BY not_before")
}

// DeleteSigningKey removes a key.
func (s *Store) DeleteSigningKey(ctx context.Context, id string) error {
	return s.exec(ctx, true, "DELETE FROM signing_keys WHERE id = ?", id)
}
