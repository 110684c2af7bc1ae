package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
)

func scanString(r scanner) (string, error) {
	var v string
	err := r.Scan(&v)
	return v, err
}

const appColumns = "object_id, tenant_id, app_id, display_name, app_roles, permission_scopes, access_token_version, managed_by, created_at, public_client"

// appJSON encodes the application's JSON columns: app roles and scopes.
func appJSON(a store.Application) (roles, scopes string, err error) {
	r, err := json.Marshal(nonNil(a.AppRoles))
	if err != nil {
		return "", "", err
	}
	sc, err := json.Marshal(nonNil(a.PermissionScopes))
	return string(r), string(sc), err
}

// CreateApplication stores a with its identifier URIs, owners and
// certificates in one transaction.
func (s *Store) CreateApplication(ctx context.Context, a store.Application, owners []string, keys []store.KeyCredential) error {
	roles, scopes, err := appJSON(a)
	if err != nil {
		return err
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.d.rebind("INSERT INTO applications ("+appColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
			a.ObjectID, a.TenantID, a.AppID, a.DisplayName, roles, scopes, a.AccessTokenAcceptedVersion, a.ManagedBy, ms(a.CreatedAt), flag(a.PublicClient)); err != nil {
			return err
		}
		if err := s.putURIs(ctx, tx, a); err != nil {
			return err
		}
		for _, o := range owners {
			if err := s.addOwner(ctx, tx, a.ObjectID, o); err != nil {
				return err
			}
		}
		for _, k := range keys {
			if k.OwnerID != a.ObjectID {
				return fmt.Errorf("key credential %s belongs to %s, not to the application %s", k.KeyID, k.OwnerID, a.ObjectID)
			}
			if err := s.insertKey(ctx, tx, k); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *Store) putURIs(ctx context.Context, tx *sql.Tx, a store.Application) error {
	for i, u := range a.IdentifierURIs {
		if _, err := tx.ExecContext(ctx, s.d.rebind("INSERT INTO identifier_uris (tenant_id, uri, object_id, position) VALUES (?, ?, ?, ?)"), a.TenantID, u, a.ObjectID, i); err != nil {
			return err
		}
	}
	return nil
}

// UpdateApplication replaces everything of the application but its object
// id, tenant and creation time with what fn makes of it, in one
// transaction.
func (s *Store) UpdateApplication(ctx context.Context, objectID string, fn store.Update[store.Application]) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		old, err := scanApp(tx.QueryRowContext(ctx, s.d.rebind("SELECT "+appColumns+" FROM applications WHERE object_id = ?"+s.d.forUpdate), objectID))
		if err != nil {
			return err
		}
		if old.IdentifierURIs, err = many(ctx, tx, s.d, scanString, "SELECT uri FROM identifier_uris WHERE object_id = ? ORDER BY position", objectID); err != nil {
			return err
		}
		a, err := apply(fn, old)
		if err != nil {
			return err
		}
		a.ObjectID, a.TenantID, a.CreatedAt = old.ObjectID, old.TenantID, old.CreatedAt
		roles, scopes, err := appJSON(a)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.d.rebind("UPDATE applications SET app_id = ?, display_name = ?, app_roles = ?, permission_scopes = ?, access_token_version = ?, managed_by = ?, public_client = ? WHERE object_id = ?"),
			a.AppID, a.DisplayName, roles, scopes, a.AccessTokenAcceptedVersion, a.ManagedBy, flag(a.PublicClient), objectID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.d.rebind("DELETE FROM identifier_uris WHERE object_id = ?"), objectID); err != nil {
			return err
		}
		return s.putURIs(ctx, tx, a)
	})
}

// GetApplication finds an application by object id.
func (s *Store) GetApplication(ctx context.Context, objectID string) (store.Application, error) {
	return one(ctx, s, scanAppURIs, s.appSelect()+" FROM applications a WHERE a.object_id = ?", objectID)
}

// GetApplicationByAppID finds an application by client id.
func (s *Store) GetApplicationByAppID(ctx context.Context, tenantID, appID string) (store.Application, error) {
	return one(ctx, s, scanAppURIs, s.appSelect()+" FROM applications a WHERE a.tenant_id = ? AND a.app_id = ?", tenantID, appID)
}

// GetApplicationByIdentifierURI finds an application by identifier URI.
func (s *Store) GetApplicationByIdentifierURI(ctx context.Context, tenantID, uri string) (store.Application, error) {
	return one(ctx, s, scanAppURIs, s.appSelect()+" FROM applications a JOIN identifier_uris u ON u.object_id = a.object_id WHERE u.tenant_id = ? AND u.uri = ?", tenantID, uri)
}

// GetApplicationWithPrincipalByAppID is GetApplicationByAppID and
// GetServicePrincipalByAppID in one statement.
func (s *Store) GetApplicationWithPrincipalByAppID(ctx context.Context, tenantID, appID string) (store.Application, store.ServicePrincipal, error) {
	return s.appWithPrincipal(ctx, " FROM applications a"+spJoin+" WHERE a.tenant_id = ? AND a.app_id = ?", tenantID, appID)
}

// GetApplicationWithPrincipalByIdentifierURI is
// GetApplicationByIdentifierURI and GetServicePrincipalByAppID in one
// statement.
func (s *Store) GetApplicationWithPrincipalByIdentifierURI(ctx context.Context, tenantID, uri string) (store.Application, store.ServicePrincipal, error) {
	return s.appWithPrincipal(ctx, " FROM applications a JOIN identifier_uris u ON u.object_id = a.object_id"+spJoin+" WHERE u.tenant_id = ? AND u.uri = ?", tenantID, uri)
}

// spJoin adds an application a's service principal, if any, as sp.
const spJoin = " LEFT JOIN service_principals sp ON sp.tenant_id = a.tenant_id AND sp.app_id = a.app_id"

type appPrincipal struct {
	app store.Application
	sp  store.ServicePrincipal
}

func (s *Store) appWithPrincipal(ctx context.Context, from string, args ...any) (store.Application, store.ServicePrincipal, error) {
	cols := strings.Split(spColumns, ", ")
	for i, c := range cols {
		cols[i] = "COALESCE(sp." + c + ", '')"
	}
	v, err := one(ctx, s, func(r scanner) (appPrincipal, error) {
		var v appPrincipal
		var err error
		v.app, err = scanAppWith(r, &v.sp.ObjectID, &v.sp.TenantID, &v.sp.AppID, &v.sp.DisplayName, &v.sp.ManagedBy)
		return v, err
	}, s.appSelect()+", "+strings.Join(cols, ", ")+from, args...)
	return v.app, v.sp, err
}

// appSelect selects an application a's columns and, in the same statement,
// its identifier URIs as a JSON array.
func (s *Store) appSelect() string {
	return "SELECT " + prefixed("a.", appColumns) + ", " + s.d.jsonList("x.uri", "identifier_uris x WHERE x.object_id = a.object_id")
}

func scanAppURIs(r scanner) (store.Application, error) { return scanAppWith(r) }

// scanAppWith scans an application selected by appSelect, then the columns
// into more.
func scanAppWith(r scanner, more ...any) (store.Application, error) {
	var uris string
	a, err := scanApp(rowWith{r, append([]any{&uris}, more...)})
	if err != nil {
		return a, err
	}
	return a, json.Unmarshal([]byte(uris), &a.IdentifierURIs)
}

// rowWith scans into more after the columns its caller asks for.
type rowWith struct {
	scanner
	more []any
}

func (r rowWith) Scan(dest ...any) error { return r.scanner.Scan(append(dest, r.more...)...) }

func prefixed(p, columns string) string {
	cols := strings.Split(columns, ", ")
	for i := range cols {
		cols[i] = p + cols[i]
	}
	return strings.Join(cols, ", ")
}

// ListApplications lists a tenant's applications ordered by object id.
func (s *Store) ListApplications(ctx context.Context, tenantID string) ([]store.Application, error) {
	apps, err := many(ctx, s, s.d, scanApp, "SELECT "+appColumns+" FROM applications WHERE tenant_id = ? ORDER BY object_id", tenantID)
	if err != nil {
		return nil, err
	}
	for i := range apps {
		if apps[i].IdentifierURIs, err = many(ctx, s, s.d, scanString, "SELECT uri FROM identifier_uris WHERE object_id = ? ORDER BY position", apps[i].ObjectID); err != nil {
			return nil, err
		}
	}
	return apps, nil
}

// flag is a boolean as both dialects store it.
func flag(b bool) int {
	if b {
		return 1
	}
	return 0
}

func scanApp(r scanner) (store.Application, error) {
	var a store.Application
	var roles, scopes string
	var created, public int64
	if err := r.Scan(&a.ObjectID, &a.TenantID, &a.AppID, &a.DisplayName, &roles, &scopes, &a.AccessTokenAcceptedVersion, &a.ManagedBy, &created, &public); err != nil {
		return a, err
	}
	a.CreatedAt, a.PublicClient = fromMS(created), public != 0
	if err := json.Unmarshal([]byte(roles), &a.AppRoles); err != nil {
		return a, err
	}
	return a, json.Unmarshal([]byte(scopes), &a.PermissionScopes)
}

// DeleteApplication removes the application and everything that hangs off
// it, in one transaction.
func (s *Store) DeleteApplication(ctx context.Context, objectID string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var tenant, appID string
		if err := tx.QueryRowContext(ctx, s.d.rebind("SELECT tenant_id, app_id FROM applications WHERE object_id = ?"), objectID).Scan(&tenant, &appID); err != nil {
			return err
		}
		var spID string
		err := tx.QueryRowContext(ctx, s.d.rebind("SELECT object_id FROM service_principals WHERE tenant_id = ? AND app_id = ?"), tenant, appID).Scan(&spID)
		if err != nil && err != sql.ErrNoRows {
			return err
		}
		stmts := []struct {
			q   string
			arg string
		}{
			{"DELETE FROM federated_credentials WHERE owner_id = ?", objectID},
			{"DELETE FROM password_credentials WHERE owner_id = ?", objectID},
			{"DELETE FROM key_credentials WHERE owner_id = ?", objectID},
			{"DELETE FROM identifier_uris WHERE object_id = ?", objectID},
			{"DELETE FROM application_owners WHERE object_id = ?", objectID},
			{"DELETE FROM applications WHERE object_id = ?", objectID},
		}
		if spID != "" {
			stmts = append(stmts,
				struct{ q, arg string }{"DELETE FROM app_role_assignments WHERE principal_id = ?", spID},
				struct{ q, arg string }{"DELETE FROM app_role_assignments WHERE resource_id = ?", spID},
				struct{ q, arg string }{"DELETE FROM role_assignments WHERE principal_id = ?", spID},
				struct{ q, arg string }{"DELETE FROM service_principals WHERE object_id = ?", spID})
		}
		for _, st := range stmts {
			if _, err := tx.ExecContext(ctx, s.d.rebind(st.q), st.arg); err != nil {
				return err
			}
		}
		return nil
	})
}

func nonNil[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}

const spColumns = "object_id, tenant_id, app_id, display_name, managed_by"

// CreateServicePrincipal stores sp.
func (s *Store) CreateServicePrincipal(ctx context.Context, sp store.ServicePrincipal) error {
	return s.exec(ctx, false, "INSERT INTO service_principals ("+spColumns+") VALUES (?, ?, ?, ?, ?)", sp.ObjectID, sp.TenantID, sp.AppID, sp.DisplayName, sp.ManagedBy)
}

// GetServicePrincipal finds a service principal by object id.
func (s *Store) GetServicePrincipal(ctx context.Context, objectID string) (store.ServicePrincipal, error) {
	return one(ctx, s, scanSP, "SELECT "+spColumns+" FROM service_principals WHERE object_id = ?", objectID)
}

// GetServicePrincipalByAppID finds an application's service principal.
func (s *Store) GetServicePrincipalByAppID(ctx context.Context, tenantID, appID string) (store.ServicePrincipal, error) {
	return one(ctx, s, scanSP, "SELECT "+spColumns+" FROM service_principals WHERE tenant_id = ? AND app_id = ?", tenantID, appID)
}

// ListServicePrincipals lists a tenant's service principals by object id.
func (s *Store) ListServicePrincipals(ctx context.Context, tenantID string) ([]store.ServicePrincipal, error) {
	return many(ctx, s, s.d, scanSP, "SELECT "+spColumns+" FROM service_principals WHERE tenant_id = ? ORDER BY object_id", tenantID)
}

func scanSP(r scanner) (store.ServicePrincipal, error) {
	var sp store.ServicePrincipal
	err := r.Scan(&sp.ObjectID, &sp.TenantID, &sp.AppID, &sp.DisplayName, &sp.ManagedBy)
	return sp, err
}

// AddApplicationOwner makes principalID an owner of the application.
func (s *Store) AddApplicationOwner(ctx context.Context, objectID, principalID string) error {
	return s.tx(ctx, func(tx *sql.Tx) error { return s.addOwner(ctx, tx, objectID, principalID) })
}

func (s *Store) addOwner(ctx context.Context, tx *sql.Tx, objectID, principalID string) error {
	var n int
	if err := tx.QueryRowContext(ctx, s.d.rebind("SELECT COUNT(*) FROM application_owners WHERE object_id = ? AND principal_id = ?"), objectID, principalID).Scan(&n); err != nil || n > 0 {
		return err
	}
	_, err := tx.ExecContext(ctx, s.d.rebind("INSERT INTO application_owners (object_id, principal_id) VALUES (?, ?)"), objectID, principalID)
	return err
}

// ListApplicationOwners lists the application's owners.
func (s *Store) ListApplicationOwners(ctx context.Context, objectID string) ([]string, error) {
	return many(ctx, s, s.d, scanString, "SELECT principal_id FROM application_owners WHERE object_id = ? ORDER BY principal_id", objectID)
}
