-- Subscriptions belong to one tenant: ARM resources under a subscription
-- are its tenant's. Identities stored before are kept: their subscription
-- goes to the tenant holding identities in it (the first by id when several
-- did, which the gateway allowed then).
CREATE TABLE subscriptions (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    display_name TEXT NOT NULL,
    managed_by   TEXT NOT NULL
);
CREATE INDEX subscriptions_tenant ON subscriptions (tenant_id);
INSERT INTO subscriptions (id, tenant_id, display_name, managed_by)
    SELECT LOWER(subscription_id), MIN(tenant_id), '', '' FROM managed_identities GROUP BY LOWER(subscription_id);

-- Azure role assignments (RBAC) at subscription, resource group or resource
-- scope; scopes are lower case.
CREATE TABLE role_assignments (
    id                 TEXT PRIMARY KEY,
    tenant_id          TEXT NOT NULL REFERENCES tenants (id),
    scope              TEXT NOT NULL,
    role_definition_id TEXT NOT NULL,
    principal_id       TEXT NOT NULL,
    managed_by         TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    UNIQUE (scope, role_definition_id, principal_id)
);
CREATE INDEX role_assignments_tenant ON role_assignments (tenant_id);
CREATE INDEX role_assignments_principal ON role_assignments (principal_id);
