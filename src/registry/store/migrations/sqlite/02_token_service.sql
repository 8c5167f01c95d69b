-- the token service: signing keys, trusted identity providers, issued tokens (the durable
-- record of every exchange; times are Unix seconds like the JWT claims), their revocations,
-- spent assertions.

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    algorithm TEXT NOT NULL DEFAULT 'EdDSA',
    private_key TEXT NOT NULL,
    public_key TEXT NOT NULL,
    created_at TEXT NOT NULL,
    retired_at TEXT
);

CREATE TABLE trusted_issuers (
    issuer TEXT PRIMARY KEY,
    jwks TEXT NOT NULL,
    audience TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE issued_tokens (
    jti TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    digest TEXT NOT NULL,
    kid TEXT NOT NULL,
    subject TEXT NOT NULL,
    client_id TEXT,
    actors TEXT NOT NULL,
    parent_jti TEXT,
    scopes TEXT NOT NULL,
    audience TEXT NOT NULL,
    may_act TEXT,
    subject_source TEXT NOT NULL,
    client_auth TEXT,
    credential_id TEXT,
    issued_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX issued_tokens_client ON issued_tokens(client_id, issued_at);
CREATE INDEX issued_tokens_expiry ON issued_tokens(expires_at);

-- Revoked tokens, one small row each: revoking an agent with 10,000 live tokens writes
-- 10,000 of these rather than rewriting 10,000 token records.
CREATE TABLE token_revocations (
    jti TEXT PRIMARY KEY,
    revoked_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE consumed_assertions (
    agent_id TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (agent_id, jti)
) WITHOUT ROWID;
