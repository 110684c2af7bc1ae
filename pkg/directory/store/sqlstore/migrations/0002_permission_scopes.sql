-- Delegated permissions an application publishes (Graph's api.oauth2PermissionScopes),
-- issued in scp by the password grant.
ALTER TABLE applications ADD COLUMN permission_scopes TEXT NOT NULL DEFAULT '[]';
