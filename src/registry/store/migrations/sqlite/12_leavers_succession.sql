-- leavers and owner succession (sqlite_succession.rs): when a person left (people who
-- left before this migration are dated by it), and a reminder to each manager who inherited
-- an agent from a leaver, until they acknowledge it.

ALTER TABLE people ADD COLUMN left_at TEXT;
UPDATE people SET left_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHERE active = 0;
CREATE TABLE owner_handovers (
    id INTEGER PRIMARY KEY,
    agent_id TEXT NOT NULL REFERENCES agents(id),
    from_email TEXT NOT NULL COLLATE NOCASE,
    to_email TEXT NOT NULL COLLATE NOCASE,
    at TEXT NOT NULL,
    acknowledged_at TEXT
);
CREATE INDEX owner_handovers_to ON owner_handovers(to_email, acknowledged_at);
