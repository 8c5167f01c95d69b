-- A check of the PostgreSQL schema (src/registry/store/migrations/postgres/01_schema.sql) on an
-- empty database where it was just applied: one row in every table with the values the code writes
-- (RFC 3339 text timestamps, Unix-second BIGINTs, 0/1 flags, JSON as text), identities that
-- fill themselves, case-insensitive columns, the upserts' conflict targets, the audit log
-- refusing UPDATE, DELETE and TRUNCATE, and a text search that uses the trigram index.
-- Everything runs in one transaction that is rolled back: the database is left as it was.
--
--   psql -X -v ON_ERROR_STOP=1 -d URL -f tests/postgres/schema_check.sql
--
-- Any failed check raises an error (psql exits 3); the last line printed is
-- 'schema_check: all checks passed'.

\set ON_ERROR_STOP 1
\set QUIET 1
BEGIN;

-- Types: no int2/int4/numeric/real anywhere (the code reads i64), no timestamp types (times
-- are RFC 3339 text or Unix seconds), and the case-insensitive columns are citext.
DO $$
DECLARE bad text;
BEGIN
    SELECT string_agg(table_name || '.' || column_name || ' ' || data_type, ', ') INTO bad
    FROM information_schema.columns
    WHERE table_schema = 'public'
      AND data_type NOT IN ('bigint', 'text', 'USER-DEFINED', 'double precision', 'bytea');
    IF bad IS NOT NULL THEN RAISE EXCEPTION 'columns of an unexpected type: %', bad; END IF;

    SELECT string_agg(c.table_name || '.' || c.column_name, ', ' ORDER BY 1) INTO bad
    FROM (VALUES ('people', 'email'), ('issued_tokens', 'subject'), ('review_items', 'reviewer'),
                 ('review_reminders', 'reviewer'), ('access_requests', 'subject'),
                 ('request_approvals', 'approver'), ('owner_handovers', 'from_email'),
                 ('owner_handovers', 'to_email')) AS c(table_name, column_name)
    LEFT JOIN information_schema.columns i
        ON i.table_schema = 'public' AND i.table_name = c.table_name
       AND i.column_name = c.column_name AND i.udt_name = 'citext'
    WHERE i.column_name IS NULL;
    IF bad IS NOT NULL THEN RAISE EXCEPTION 'not citext: %', bad; END IF;

    SELECT string_agg(table_name || '.' || column_name, ', ') INTO bad
    FROM information_schema.columns
    WHERE table_schema = 'public' AND data_type = 'USER-DEFINED' AND udt_name <> 'citext';
    IF bad IS NOT NULL THEN RAISE EXCEPTION 'unexpected user-defined types: %', bad; END IF;

    IF (SELECT count(*) FROM pg_tables WHERE schemaname = 'public') <> 33 THEN
        RAISE EXCEPTION 'expected 33 tables, found %',
            (SELECT count(*) FROM pg_tables WHERE schemaname = 'public');
    END IF;
    IF (SELECT value FROM counters WHERE name = 'change_seq') IS DISTINCT FROM 0 THEN
        RAISE EXCEPTION 'the change_seq counter is not seeded at 0';
    END IF;
END $$;

-- One row in every table, as the store writes them.
UPDATE counters SET value = value + 1 WHERE name = 'change_seq' RETURNING value AS change_seq \g /dev/null

INSERT INTO people (id, email, display_name, roles, active, manager_id, team, created_at, change_seq)
VALUES ('p_boss', 'Boss@Example.com', 'The Boss', 'admin', 1, NULL, 'ops', '2026-12-07T11:00:00.123Z', 1),
       ('p_ann', 'ann@example.com', 'Ann', '', 1, 'p_boss', 'ops', '2026-12-07T11:00:01.000Z', 2);
UPDATE people SET active = 0, left_at = '2026-12-07T12:00:00Z' WHERE id = 'p_ann';

INSERT INTO api_tokens (id, person_id, token_hash, name, created_at, expires_at, kind, parent_id)
VALUES ('t_1', 'p_boss', 'sha256:00ff', 'cli', '2026-12-07T11:00:00.000Z', '2027-03-07T11:00:00.000Z', 'api', NULL),
       ('t_2', 'p_boss', 'sha256:01ff', 'invite', '2026-12-07T11:00:00.000Z', '2026-12-08T11:00:00.000Z', 'invitation', 't_1');
UPDATE api_tokens SET last_used_at = '2026-12-07T11:05:00.000Z', redeemed_at = '2026-12-07T11:05:00.000Z' WHERE id = 't_2';

INSERT INTO agents (id, name, description, kind, parent_id, owner_id, prev_owner_id, team, environment,
                    status, source, created_at, last_seen_at, flags, change_seq)
VALUES ('ag_root', 'invoice-matcher', 'Matches invoices with purchase orders', 'service', NULL, 'p_boss',
        NULL, 'finance', 'production', 'active', 'api', '2026-12-07T11:00:00.000Z', NULL, '', 3),
       ('ag_child', 'invoice-matcher/worker', 'Worker of the matcher', 'ephemeral', 'ag_root', 'p_boss',
        'p_ann', 'finance', 'production', 'suspended', 'api', '2026-12-07T11:00:00.000Z',
        '2026-12-07T11:01:00.000Z', 'stale', 4);

INSERT INTO grants (agent_id, scope, granted_by, granted_at, expires_at, justification)
VALUES ('ag_root', 'erp.invoices:read', 'boss@example.com', '2026-12-07T11:00:00.000Z', NULL, 'needed');
-- sqlite_approvals.rs: a re-approval replaces the grant.
INSERT INTO grants (agent_id, scope, granted_by, granted_at, expires_at, justification)
VALUES ('ag_root', 'erp.invoices:read', 'ann@example.com', '2026-12-07T11:10:00.000Z', '2027-01-01T00:00:00.000Z', 'renewed')
ON CONFLICT (agent_id, scope) DO UPDATE SET granted_by = excluded.granted_by,
    granted_at = excluded.granted_at, expires_at = excluded.expires_at,
    justification = excluded.justification;

INSERT INTO credentials (id, agent_id, kind, label, fingerprint, material, created_at)
VALUES ('c_1', 'ag_root', 'jwk', 'key 1', 'SHA256:abc', '{"kty":"OKP","crv":"Ed25519","x":"AAAA"}', '2026-12-07T11:00:00.000Z');

INSERT INTO audit_events (seq, time, actor, actor_id, action, target, outcome, reason, details, prev_hash, hash)
VALUES (1, '2026-12-07T11:00:00.000Z', '{"kind":"person","id":"boss@example.com"}', 'boss@example.com',
        'agent.create', 'ag_root', 'success', NULL, '{}', repeat('0', 64), repeat('a', 64)),
       (2, '2026-12-07T11:00:01.000Z', '{"kind":"person","id":"boss@example.com"}', 'boss@example.com',
        'grant.add', 'ag_root', 'success', NULL, '{"scope":"erp.invoices:read"}', repeat('a', 64), repeat('b', 64));

INSERT INTO signing_keys (kid, algorithm, private_key, public_key, created_at, retired_at, activates_at)
VALUES ('k1', 'EdDSA', 'private-pem', 'public-jwk', '2026-12-07T11:00:00.000Z', NULL, '2026-12-08T11:00:00.000Z');

INSERT INTO trusted_issuers (issuer, jwks, audience, created_at)
VALUES ('https://idp.example.com', '{"keys":[]}', 'steward', '2026-12-07T11:00:00.000Z')
ON CONFLICT (issuer) DO UPDATE SET jwks = excluded.jwks, audience = excluded.audience;

INSERT INTO issued_tokens (jti, kind, digest, kid, subject, client_id, actors, parent_jti, scopes, audience,
                           may_act, subject_source, client_auth, credential_id, issued_at, expires_at,
                           api_token_id, delegation_id)
VALUES ('jti-1', 'access', 'sha256:aa', 'k1', 'Ann@Example.com', 'ag_root', '["ag_root"]', NULL,
        '["erp.invoices:read"]', '["https://erp.example.com"]', NULL, 'person', 'private_key_jwt', 'c_1',
        1796641200, 1796644800, 't_1', NULL);
INSERT INTO token_revocations (jti, revoked_at) VALUES ('jti-1', 1796641300) ON CONFLICT DO NOTHING;
INSERT INTO token_revocations (jti, revoked_at) VALUES ('jti-1', 1796641400) ON CONFLICT DO NOTHING;
INSERT INTO consumed_assertions (agent_id, jti, expires_at) VALUES ('ag_root', 'assertion-1', 1796641500)
ON CONFLICT DO NOTHING;

INSERT INTO campaigns (id, name, series_id, instance, previous_id, filter_team, filter_environment,
                       filter_owner, starts_at, due_at, grace_days, closes_at, recurrence,
                       fallback_reviewer, reminders, no_response, justify_certify_unused,
                       justify_revoke_against, lookback_days, status, created_by, created_at)
VALUES ('cmp_1', '2026-Q4 certification', 'ser_1', 1, NULL, 'finance', NULL, NULL,
        '2026-12-07T11:00:00.000Z', '2026-12-21T11:00:00.000Z', 7, '2026-12-28T11:00:00.000Z', 'quarterly',
        'boss@example.com', '[7,3,1]', 'keep', 1, 0, 90, 'snapshotting', 'boss@example.com', '2026-12-07T11:00:00.000Z'),
       ('cmp_0', 'older, created second', 'ser_0', 1, NULL, NULL, NULL, NULL,
        '2026-12-07T11:00:00.000Z', '2026-12-21T11:00:00.000Z', 7, '2026-12-28T11:00:00.000Z', 'none',
        'boss@example.com', '[]', 'revoke', 0, 0, 90, 'snapshotting', 'boss@example.com', '2026-12-07T11:00:00.000Z');
UPDATE campaigns SET work_at = '2026-12-07T11:00:00.000Z', work_actor = '{"kind":"system"}',
    work_agent_cursor = 'ag_child', work_item_cursor = 0, work_done = 1, work_total = 2, work_agents = 1
WHERE id = 'cmp_1';

INSERT INTO review_items (campaign_id, agent_id, agent_name, owner, team, environment, scope, reviewer,
                          granted_by, granted_at, grant_expires_at, grant_justification, last_used_at,
                          last_certified_at, baseline_at, usage, idle_days, drift, recommendation)
SELECT 'cmp_1', g.agent_id, a.name, 'boss@example.com', a.team, a.environment, g.scope, 'Boss@Example.com',
       g.granted_by, g.granted_at, g.expires_at, g.justification, g.last_used_at, g.last_certified_at, NULL,
       'unused', 12, 'never-certified', 'revoke'
FROM grants g JOIN agents a ON a.id = g.agent_id;
UPDATE review_items SET decision = 'certify', decided_by = 'boss@example.com',
    decided_at = '2026-12-07T12:00:00.000Z', applied = 1, applied_at = '2026-12-07T12:00:00.000Z', changes = 1
WHERE reviewer = 'boss@example.com';
INSERT INTO review_item_events (item_id, action, actor, at, justification, from_reviewer, to_reviewer, audit_seq)
SELECT id, 'decide', 'boss@example.com', '2026-12-07T12:00:00.000Z', NULL, NULL, NULL, 2 FROM review_items;
INSERT INTO agent_certifications (agent_id, certified_at) VALUES ('ag_root', '2026-12-07T12:00:00.000Z')
ON CONFLICT (agent_id) DO UPDATE
    SET certified_at = greatest(agent_certifications.certified_at, excluded.certified_at);
INSERT INTO review_reminders (campaign_id, reviewer, slot, slot_at, pending_items, status, next_attempt_at, created_at)
SELECT 'cmp_1', reviewer, 'due-3', '2026-12-18T11:00:00.000Z', count(*), 'pending', '2026-12-18T11:00:00.000Z',
       '2026-12-07T12:00:00.000Z'
FROM review_items WHERE campaign_id = 'cmp_1' GROUP BY reviewer
ON CONFLICT DO NOTHING;

INSERT INTO resources (id, name, description, owner_id, audiences, approvers, max_duration, created_at, updated_at)
VALUES ('erp', 'ERP', 'The ERP', 'p_boss', '["https://erp.example.com"]', 2, 'P30D',
        '2026-12-07T11:00:00.000Z', '2026-12-07T11:00:00.000Z')
ON CONFLICT (id) DO UPDATE SET name = excluded.name, updated_at = excluded.updated_at;
INSERT INTO resource_scopes (name, resource_id, tier, approval, description)
VALUES ('erp.invoices:read', 'erp', 'low', 'request', 'read invoices')
ON CONFLICT (name) DO UPDATE SET tier = excluded.tier, approval = excluded.approval,
    description = excluded.description;
INSERT INTO access_requests (id, kind, status, agent_id, scopes, resource_id, tier, requester, subject,
                             audience, chain, justification, duration_secs, approvals_required,
                             created_at, expires_at)
VALUES ('rq_1', 'per-use', 'pending', 'ag_root', '["erp.invoices:read"]', 'erp', 'high', 'ag_root',
        'Ann@Example.com', '[]', '[]', 'month end', 3600, 2, '2026-12-07T11:00:00.000Z', '2026-12-07T12:00:00.000Z');
INSERT INTO request_approvals (request_id, approver, approved_at, reason)
VALUES ('rq_1', 'Boss@Example.com', '2026-12-07T11:01:00.000Z', NULL);
INSERT INTO upgrade_deadlines (agent_id, scope, previous_expires_at, deadline)
VALUES ('ag_root', 'erp.invoices:read', NULL, '2027-03-07T11:00:00.000Z');

INSERT INTO delegations (id, person_id, agent_id, scopes, created_at, expires_at)
VALUES ('d_1', 'p_boss', 'ag_root', '["erp.invoices:read"]', '2026-12-07T11:00:00.000Z', '2026-12-14T11:00:00.000Z');
INSERT INTO resource_credentials (id, resource_id, kind, label, fingerprint, material, created_at)
VALUES ('rc_1', 'erp', 'secret', 'introspection', 'sha256:cc', 'argon2id$...', '2026-12-07T11:00:00.000Z');
INSERT INTO owner_handovers (agent_id, from_email, to_email, at)
VALUES ('ag_child', 'ann@example.com', 'Boss@Example.com', '2026-12-07T12:00:00Z');

INSERT INTO ssf_streams (id, receiver, method, endpoint_url, authorization_header, events_requested,
                         description, created_at, updated_at, last_verification_at)
VALUES ('st_1', 'erp', 'urn:ietf:rfc:8936', NULL, NULL, '["https://schemas.openid.net/secevent/caep/event-type/session-revoked"]',
        'poll', '2026-12-07T11:00:00.000Z', '2026-12-07T11:00:00.000Z', 1796641200);
INSERT INTO ssf_subjects (stream_id, subject_key, included) VALUES ('st_1', 'agent:ag_root', 0)
ON CONFLICT (stream_id, subject_key) DO UPDATE SET included = excluded.included;
INSERT INTO ssf_subjects (stream_id, subject_key, included) VALUES ('st_1', 'agent:ag_root', 1)
ON CONFLICT (stream_id, subject_key) DO UPDATE SET included = excluded.included;
INSERT INTO ssf_outbox (audit_seq, created_at, payload) VALUES (2, '2026-12-07T11:00:01.000Z', '{"kind":"revoke"}');
INSERT INTO ssf_queue (stream_id, jti, audit_seq, set_jwt, created_at)
SELECT 'st_1', 'set-1', 2, 'eyJ...', 1796641201 WHERE EXISTS
    (SELECT 1 FROM ssf_streams WHERE id = 'st_1' AND status != 'disabled');
UPDATE ssf_queue SET state = 'acknowledged', done_at = 1796641300 WHERE jti = 'set-1';

INSERT INTO activity_events (at, agent_id, kind, accepted, reason, subject, depth, scopes, audience, client_auth)
VALUES (1796641200, 'ag_root', 'exchange', 1, NULL, 'ann@example.com', 1, '["erp.invoices:read"]',
        '["https://erp.example.com"]', 'private_key_jwt'),
       (1796641260, 'ag_root', 'exchange', 0, 'scope_not_granted', NULL, 1, '["erp.orders:write"]', '[]', NULL);
-- sqlite_activity.rs's upserts, with the existing row's columns qualified (PostgreSQL calls an
-- unqualified `accepted` in DO UPDATE ambiguous).
INSERT INTO activity_hours (agent_id, hour, accepted, refused)
SELECT 'ag_root', 499067, 1, 0 WHERE EXISTS (SELECT 1 FROM agents WHERE id = 'ag_root')
ON CONFLICT (agent_id, hour) DO UPDATE SET accepted = activity_hours.accepted + excluded.accepted,
    refused = activity_hours.refused + excluded.refused;
INSERT INTO activity_hours (agent_id, hour, accepted, refused)
SELECT 'ag_root', 499067, 0, 1 WHERE EXISTS (SELECT 1 FROM agents WHERE id = 'ag_root')
ON CONFLICT (agent_id, hour) DO UPDATE SET accepted = activity_hours.accepted + excluded.accepted,
    refused = activity_hours.refused + excluded.refused;
INSERT INTO activity_hour_items (agent_id, hour, item, count)
SELECT 'ag_root', 499067, 'scope:erp.invoices:read', 1 WHERE EXISTS (SELECT 1 FROM agents WHERE id = 'ag_root')
ON CONFLICT (agent_id, hour, item) DO UPDATE SET count = activity_hour_items.count + excluded.count;
INSERT INTO activity_hour_items (agent_id, hour, item, count)
SELECT 'ag_root', 499067, 'scope:erp.invoices:read', 2 WHERE EXISTS (SELECT 1 FROM agents WHERE id = 'ag_root')
ON CONFLICT (agent_id, hour, item) DO UPDATE SET count = activity_hour_items.count + excluded.count;

INSERT INTO flags (id, agent_id, kind, severity, dedup_key, state, summary, evidence, refused_only,
                   auto_suspended, opened_at)
VALUES ('f_1', 'ag_root', 'new_audience', 'high', 'ag_root:new_audience', 'open', 'a new audience',
        '{"events":[1,2]}', 0, 1, '2026-12-07T11:00:00.000Z');

-- What the rows say.
DO $$
DECLARE
    empty text;
    first_item bigint;
BEGIN
    SELECT string_agg(tablename, ', ') INTO empty FROM pg_tables t
    WHERE schemaname = 'public'
      AND (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %I', tablename),
                                               false, true, '')))[1]::text::bigint = 0;
    IF empty IS NOT NULL THEN RAISE EXCEPTION 'tables without a row: %', empty; END IF;

    -- Identities fill themselves, in insertion order.
    IF (SELECT array_agg(id ORDER BY id) FROM activity_events) IS DISTINCT FROM
       (SELECT array_agg(id ORDER BY at) FROM activity_events) THEN
        RAISE EXCEPTION 'activity_events ids do not follow insertion order';
    END IF;
    SELECT min(id) INTO first_item FROM review_items;
    IF first_item IS NULL OR (SELECT item_id FROM review_item_events LIMIT 1) <> first_item THEN
        RAISE EXCEPTION 'review_item_events.item_id does not reference the generated review_items.id';
    END IF;
    IF (SELECT count(*) FROM ssf_outbox WHERE id IS NULL) + (SELECT count(*) FROM ssf_queue WHERE seq IS NULL)
       + (SELECT count(*) FROM owner_handovers WHERE id IS NULL)
       + (SELECT count(*) FROM review_reminders WHERE id IS NULL) <> 0 THEN
        RAISE EXCEPTION 'an identity column stayed NULL';
    END IF;
    -- campaigns.rowid: creation order, as SQLite's rowid (sqlite_reviews.rs orders by it).
    IF (SELECT id FROM campaigns WHERE status = 'snapshotting'
        ORDER BY work_agent_cursor = '', rowid LIMIT 1) <> 'cmp_1' THEN
        RAISE EXCEPTION 'campaigns do not order by rowid as in sqlite_reviews.rs';
    END IF;
    IF (SELECT array_agg(id ORDER BY rowid) FROM campaigns) <> ARRAY['cmp_1', 'cmp_0'] THEN
        RAISE EXCEPTION 'campaigns.rowid is not the creation order';
    END IF;

    -- Case-insensitive columns (SQLite: COLLATE NOCASE).
    IF (SELECT id FROM people WHERE email = 'boss@EXAMPLE.com') IS DISTINCT FROM 'p_boss' THEN
        RAISE EXCEPTION 'people.email is not compared case-insensitively';
    END IF;
    IF (SELECT count(*) FROM review_items WHERE reviewer = 'boss@example.com' AND decision = 'certify') <> 1 THEN
        RAISE EXCEPTION 'review_items.reviewer is not compared case-insensitively';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM issued_tokens WHERE subject = 'ann@example.com')
       OR NOT EXISTS (SELECT 1 FROM access_requests WHERE subject = 'ANN@example.com')
       OR NOT EXISTS (SELECT 1 FROM request_approvals WHERE approver = 'boss@example.com')
       OR NOT EXISTS (SELECT 1 FROM owner_handovers WHERE to_email = 'boss@example.com'
                                                      AND from_email = 'ANN@EXAMPLE.COM')
       OR NOT EXISTS (SELECT 1 FROM review_reminders WHERE reviewer = 'boss@example.com') THEN
        RAISE EXCEPTION 'a citext column is compared case-sensitively';
    END IF;
    -- sqlite_ownership.rs: people.email IN (issued_tokens.subject), both citext.
    IF NOT EXISTS (SELECT 1 FROM people p WHERE p.email IN (SELECT t.subject FROM issued_tokens t)) THEN
        RAISE EXCEPTION 'people.email IN (issued_tokens.subject) is case-sensitive';
    END IF;
    -- Only ASCII folds, as SQLite's NOCASE: the collation of the database must be C.
    IF 'É'::citext = 'é'::citext OR NOT ('Z' < 'a') THEN
        RAISE EXCEPTION 'the database does not use the C collation (needed: byte order, ASCII-only folding)';
    END IF;

    -- Upserts.
    IF (SELECT granted_by FROM grants WHERE agent_id = 'ag_root') <> 'ann@example.com' THEN
        RAISE EXCEPTION 'the grants upsert did not replace the row';
    END IF;
    IF (SELECT (accepted, refused) FROM activity_hours) IS DISTINCT FROM (1::bigint, 1::bigint)
       OR (SELECT count FROM activity_hour_items) <> 3 THEN
        RAISE EXCEPTION 'the activity upserts did not add up';
    END IF;
    IF (SELECT included FROM ssf_subjects) <> 1 OR (SELECT revoked_at FROM token_revocations) <> 1796641300 THEN
        RAISE EXCEPTION 'ssf_subjects upsert or token_revocations ON CONFLICT DO NOTHING went wrong';
    END IF;
END $$;

-- Constraints that refuse.
DO $$
BEGIN
    BEGIN
        INSERT INTO people (id, email, display_name, created_at, change_seq)
        VALUES ('p_dup', 'BOSS@example.COM', 'Dup', '2026-12-07T11:00:00.000Z', 9);
        RAISE EXCEPTION 'a second person with the same email in another case was accepted';
    EXCEPTION WHEN unique_violation THEN NULL;
    END;
    BEGIN
        INSERT INTO request_approvals (request_id, approver, approved_at)
        VALUES ('rq_1', 'boss@EXAMPLE.com', '2026-12-07T11:02:00.000Z');
        RAISE EXCEPTION 'the same approver in another case approved twice';
    EXCEPTION WHEN unique_violation THEN NULL;
    END;
    BEGIN
        INSERT INTO grants (agent_id, scope, granted_by, granted_at)
        VALUES ('ag_missing', 'x:read', 'boss@example.com', '2026-12-07T11:00:00.000Z');
        RAISE EXCEPTION 'a grant of a missing agent was accepted';
    EXCEPTION WHEN foreign_key_violation THEN NULL;
    END;
    BEGIN
        INSERT INTO agents (id, name, kind, team, environment, status, source, created_at, change_seq)
        VALUES ('ag_null', 'x', 'service', 't', 'e', 'active', 'api', '2026-12-07T11:00:00.000Z', NULL);
        RAISE EXCEPTION 'an agent without change_seq was accepted';
    EXCEPTION WHEN not_null_violation THEN NULL;
    END;
END $$;

-- The audit log is append-only.
DO $$
DECLARE refused boolean;
BEGIN
    refused := false;
    BEGIN
        UPDATE audit_events SET outcome = 'failure' WHERE seq = 1;
    EXCEPTION WHEN raise_exception THEN
        IF SQLERRM <> 'audit events are append-only' THEN RAISE; END IF;
        refused := true;
    END;
    IF NOT refused THEN RAISE EXCEPTION 'UPDATE on audit_events was accepted'; END IF;

    refused := false;
    BEGIN
        DELETE FROM audit_events WHERE seq = 2;
    EXCEPTION WHEN raise_exception THEN
        IF SQLERRM <> 'audit events are append-only' THEN RAISE; END IF;
        refused := true;
    END;
    IF NOT refused THEN RAISE EXCEPTION 'DELETE on audit_events was accepted'; END IF;

    refused := false;
    BEGIN
        TRUNCATE audit_events;
    EXCEPTION WHEN raise_exception THEN
        IF SQLERRM <> 'audit events are append-only' THEN RAISE; END IF;
        refused := true;
    END;
    IF NOT refused THEN RAISE EXCEPTION 'TRUNCATE of audit_events was accepted'; END IF;

    IF (SELECT count(*) FROM audit_events) <> 2
       OR (SELECT outcome FROM audit_events WHERE seq = 1) <> 'success' THEN
        RAISE EXCEPTION 'the audit log changed';
    END IF;
END $$;

-- Text search: ILIKE '%...%' over (id || ' ' || name || ' ' || description) is served by the
-- trigram index agents_text_trgm once the table is large enough for the planner to want it.
INSERT INTO agents (id, name, description, kind, owner_id, team, environment, status, source, created_at, change_seq)
SELECT format('ag_%s', lpad(i::text, 6, '0')), format('agent-%s', md5(i::text)),
       format('Synthetic agent number %s for %s', i, md5((i * 7)::text)),
       'service', 'p_boss', 'team-' || (i % 40), 'production', 'active', 'api',
       '2026-12-07T11:00:00.000Z', 100 + i
FROM generate_series(1, 20000) AS i;
UPDATE agents SET description = 'Reconciles the abcxyz ledger nightly' WHERE id = 'ag_012345';
-- Bulk inserts wait in the GIN index's pending list (fastupdate) until autovacuum merges them,
-- and the planner prices a long pending list high; merge it as autovacuum would.
SELECT gin_clean_pending_list('agents_text_trgm') \g /dev/null
ANALYZE agents;

DO $$
DECLARE
    plan text := '';
    line text;
    found text[];
BEGIN
    FOR line IN EXECUTE $q$EXPLAIN SELECT id FROM agents
        WHERE (id || ' ' || name || ' ' || description) ILIKE '%abcxyz%'$q$ LOOP
        plan := plan || line || E'\n';
    END LOOP;
    RAISE NOTICE E'plan of the text search:\n%', plan;
    IF position('agents_text_trgm' IN plan) = 0 THEN
        RAISE EXCEPTION 'the text search does not use agents_text_trgm:%', E'\n' || plan;
    END IF;
    SELECT array_agg(id ORDER BY id) INTO found FROM agents
    WHERE (id || ' ' || name || ' ' || description) ILIKE '%ABCxyz%';
    IF found IS DISTINCT FROM ARRAY['ag_012345'] THEN
        RAISE EXCEPTION 'the text search found % instead of {ag_012345}', found;
    END IF;
    -- A word spread over id and name, as the FTS5 table of SQLite could not match it: the
    -- expression is a superset of per-column matching (the Rust side keeps its exact LIKE).
    SELECT array_agg(id) INTO found FROM agents
    WHERE (id || ' ' || name || ' ' || description) ILIKE '%ag_012345 agent-%';
    IF found IS DISTINCT FROM ARRAY['ag_012345'] THEN
        RAISE EXCEPTION 'the text search over the joined columns found %', found;
    END IF;
END $$;

ROLLBACK;
\echo 'schema_check: all checks passed'
