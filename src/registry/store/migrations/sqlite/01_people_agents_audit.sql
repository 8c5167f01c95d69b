-- people, tokens, agents, grants, credentials, audit, change counter.

CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO counters (name, value) VALUES ('change_seq', 0);

CREATE TABLE people (
    id TEXT PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    roles TEXT NOT NULL DEFAULT '',
    active INTEGER NOT NULL DEFAULT 1,
    manager_id TEXT REFERENCES people(id),
    team TEXT,
    created_at TEXT NOT NULL,
    change_seq INTEGER NOT NULL
);
CREATE INDEX people_change ON people(change_seq);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    person_id TEXT NOT NULL REFERENCES people(id),
    token_hash TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    revoked_at TEXT
);

CREATE TABLE agents (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL,
    parent_id TEXT REFERENCES agents(id),
    owner_id TEXT REFERENCES people(id),
    prev_owner_id TEXT,
    team TEXT NOT NULL,
    environment TEXT NOT NULL,
    status TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_seen_at TEXT,
    flags TEXT NOT NULL DEFAULT '',
    change_seq INTEGER NOT NULL
);
CREATE INDEX agents_owner ON agents(owner_id);
CREATE INDEX agents_parent ON agents(parent_id);
CREATE INDEX agents_change ON agents(change_seq);

CREATE TABLE grants (
    agent_id TEXT NOT NULL REFERENCES agents(id),
    scope TEXT NOT NULL,
    granted_by TEXT NOT NULL,
    granted_at TEXT NOT NULL,
    expires_at TEXT,
    justification TEXT,
    last_used_at TEXT,
    last_certified_at TEXT,
    PRIMARY KEY (agent_id, scope)
) WITHOUT ROWID;

CREATE TABLE credentials (
    id TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL REFERENCES agents(id),
    kind TEXT NOT NULL,
    label TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    material TEXT NOT NULL,
    created_at TEXT NOT NULL,
    disabled_at TEXT,
    last_used_at TEXT
);
CREATE INDEX credentials_agent ON credentials(agent_id);

CREATE TABLE audit_events (
    seq INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    actor TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    outcome TEXT NOT NULL,
    reason TEXT,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_target ON audit_events(target, seq);
CREATE INDEX audit_actor ON audit_events(actor_id, seq);

-- Append-only: the registry itself can never rewrite history.
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit_events
    BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit_events
    BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
