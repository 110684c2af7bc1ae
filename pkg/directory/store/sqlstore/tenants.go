package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"

	"github.com/spiffe-entra-gateway/spiffe-entra-gateway/pkg/directory/store"
)

// CreateTenant stores t with its domains.
func (s *Store) CreateTenant(ctx context.Context, t store.Tenant) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.d.rebind("INSERT INTO tenants (id, display_name, managed_by) VALUES (?, ?, ?)"), t.ID, t.DisplayName, t.ManagedBy); err != nil {
			return err
		}
		return s.putDomains(ctx, tx, t)
	})
}

func (s *Store) putDomains(ctx context.Context, tx *sql.Tx, t store.Tenant) error {
	for i, d := range t.Domains {
		if _, err := tx.ExecContext(ctx, s.d.rebind("INSERT INTO tenant_domains (domain, tenant_id, position) VALUES (?, ?, ?)"), strings.ToLower(d), t.ID, i); err != nil {
			return err
		}
	}
	return nil
}

// UpdateTenant replaces the tenant's display name, domains and marker with
// what fn makes of it, in one transaction.
func (s *Store) UpdateTenant(ctx context.Context, id string, fn store.Update[store.Tenant]) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		t, err := scanTenant(tx.QueryRowContext(ctx, s.d.rebind("SELECT id, display_name, managed_by FROM tenants WHERE id = ?"+s.d.forUpdate), id))
		if err != nil {
			return err
		}
		if t.Domains, err = many(ctx, tx, s.d, scanString, "SELECT domain FROM tenant_domains WHERE tenant_id = ? ORDER BY position", id); err != nil {
			return err
		}
		if t, err = apply(fn, t); err != nil {
			return err
		}
		t.ID = id
		if _, err := tx.ExecContext(ctx, s.d.rebind("UPDATE tenants SET display_name = ?, managed_by = ? WHERE id = ?"), t.DisplayName, t.ManagedBy, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.d.rebind("DELETE FROM tenant_domains WHERE tenant_id = ?"), id); err != nil {
			return err
		}
		return s.putDomains(ctx, tx, t)
	})
}

// GetTenant finds a tenant by id, with its domains in the same statement:
// every token request resolves its tenant.
func (s *Store) GetTenant(ctx context.Context, id string) (store.Tenant, error) {
	return one(ctx, s, scanTenantDomains, s.tenantSelect()+" WHERE t.id = ?", id)
}

// GetTenantByDomain finds a tenant by a verified domain.
func (s *Store) GetTenantByDomain(ctx context.Context, domain string) (store.Tenant, error) {
	return one(ctx, s, scanTenantDomains, s.tenantSelect()+" JOIN tenant_domains d ON d.tenant_id = t.id WHERE d.domain = ?", strings.ToLower(domain))
}

// tenantSelect selects a tenant t with its domains as a JSON array.
func (s *Store) tenantSelect() string {
	return "SELECT t.id, t.display_name, t.managed_by, " + s.d.jsonList("x.domain", "tenant_domains x WHERE x.tenant_id = t.id") + " FROM tenants t"
}

func scanTenantDomains(r scanner) (store.Tenant, error) {
	var t store.Tenant
	var domains string
	if err := r.Scan(&t.ID, &t.DisplayName, &t.ManagedBy, &domains); err != nil {
		return t, err
	}
	return t, json.Unmarshal([]byte(domains), &t.Domains)
}

// ListTenants lists tenants ordered by id.
func (s *Store) ListTenants(ctx context.Context) ([]store.Tenant, error) {
	ts, err := many(ctx, s, s.d, scanTenant, "SELECT id, display_name, managed_by FROM tenants ORDER BY id")
	if err != nil {
		return nil, err
	}
	for i := range ts {
		if ts[i], err = s.withDomains(ctx, ts[i]); err != nil {
			return nil, err
		}
	}
	return ts, nil
}

func scanTenant(r scanner) (store.Tenant, error) {
	var t store.Tenant
	err := r.Scan(&t.ID, &t.DisplayName, &t.ManagedBy)
	return t, err
}

func (s *Store) withDomains(ctx context.Context, t store.Tenant) (store.Tenant, error) {
	var err error
	t.Domains, err = many(ctx, s, s.d, scanString, "SELECT domain FROM tenant_domains WHERE tenant_id = ? ORDER BY position", t.ID)
	return t, err
}
