-- The directory. Types written {{BLOB}} differ per dialect; times are Unix
-- milliseconds in UTC.
CREATE TABLE tenants (
    id           TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    managed_by   TEXT NOT NULL
);
CREATE TABLE tenant_domains (
    domain    TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    position  INTEGER NOT NULL
);
CREATE INDEX tenant_domains_tenant ON tenant_domains (tenant_id);

CREATE TABLE applications (
    object_id            TEXT PRIMARY KEY,
    tenant_id            TEXT NOT NULL REFERENCES tenants (id),
    app_id               TEXT NOT NULL,
    display_name         TEXT NOT NULL,
    app_roles            TEXT NOT NULL,
    access_token_version INTEGER NOT NULL,
    managed_by           TEXT NOT NULL,
    created_at           BIGINT NOT NULL,
    UNIQUE (tenant_id, app_id)
);
CREATE TABLE identifier_uris (
    tenant_id TEXT NOT NULL,
    uri       TEXT NOT NULL,
    object_id TEXT NOT NULL REFERENCES applications (object_id) ON DELETE CASCADE,
    position  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, uri)
);
CREATE INDEX identifier_uris_app ON identifier_uris (object_id);

CREATE TABLE service_principals (
    object_id    TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    app_id       TEXT NOT NULL,
    display_name TEXT NOT NULL,
    managed_by   TEXT NOT NULL,
    UNIQUE (tenant_id, app_id)
);

CREATE TABLE password_credentials (
    owner_id     TEXT NOT NULL,
    key_id       TEXT NOT NULL,
    display_name TEXT NOT NULL,
    hint         TEXT NOT NULL,
    salt         {{BLOB}} NOT NULL,
    hash         {{BLOB}} NOT NULL,
    start_at     BIGINT NOT NULL,
    end_at       BIGINT NOT NULL,
    managed_by   TEXT NOT NULL,
    PRIMARY KEY (owner_id, key_id)
);

CREATE TABLE key_credentials (
    owner_id     TEXT NOT NULL,
    key_id       TEXT NOT NULL,
    display_name TEXT NOT NULL,
    cert         {{BLOB}} NOT NULL,
    sha1         {{BLOB}} NOT NULL,
    sha256       {{BLOB}} NOT NULL,
    start_at     BIGINT NOT NULL,
    end_at       BIGINT NOT NULL,
    managed_by   TEXT NOT NULL,
    PRIMARY KEY (owner_id, key_id)
);

CREATE TABLE federated_credentials (
    id          TEXT PRIMARY KEY,
    owner_id    TEXT NOT NULL,
    name        TEXT NOT NULL,
    issuer      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    audiences   TEXT NOT NULL,
    description TEXT NOT NULL,
    expression  TEXT NOT NULL,
    managed_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE (owner_id, name)
);
-- The token endpoint's lookup, and Entra's uniqueness of issuer and subject
-- per owner (flexible credentials have no subject).
CREATE INDEX federated_credentials_issuer_subject ON federated_credentials (issuer, subject);
CREATE UNIQUE INDEX federated_credentials_owner_issuer_subject ON federated_credentials (owner_id, issuer, subject) WHERE subject <> '';

CREATE TABLE app_role_assignments (
    id           TEXT PRIMARY KEY,
    principal_id TEXT NOT NULL,
    resource_id  TEXT NOT NULL,
    app_role_id  TEXT NOT NULL,
    managed_by   TEXT NOT NULL
);
CREATE INDEX app_role_assignments_principal ON app_role_assignments (principal_id);
CREATE INDEX app_role_assignments_resource ON app_role_assignments (resource_id);

CREATE TABLE managed_identities (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    subscription_id TEXT NOT NULL,
    resource_group  TEXT NOT NULL,
    name            TEXT NOT NULL,
    location        TEXT NOT NULL,
    client_id       TEXT NOT NULL,
    principal_id    TEXT NOT NULL UNIQUE,
    managed_by      TEXT NOT NULL,
    UNIQUE (tenant_id, client_id)
);

CREATE TABLE users (
    object_id     TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    upn           TEXT NOT NULL,
    display_name  TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    managed_by    TEXT NOT NULL,
    UNIQUE (tenant_id, upn)
);

-- One key per schedule window: not_before is unique, so replicas racing to
-- create the same window's key end with one.
CREATE TABLE signing_keys (
    id          TEXT PRIMARY KEY,
    private_key {{BLOB}} NOT NULL,
    cert        {{BLOB}} NOT NULL,
    not_before  BIGINT NOT NULL UNIQUE,
    not_after   BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);
