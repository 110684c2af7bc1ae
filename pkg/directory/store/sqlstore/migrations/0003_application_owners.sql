-- Owners of applications: service principals that may manage them with
-- Graph's Application.ReadWrite.OwnedBy.
CREATE TABLE application_owners (
    object_id    TEXT NOT NULL REFERENCES applications (object_id) ON DELETE CASCADE,
    principal_id TEXT NOT NULL,
    PRIMARY KEY (object_id, principal_id)
);
CREATE INDEX application_owners_principal ON application_owners (principal_id);
