-- access reviews (see sqlite_reviews.rs).

CREATE TABLE campaigns (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    series_id TEXT NOT NULL,
    instance INTEGER NOT NULL,
    previous_id TEXT REFERENCES campaigns(id),
    next_id TEXT REFERENCES campaigns(id),
    filter_team TEXT,
    filter_environment TEXT,
    filter_owner TEXT,
    starts_at TEXT NOT NULL,
    due_at TEXT NOT NULL,
    grace_days INTEGER NOT NULL,
    closes_at TEXT NOT NULL,
    recurrence TEXT NOT NULL,
    fallback_reviewer TEXT NOT NULL,
    reminders TEXT NOT NULL,
    no_response TEXT NOT NULL,
    justify_certify_unused INTEGER NOT NULL,
    justify_revoke_against INTEGER NOT NULL,
    lookback_days INTEGER NOT NULL,
    status TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    snapshot_at TEXT,
    closed_at TEXT,
    closed_by TEXT,
    items_total INTEGER NOT NULL DEFAULT 0,
    items_certified INTEGER NOT NULL DEFAULT 0,
    items_revoked INTEGER NOT NULL DEFAULT 0,
    items_kept INTEGER NOT NULL DEFAULT 0,
    items_first_id INTEGER NOT NULL DEFAULT 0,
    items_last_id INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX campaigns_status ON campaigns(status, closes_at);

-- One row per (agent, grant) of a campaign, with the scope diff as it stood at the start.
CREATE TABLE review_items (
    id INTEGER PRIMARY KEY,
    campaign_id TEXT NOT NULL REFERENCES campaigns(id),
    agent_id TEXT NOT NULL REFERENCES agents(id),
    agent_name TEXT NOT NULL,
    owner TEXT,
    team TEXT NOT NULL,
    environment TEXT NOT NULL,
    scope TEXT NOT NULL,
    reviewer TEXT NOT NULL COLLATE NOCASE,
    granted_by TEXT NOT NULL,
    granted_at TEXT NOT NULL,
    grant_expires_at TEXT,
    grant_justification TEXT,
    last_used_at TEXT,
    last_certified_at TEXT,
    baseline_at TEXT,
    usage TEXT NOT NULL,
    idle_days INTEGER NOT NULL,
    drift TEXT NOT NULL,
    recommendation TEXT NOT NULL,
    decision TEXT NOT NULL DEFAULT 'none',
    decided_by TEXT,
    decided_at TEXT,
    justification TEXT,
    applied INTEGER NOT NULL DEFAULT 0,
    applied_at TEXT,
    changes INTEGER NOT NULL DEFAULT 0,
    UNIQUE (campaign_id, agent_id, scope)
);
CREATE INDEX review_items_reviewer ON review_items(campaign_id, reviewer, decision);

-- Every decision (changed minds included) and reassignment of an item.
CREATE TABLE review_item_events (
    id INTEGER PRIMARY KEY,
    item_id INTEGER NOT NULL REFERENCES review_items(id),
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    at TEXT NOT NULL,
    justification TEXT,
    from_reviewer TEXT,
    to_reviewer TEXT,
    audit_seq INTEGER
);
CREATE INDEX review_item_events_item ON review_item_events(item_id);

-- An agent's last certification, kept even when the certified grants are later removed.
CREATE TABLE agent_certifications (
    agent_id TEXT PRIMARY KEY REFERENCES agents(id),
    certified_at TEXT NOT NULL
) WITHOUT ROWID;

-- Reminder deliveries: at most one per (campaign, reviewer, slot).
CREATE TABLE review_reminders (
    id INTEGER PRIMARY KEY,
    campaign_id TEXT NOT NULL REFERENCES campaigns(id),
    reviewer TEXT NOT NULL COLLATE NOCASE,
    slot TEXT NOT NULL,
    slot_at TEXT NOT NULL,
    pending_items INTEGER NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_attempt_at TEXT,
    next_attempt_at TEXT,
    last_error TEXT,
    delivered_at TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (campaign_id, slot, reviewer)
);
CREATE INDEX review_reminders_due ON review_reminders(status, next_attempt_at);
CREATE INDEX review_reminders_reviewer ON review_reminders(reviewer, id);
