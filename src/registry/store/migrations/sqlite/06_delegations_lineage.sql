-- who may act for whom (sqlite_delegations.rs) and token lineage: invitations, the API
-- token that minted another (a child never outlives its parent and dies with it), when a
-- token was last used; which API token minted a person token and which delegation an
-- exchange used, so that revoking either kills the tokens that came from it.

ALTER TABLE api_tokens ADD COLUMN kind TEXT NOT NULL DEFAULT 'api';
ALTER TABLE api_tokens ADD COLUMN parent_id TEXT REFERENCES api_tokens(id);
ALTER TABLE api_tokens ADD COLUMN last_used_at TEXT;
ALTER TABLE api_tokens ADD COLUMN redeemed_at TEXT;
CREATE INDEX api_tokens_person ON api_tokens(person_id);
CREATE INDEX api_tokens_parent ON api_tokens(parent_id);

ALTER TABLE issued_tokens ADD COLUMN api_token_id TEXT;
ALTER TABLE issued_tokens ADD COLUMN delegation_id TEXT;

CREATE TABLE delegations (
    id TEXT PRIMARY KEY,
    person_id TEXT NOT NULL REFERENCES people(id),
    agent_id TEXT NOT NULL REFERENCES agents(id),
    scopes TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    revoked_at TEXT,
    revoked_by TEXT
);
CREATE INDEX delegations_person_agent ON delegations(person_id, agent_id);
