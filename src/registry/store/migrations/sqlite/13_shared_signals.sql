-- Shared Signals (sqlite_streams.rs): streams, the subjects receivers removed, the
-- outbox written in the transaction of each change that ends access, and per-stream
-- queues of signed SETs (`seq` is the delivery order).

CREATE TABLE ssf_streams (
    id TEXT PRIMARY KEY,
    receiver TEXT NOT NULL,
    method TEXT NOT NULL,
    endpoint_url TEXT,
    authorization_header TEXT,
    events_requested TEXT NOT NULL DEFAULT '[]',
    description TEXT,
    status TEXT NOT NULL DEFAULT 'enabled',
    reason TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    delivered INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    last_error_at TEXT,
    last_delivered_at TEXT,
    last_verification_at INTEGER,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX ssf_streams_receiver ON ssf_streams(receiver);
CREATE TABLE ssf_subjects (
    stream_id TEXT NOT NULL,
    subject_key TEXT NOT NULL,
    included INTEGER NOT NULL,
    PRIMARY KEY (stream_id, subject_key)
) WITHOUT ROWID;
CREATE TABLE ssf_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    audit_seq INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    payload TEXT NOT NULL,
    fanned_out_at TEXT
);
CREATE INDEX ssf_outbox_pending ON ssf_outbox(id) WHERE fanned_out_at IS NULL;
CREATE INDEX ssf_outbox_audit ON ssf_outbox(audit_seq);
CREATE TABLE ssf_queue (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    stream_id TEXT NOT NULL,
    jti TEXT NOT NULL UNIQUE,
    audit_seq INTEGER NOT NULL,
    set_jwt TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    error TEXT,
    done_at INTEGER
);
CREATE INDEX ssf_queue_pending ON ssf_queue(stream_id, seq) WHERE state = 'pending';
CREATE INDEX ssf_queue_audit ON ssf_queue(audit_seq);
