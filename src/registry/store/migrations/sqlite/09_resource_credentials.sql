-- credentials of catalogued resources, with which their servers authenticate to the
-- registry (sqlite_resource_credentials.rs).

CREATE TABLE resource_credentials (
    id TEXT PRIMARY KEY,
    resource_id TEXT NOT NULL REFERENCES resources(id),
    kind TEXT NOT NULL,
    label TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    material TEXT NOT NULL,
    created_at TEXT NOT NULL,
    disabled_at TEXT
);
CREATE INDEX resource_credentials_resource ON resource_credentials(resource_id);
