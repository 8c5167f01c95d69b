-- the activity timeline reads the audit log newest first by time (sqlite_timeline.rs),
-- and exchanges by time (the token table's index is by client).

CREATE INDEX audit_time ON audit_events(time, seq);
CREATE INDEX issued_tokens_issued ON issued_tokens(issued_at, jti);
