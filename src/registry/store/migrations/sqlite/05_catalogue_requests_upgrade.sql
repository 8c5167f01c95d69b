-- the resource catalogue, access requests and per-use approvals (see
-- sqlite_catalogue.rs, sqlite_approvals.rs). Then the upgrade of an existing store: every
-- scope already granted enters the catalogue under a resource named after its prefix
-- (`crm.orders:read` -> `crm`), with the audiences its past exchanges named, tier
-- `unclassified` and no owner (admins approve); grants that came in this way expire 90
-- days after the upgrade unless they already expire sooner.

CREATE TABLE resources (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    owner_id TEXT REFERENCES people(id),
    audiences TEXT NOT NULL DEFAULT '[]',
    approvers INTEGER,
    max_duration TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- A scope name is globally unique: it is the primary key.
CREATE TABLE resource_scopes (
    name TEXT PRIMARY KEY,
    resource_id TEXT NOT NULL REFERENCES resources(id),
    tier TEXT NOT NULL,
    approval TEXT NOT NULL DEFAULT 'request',
    description TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
CREATE INDEX resource_scopes_resource ON resource_scopes(resource_id);

CREATE TABLE access_requests (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    agent_id TEXT NOT NULL REFERENCES agents(id),
    scopes TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    tier TEXT NOT NULL,
    requester TEXT NOT NULL,
    subject TEXT,
    audience TEXT NOT NULL DEFAULT '[]',
    chain TEXT NOT NULL DEFAULT '[]',
    justification TEXT,
    duration_secs INTEGER,
    approvals_required INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    decided_at TEXT,
    decided_by TEXT,
    reason TEXT,
    grant_expires_at TEXT,
    used_at TEXT
);
CREATE INDEX access_requests_status ON access_requests(status, expires_at);
CREATE INDEX access_requests_agent ON access_requests(agent_id, status);

CREATE TABLE request_approvals (
    request_id TEXT NOT NULL REFERENCES access_requests(id),
    approver TEXT NOT NULL COLLATE NOCASE,
    approved_at TEXT NOT NULL,
    reason TEXT,
    PRIMARY KEY (request_id, approver)
) WITHOUT ROWID;

-- The background sweep removes grants whose time is up without scanning every grant.
CREATE INDEX grants_expiry ON grants(expires_at) WHERE expires_at IS NOT NULL;

CREATE TEMP TABLE upgrade_scopes AS
    SELECT DISTINCT scope,
        COALESCE(NULLIF(CASE
            WHEN instr(scope, '.') > 0
                 AND (instr(scope, ':') = 0 OR instr(scope, '.') < instr(scope, ':'))
                THEN substr(scope, 1, instr(scope, '.') - 1)
            WHEN instr(scope, ':') > 0 THEN substr(scope, 1, instr(scope, ':') - 1)
            ELSE scope
        END, ''), 'legacy') AS resource_id
    FROM grants;
INSERT INTO resources (id, name, description, created_at, updated_at)
    SELECT DISTINCT resource_id, resource_id,
        'Created by the upgrade from scopes granted before the catalogue existed',
        strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
    FROM upgrade_scopes;
INSERT INTO resource_scopes (name, resource_id, tier, approval, description)
    SELECT scope, resource_id, 'unclassified', 'request', '' FROM upgrade_scopes;
UPDATE resources SET audiences = (
    SELECT COALESCE(json_group_array(aud), '[]') FROM (
        SELECT DISTINCT a.value AS aud
        FROM issued_tokens t, json_each(t.scopes) s, json_each(t.audience) a
        WHERE s.value IN (SELECT scope FROM upgrade_scopes u WHERE u.resource_id = resources.id)
        ORDER BY a.value
    )
);
-- Which grants the upgrade put a deadline on, and what they had before: a review that
-- certifies one gives it back (sqlite_reviews.rs); a re-approval or removal forgets it.
-- A grant whose expiry is no longer the deadline (removed, re-granted, re-approved) is
-- not given anything back.
CREATE TABLE upgrade_deadlines (
    agent_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    previous_expires_at TEXT,
    deadline TEXT NOT NULL,
    PRIMARY KEY (agent_id, scope)
) WITHOUT ROWID;
INSERT INTO upgrade_deadlines (agent_id, scope, previous_expires_at, deadline)
    SELECT agent_id, scope, expires_at, strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+90 days')
    FROM grants
    WHERE expires_at IS NULL OR expires_at > strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '+90 days');
UPDATE grants SET expires_at = (SELECT deadline FROM upgrade_deadlines d
        WHERE d.agent_id = grants.agent_id AND d.scope = grants.scope)
    WHERE EXISTS (SELECT 1 FROM upgrade_deadlines d
        WHERE d.agent_id = grants.agent_id AND d.scope = grants.scope);
DROP TABLE upgrade_scopes;
