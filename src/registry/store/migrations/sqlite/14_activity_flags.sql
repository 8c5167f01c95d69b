-- the activity record (raw events for a retention window; per agent per
-- hour counts, with counts per scope and audience) and flags with their evidence
-- (sqlite_activity.rs, sqlite_flags.rs).

CREATE TABLE activity_events (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    agent_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    accepted INTEGER NOT NULL,
    reason TEXT,
    subject TEXT,
    depth INTEGER NOT NULL,
    scopes TEXT NOT NULL,
    audience TEXT NOT NULL,
    client_auth TEXT
);
CREATE INDEX activity_events_agent ON activity_events(agent_id, at);
CREATE INDEX activity_events_at ON activity_events(at);
CREATE TABLE activity_hours (
    agent_id TEXT NOT NULL,
    hour INTEGER NOT NULL,
    accepted INTEGER NOT NULL,
    refused INTEGER NOT NULL,
    PRIMARY KEY (agent_id, hour)
) WITHOUT ROWID;
CREATE INDEX activity_hours_hour ON activity_hours(hour);
CREATE TABLE activity_hour_items (
    agent_id TEXT NOT NULL,
    hour INTEGER NOT NULL,
    item TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (agent_id, hour, item)
) WITHOUT ROWID;
CREATE INDEX activity_hour_items_hour ON activity_hour_items(hour);
CREATE TABLE flags (
    id TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL REFERENCES agents(id),
    kind TEXT NOT NULL,
    severity TEXT NOT NULL,
    dedup_key TEXT NOT NULL,
    state TEXT NOT NULL,
    summary TEXT NOT NULL,
    evidence TEXT NOT NULL,
    refused_only INTEGER NOT NULL,
    auto_suspended INTEGER NOT NULL DEFAULT 0,
    opened_at TEXT NOT NULL,
    acknowledged_by TEXT,
    acknowledged_at TEXT,
    acknowledge_reason TEXT,
    resolved_by TEXT,
    resolved_at TEXT,
    resolve_reason TEXT
);
CREATE INDEX flags_agent ON flags(agent_id, state);
CREATE INDEX flags_state ON flags(state, opened_at);
