//! SQLite bodies of [`StreamStore`] and the outbox hook of the audit append.

use crate::registry::store::sql::{self, OptionalExtension, Row, Tx};
use rusqlite::params;

use super::{
    SqliteStore, StoreError, StoreResult, append_audit, invalid, json_list, parse_json_list,
    parse_opt_ts, parse_ts, store_now, ts, unix_now,
};
use crate::model::signals::{FanOut, SetError, StreamState, StreamSummary};
use crate::model::{Actor, CredentialKind};
use crate::registry::store::streams::{
    AckOutcome, OutboxEvent, OutboxRow, PendingSet, QueuedSet, StreamFields, StreamRow, StreamStore,
};

/// Called by the audit append for every event, inside the change's transaction: an action
/// that ends or changes access gets one outbox row. A cascaded revoke (a sub-agent of a
/// revoked tree) gets none: the root's row names the whole tree.
// The audit append's own arguments, passed through.
#[allow(clippy::too_many_arguments)]
pub(super) fn outbox_on_audit(
    tx: &Tx<'_>,
    seq: i64,
    actor: &Actor,
    action: &str,
    target: Option<&str>,
    outcome: &str,
    reason: Option<&str>,
    details: &serde_json::Value,
) -> StoreResult<()> {
    if outcome != "success" {
        return Ok(());
    }
    let target = target.unwrap_or_default().to_string();
    let detail = |name: &str| {
        details
            .get(name)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let mut event = OutboxEvent {
        kind: "session-revoked".into(),
        action: action.to_string(),
        agents: Vec::new(),
        person: None,
        jti: None,
        scope: None,
        remaining_scopes: Vec::new(),
        change_type: None,
        credential_kind: None,
        credential_label: None,
        resources: Vec::new(),
        actor: actor.clone(),
        reason: reason.map(str::to_string),
        time: unix_now(),
    };
    let mut removed_scopes: Vec<String> = Vec::new();
    match action {
        "agent.revoke" => {
            if details.get("cascade_from").is_some() {
                return Ok(());
            }
            event.agents.push(target);
            if let Some(tree) = details.get("subtree").and_then(|v| v.as_array()) {
                event
                    .agents
                    .extend(tree.iter().filter_map(|v| v.as_str()).map(str::to_string));
            }
        }
        "agent.decommission" => {
            if details.get("changed").and_then(|v| v.as_bool()) == Some(false) {
                return Ok(());
            }
            event.agents.push(target);
            if let Some(list) = details.get("grants_removed").and_then(|v| v.as_array()) {
                removed_scopes.extend(list.iter().filter_map(|v| v.as_str()).map(str::to_string));
            }
        }
        "delegation.revoke" => {
            event.agents.push(target);
            event.person = detail("person");
        }
        "person.deactivate" => {
            event.person = Some(target);
        }
        "token.revoke" => {
            let found: Option<(String, Option<String>, String)> = tx
                .query_row(
                    "SELECT subject, client_id, audience FROM issued_tokens WHERE jti = ?1",
                    [&target],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            if let Some((subject, client, audience)) = found {
                event.person = Some(subject);
                event.agents.extend(client);
                let audience = parse_json_list(&audience)?;
                event.resources = resources_for_audiences(tx, &audience)?;
            }
            event.jti = Some(target);
        }
        "credential.add" | "credential.disable" | "credential.enable" | "credential.remove" => {
            event.kind = "credential-change".into();
            event.change_type = Some(
                match action {
                    "credential.add" => "create",
                    "credential.disable" => "revoke",
                    "credential.enable" => "update",
                    _ => "delete",
                }
                .into(),
            );
            if let Some(id) = detail("credential_id") {
                let found: Option<(String, String)> = tx
                    .query_row(
                        "SELECT kind, label FROM credentials WHERE id = ?1",
                        [&id],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                if let Some((kind, label)) = found {
                    event.credential_kind = CredentialKind::parse(&kind);
                    event.credential_label = Some(label);
                }
            }
            event.agents.push(target);
        }
        "grant.remove" => {
            event.kind = "token-claims-change".into();
            event.scope = detail("scope");
            removed_scopes.extend(event.scope.clone());
            event.remaining_scopes = tx
                .prepare_cached("SELECT scope FROM grants WHERE agent_id = ?1 ORDER BY scope")?
                .query_map([&target], |r| r.get(0))?
                .collect::<sql::Result<_>>()?;
            event.agents.push(target);
        }
        _ => return Ok(()),
    }
    // Which resources' streams may carry it: those whose scopes the agents hold (or held until
    // this change), and those to which the person's tokens were addressed.
    let mut resources = std::mem::take(&mut event.resources);
    for agent in &event.agents {
        let held: Vec<String> = tx
            .prepare_cached(
                "SELECT DISTINCT s.resource_id FROM grants g
                 JOIN resource_scopes s ON s.name = g.scope WHERE g.agent_id = ?1",
            )?
            .query_map([agent], |r| r.get(0))?
            .collect::<sql::Result<_>>()?;
        resources.extend(held);
    }
    for scope in &removed_scopes {
        let owner: Option<String> = tx
            .query_row(
                "SELECT resource_id FROM resource_scopes WHERE name = ?1",
                [scope],
                |r| r.get(0),
            )
            .optional()?;
        resources.extend(owner);
    }
    if (action == "person.deactivate" || action == "delegation.revoke")
        && let Some(person) = &event.person
    {
        {
            let audiences: Vec<String> = tx
                .prepare_cached("SELECT DISTINCT audience FROM issued_tokens WHERE subject = ?1")?
                .query_map([person], |r| r.get(0))?
                .collect::<sql::Result<_>>()?;
            let mut all = Vec::new();
            for a in audiences {
                all.extend(parse_json_list(&a)?);
            }
            resources.extend(resources_for_audiences(tx, &all)?);
        }
    }
    resources.sort();
    resources.dedup();
    event.resources = resources;
    let payload = serde_json::to_string(&event).map_err(|e| StoreError::Internal(e.to_string()))?;
    tx.execute(
        "INSERT INTO ssf_outbox (audit_seq, created_at, payload) VALUES (?1, ?2, ?3)",
        params![seq, ts(store_now()), payload],
    )?;
    WROTE_OUTBOX.with(|w| w.set(true));
    if tx.is_postgres() {
        // Delivered at commit to every replica's delivery link: the one that delivers fans
        // the row out at once, wherever the change was made.
        tx.execute_batch(crate::registry::store::pg_signals::NOTIFY_OUTBOX)?;
    }
    Ok(())
}

thread_local! {
    /// Set when this thread's open transaction wrote an outbox row.
    static WROTE_OUTBOX: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Called by the writer before each transaction (clears the flag) and after each commit
/// (wakes the fan-out when the transaction wrote an outbox row).
pub(super) fn before_write() {
    WROTE_OUTBOX.with(|w| w.set(false));
}

pub(super) fn after_commit() {
    if WROTE_OUTBOX.with(|w| w.replace(false)) {
        crate::registry::store::streams::OUTBOX_WAKE.notify_waiters();
    }
}

/// The catalogued resources with any of these audiences.
fn resources_for_audiences(tx: &Tx<'_>, audience: &[String]) -> StoreResult<Vec<String>> {
    if audience.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<(String, String)> = tx
        .prepare_cached("SELECT id, audiences FROM resources")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<sql::Result<_>>()?;
    let mut out = Vec::new();
    for (id, auds) in rows {
        if parse_json_list(&auds)?.iter().any(|a| audience.contains(a)) {
            out.push(id);
        }
    }
    Ok(out)
}

const STREAM_COLUMNS: &str = "id, receiver, method, endpoint_url, authorization_header, \
     events_requested, description, status, reason, consecutive_failures, \
     last_verification_at, created_at";

fn stream_from_row(r: &Row<'_>) -> sql::Result<StreamRow> {
    let status: String = r.get(7)?;
    Ok(StreamRow {
        id: r.get(0)?,
        receiver: r.get(1)?,
        method: r.get(2)?,
        endpoint_url: r.get(3)?,
        authorization_header: r.get(4)?,
        events_requested: parse_json_list(&r.get::<_, String>(5)?)?,
        description: r.get(6)?,
        status: StreamState::parse(&status)
            .ok_or_else(|| super::bad_value("stream status", &status))?,
        reason: r.get(8)?,
        excluded: Vec::new(),
        consecutive_failures: r.get(9)?,
        last_verification_at: r.get(10)?,
        created_at: parse_ts(&r.get::<_, String>(11)?)?,
    })
}

fn load_stream(tx: &Tx<'_>, id: &str) -> StoreResult<Option<StreamRow>> {
    let found = tx
        .query_row(
            &format!("SELECT {STREAM_COLUMNS} FROM ssf_streams WHERE id = ?1"),
            [id],
            stream_from_row,
        )
        .optional()?;
    match found {
        Some(mut s) => {
            s.excluded = excluded_of(tx, &s.id)?;
            Ok(Some(s))
        }
        None => Ok(None),
    }
}

fn excluded_of(tx: &Tx<'_>, id: &str) -> StoreResult<Vec<String>> {
    Ok(tx
        .prepare_cached(
            "SELECT subject_key FROM ssf_subjects WHERE stream_id = ?1 AND included = 0
             ORDER BY subject_key",
        )?
        .query_map([id], |r| r.get(0))?
        .collect::<sql::Result<_>>()?)
}

fn must_stream(tx: &Tx<'_>, id: &str) -> StoreResult<StreamRow> {
    load_stream(tx, id)?.ok_or_else(|| StoreError::NotFound(format!("no stream {id}")))
}

/// Marks a stream's SETs delivered and resets its failure count, in the caller's transaction.
fn delivered_in(tx: &Tx<'_>, stream_id: &str, jtis: &[String]) -> StoreResult<()> {
    let n = tx.execute(
        "UPDATE ssf_queue SET state = 'delivered', done_at = ?1
         WHERE stream_id = ?2 AND state = 'pending' AND jti IN (SELECT value FROM json_each(?3))",
        params![unix_now(), stream_id, json_list(jtis)],
    )?;
    tx.execute(
        "UPDATE ssf_streams SET consecutive_failures = 0, delivered = delivered + ?1,
            last_delivered_at = ?2 WHERE id = ?3",
        params![n as i64, ts(store_now()), stream_id],
    )?;
    Ok(())
}

impl StreamStore for SqliteStore {
    fn create_stream(
        &self,
        actor: &Actor,
        id: &str,
        receiver: &str,
        f: &StreamFields,
    ) -> StoreResult<StreamRow> {
        self.write(|tx| {
            let count: i64 = tx.query_row(
                "SELECT count(*) FROM ssf_streams WHERE receiver = ?1",
                [receiver],
                |r| r.get(0),
            )?;
            if count >= 20 {
                return Err(StoreError::Conflict(format!(
                    "{receiver} already has {count} streams (at most 20); delete one first"
                )));
            }
            let now = ts(self.clock.now());
            tx.execute(
                "INSERT INTO ssf_streams (id, receiver, method, endpoint_url, authorization_header,
                    events_requested, description, status, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'enabled', ?8, ?8)",
                params![
                    id,
                    receiver,
                    f.method,
                    f.endpoint_url,
                    f.authorization_header,
                    json_list(&f.events_requested),
                    f.description,
                    now
                ],
            )?;
            append_audit(
                tx,
                actor,
                "stream.create",
                Some(id),
                "success",
                None,
                &serde_json::json!({"receiver": receiver, "method": f.method,
                    "endpoint_url": f.endpoint_url, "events_requested": f.events_requested}),
            )?;
            must_stream(tx, id)
        })
    }

    fn stream(&self, id: &str) -> StoreResult<Option<StreamRow>> {
        self.read(|tx| load_stream(tx, id))
    }

    fn streams(&self, receiver: Option<&str>) -> StoreResult<Vec<StreamRow>> {
        self.read(|tx| {
            let mut out: Vec<StreamRow> = tx
                .prepare(&format!(
                    "SELECT {STREAM_COLUMNS} FROM ssf_streams
                     WHERE ?1 IS NULL OR receiver = ?1 ORDER BY created_at, id"
                ))?
                .query_map([receiver], stream_from_row)?
                .collect::<sql::Result<_>>()?;
            for s in &mut out {
                s.excluded = excluded_of(tx, &s.id)?;
            }
            Ok(out)
        })
    }

    fn update_stream(&self, actor: &Actor, id: &str, f: &StreamFields) -> StoreResult<StreamRow> {
        self.write(|tx| {
            must_stream(tx, id)?;
            tx.execute(
                "UPDATE ssf_streams SET method = ?1, endpoint_url = ?2, authorization_header = ?3,
                    events_requested = ?4, description = ?5, updated_at = ?6 WHERE id = ?7",
                params![
                    f.method,
                    f.endpoint_url,
                    f.authorization_header,
                    json_list(&f.events_requested),
                    f.description,
                    ts(self.clock.now()),
                    id
                ],
            )?;
            append_audit(
                tx,
                actor,
                "stream.update",
                Some(id),
                "success",
                None,
                &serde_json::json!({"method": f.method, "endpoint_url": f.endpoint_url,
                    "events_requested": f.events_requested}),
            )?;
            must_stream(tx, id)
        })
    }

    fn set_stream_status(
        &self,
        actor: &Actor,
        id: &str,
        status: StreamState,
        reason: Option<&str>,
    ) -> StoreResult<StreamRow> {
        self.write(|tx| {
            let before = must_stream(tx, id)?;
            tx.execute(
                "UPDATE ssf_streams SET status = ?1, reason = ?2, updated_at = ?3,
                    consecutive_failures = CASE WHEN ?1 = 'enabled' THEN 0
                        ELSE consecutive_failures END
                 WHERE id = ?4",
                params![status.as_str(), reason, ts(self.clock.now()), id],
            )?;
            if status == StreamState::Disabled {
                // Disabled: the transmitter drops the stream's events (SSF 1.0 §8.1.2).
                tx.execute(
                    "UPDATE ssf_queue SET state = 'dropped', done_at = ?1
                     WHERE stream_id = ?2 AND state = 'pending'",
                    params![self.clock.unix(), id],
                )?;
            }
            append_audit(
                tx,
                actor,
                "stream.status",
                Some(id),
                "success",
                reason,
                &serde_json::json!({"before": before.status.as_str(), "after": status.as_str()}),
            )?;
            must_stream(tx, id)
        })
    }

    fn delete_stream(&self, actor: &Actor, id: &str) -> StoreResult<bool> {
        self.write(|tx| {
            if load_stream(tx, id)?.is_none() {
                return Ok(false);
            }
            tx.execute("DELETE FROM ssf_queue WHERE stream_id = ?1", [id])?;
            tx.execute("DELETE FROM ssf_subjects WHERE stream_id = ?1", [id])?;
            tx.execute("DELETE FROM ssf_streams WHERE id = ?1", [id])?;
            append_audit(
                tx,
                actor,
                "stream.delete",
                Some(id),
                "success",
                None,
                &serde_json::json!({}),
            )?;
            Ok(true)
        })
    }

    fn set_stream_subject(&self, id: &str, key: &str, included: bool) -> StoreResult<()> {
        self.write(|tx| {
            must_stream(tx, id)?;
            tx.execute(
                "INSERT INTO ssf_subjects (stream_id, subject_key, included) VALUES (?1, ?2, ?3)
                 ON CONFLICT (stream_id, subject_key) DO UPDATE SET included = excluded.included",
                params![id, key, included],
            )?;
            Ok(())
        })
    }

    fn note_verification(&self, id: &str, at: i64) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE ssf_streams SET last_verification_at = ?1 WHERE id = ?2",
                params![at, id],
            )?;
            Ok(())
        })
    }

    fn resource_may_see(&self, resource_id: &str, key: &str) -> StoreResult<bool> {
        self.read(|tx| {
            if let Some(agent) = key.strip_prefix("agent:") {
                let n: i64 = tx.query_row(
                    "SELECT count(*) FROM grants g JOIN resource_scopes s ON s.name = g.scope
                     WHERE g.agent_id = ?1 AND s.resource_id = ?2",
                    params![agent, resource_id],
                    |r| r.get(0),
                )?;
                return Ok(n > 0);
            }
            if let Some(person) = key.strip_prefix("person:") {
                let auds: Option<String> = tx
                    .query_row(
                        "SELECT audiences FROM resources WHERE id = ?1",
                        [resource_id],
                        |r| r.get(0),
                    )
                    .optional()?;
                let Some(auds) = auds else { return Ok(false) };
                let auds = parse_json_list(&auds)?;
                let mut stmt = tx.prepare(
                    "SELECT audience FROM issued_tokens WHERE subject = ?1 COLLATE NOCASE",
                )?;
                let rows = stmt.query_map([person], |r| r.get::<_, String>(0))?;
                for row in rows {
                    if parse_json_list(&row?)?.iter().any(|a| auds.contains(a)) {
                        return Ok(true);
                    }
                }
                return Ok(false);
            }
            Ok(false)
        })
    }

    fn resource_exists(&self, resource_id: &str) -> StoreResult<bool> {
        self.read(|tx| {
            Ok(tx
                .query_row(
                    "SELECT 1 FROM resources WHERE id = ?1",
                    [resource_id],
                    |_| Ok(()),
                )
                .optional()?
                .is_some())
        })
    }

    fn delivery_peers(&self) -> Option<tokio_postgres::Config> {
        match &self.engine {
            super::Engine::Postgres(db) => Some(db.config().clone()),
            super::Engine::Sqlite(_) => None,
        }
    }

    fn pending_outbox(&self, limit: u32) -> StoreResult<Vec<OutboxRow>> {
        self.read(|tx| {
            let rows: Vec<(i64, i64, String)> = tx
                .prepare_cached(
                    "SELECT id, audit_seq, payload FROM ssf_outbox WHERE fanned_out_at IS NULL
                     ORDER BY id LIMIT ?1",
                )?
                .query_map([limit], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<sql::Result<_>>()?;
            rows.into_iter()
                .map(|(id, audit_seq, payload)| {
                    let event = serde_json::from_str(&payload).map_err(|e| {
                        StoreError::Internal(format!("outbox row {id} is unreadable: {e}"))
                    })?;
                    Ok(OutboxRow {
                        id,
                        audit_seq,
                        event,
                    })
                })
                .collect()
        })
    }

    fn fan_out(&self, outbox_id: i64, sets: &[QueuedSet]) -> StoreResult<()> {
        self.write(|tx| {
            // Claimed first: a second fan-out of the same row (another transmitter task, a
            // replica) finds it done and queues nothing, so no receiver gets an action twice.
            let claimed = tx.execute(
                "UPDATE ssf_outbox SET fanned_out_at = ?1 WHERE id = ?2 AND fanned_out_at IS NULL",
                params![ts(self.clock.now()), outbox_id],
            )?;
            if claimed == 0 {
                return Ok(());
            }
            let now = self.clock.unix_millis();
            {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO ssf_queue (stream_id, jti, audit_seq, set_jwt, created_at)
                     SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS
                        (SELECT 1 FROM ssf_streams WHERE id = ?1 AND status != 'disabled')",
                )?;
                for s in sets {
                    insert.execute(params![s.stream_id, s.jti, s.audit_seq, s.set, now])?;
                }
            }
            Ok(())
        })
    }

    fn queue_sets(&self, sets: &[QueuedSet]) -> StoreResult<()> {
        self.write(|tx| {
            let now = self.clock.unix_millis();
            let mut insert = tx.prepare_cached(
                "INSERT INTO ssf_queue (stream_id, jti, audit_seq, set_jwt, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for s in sets {
                insert.execute(params![s.stream_id, s.jti, s.audit_seq, s.set, now])?;
            }
            Ok(())
        })
    }

    fn pending_sets(&self, stream_id: &str, limit: u32) -> StoreResult<Vec<PendingSet>> {
        self.read(|tx| {
            Ok(tx
                .prepare_cached(
                    "SELECT seq, jti, set_jwt FROM ssf_queue
                     WHERE stream_id = ?1 AND state = 'pending' ORDER BY seq LIMIT ?2",
                )?
                .query_map(params![stream_id, limit], |r| {
                    Ok(PendingSet {
                        seq: r.get(0)?,
                        jti: r.get(1)?,
                        set: r.get(2)?,
                    })
                })?
                .collect::<sql::Result<_>>()?)
        })
    }

    fn pending_count(&self, stream_id: &str) -> StoreResult<u64> {
        self.read(|tx| {
            let n: i64 = tx.query_row(
                "SELECT count(*) FROM ssf_queue WHERE stream_id = ?1 AND state = 'pending'",
                [stream_id],
                |r| r.get(0),
            )?;
            Ok(n as u64)
        })
    }

    fn mark_delivered(&self, stream_id: &str, jtis: &[String]) -> StoreResult<()> {
        self.write(|tx| delivered_in(tx, stream_id, jtis))
    }

    fn mark_delivered_many(&self, batch: &[(String, Vec<String>)]) -> StoreResult<()> {
        if batch.is_empty() {
            return Ok(());
        }
        self.write(|tx| {
            for (stream_id, jtis) in batch {
                delivered_in(tx, stream_id, jtis)?;
            }
            Ok(())
        })
    }

    fn mark_refused(&self, stream_id: &str, jti: &str, error: &str) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE ssf_queue SET state = 'refused', done_at = ?1, error = ?2
                 WHERE stream_id = ?3 AND jti = ?4 AND state = 'pending'",
                params![self.clock.unix(), error, stream_id, jti],
            )?;
            tx.execute(
                "UPDATE ssf_streams SET failed = failed + 1, consecutive_failures = 0,
                    last_error = ?1, last_error_at = ?2 WHERE id = ?3",
                params![error, ts(self.clock.now()), stream_id],
            )?;
            Ok(())
        })
    }

    fn record_failure(
        &self,
        stream_id: &str,
        error: &str,
        pause_after: u32,
    ) -> StoreResult<StreamState> {
        self.write(|tx| {
            tx.execute(
                "UPDATE ssf_streams SET consecutive_failures = consecutive_failures + 1,
                    last_error = ?1, last_error_at = ?2 WHERE id = ?3",
                params![error, ts(self.clock.now()), stream_id],
            )?;
            let s = must_stream(tx, stream_id)?;
            if s.status == StreamState::Enabled && s.consecutive_failures >= pause_after {
                let reason = format!(
                    "paused by the transmitter after {} consecutive delivery failures; last: {error}",
                    s.consecutive_failures
                );
                tx.execute(
                    "UPDATE ssf_streams SET status = 'paused', reason = ?1 WHERE id = ?2",
                    params![reason, stream_id],
                )?;
                append_audit(
                    tx,
                    &Actor::system("steward-signals"),
                    "stream.status",
                    Some(stream_id),
                    "success",
                    Some(&reason),
                    &serde_json::json!({"before": "enabled", "after": "paused"}),
                )?;
                return Ok(StreamState::Paused);
            }
            Ok(s.status)
        })
    }

    fn acknowledge(
        &self,
        stream_id: &str,
        ack: &[String],
        errs: &[(String, SetError)],
    ) -> StoreResult<AckOutcome> {
        self.write(|tx| {
            let all: Vec<&String> = ack.iter().chain(errs.iter().map(|(j, _)| j)).collect();
            let mut unknown = Vec::new();
            {
                let mut known =
                    tx.prepare_cached("SELECT 1 FROM ssf_queue WHERE stream_id = ?1 AND jti = ?2")?;
                for jti in &all {
                    if known
                        .query_row(params![stream_id, jti], |_| Ok(()))
                        .optional()?
                        .is_none()
                    {
                        unknown.push(jti.to_string());
                    }
                }
            }
            if !unknown.is_empty() {
                return Err(invalid(
                    "invalid_request",
                    format!(
                        "this stream never delivered the SET(s) {}; nothing was acknowledged",
                        unknown.join(", ")
                    ),
                ));
            }
            let now = self.clock.unix();
            let mut out = AckOutcome::default();
            for jti in ack {
                out.acknowledged += tx.execute(
                    "UPDATE ssf_queue SET state = 'delivered', done_at = ?1
                     WHERE stream_id = ?2 AND jti = ?3 AND state = 'pending'",
                    params![now, stream_id, jti],
                )? as u64;
            }
            for (jti, e) in errs {
                out.refused += tx.execute(
                    "UPDATE ssf_queue SET state = 'refused', done_at = ?1, error = ?2
                     WHERE stream_id = ?3 AND jti = ?4 AND state = 'pending'",
                    params![now, format!("{}: {}", e.err, e.description), stream_id, jti],
                )? as u64;
            }
            let last_error = errs
                .last()
                .map(|(jti, e)| format!("receiver refused {jti}: {}: {}", e.err, e.description));
            tx.execute(
                "UPDATE ssf_streams SET delivered = delivered + ?1, failed = failed + ?2,
                    last_delivered_at = CASE WHEN ?1 > 0 THEN ?3 ELSE last_delivered_at END,
                    last_error = coalesce(?4, last_error),
                    last_error_at = CASE WHEN ?4 IS NULL THEN last_error_at ELSE ?3 END
                 WHERE id = ?5",
                params![
                    out.acknowledged as i64,
                    out.refused as i64,
                    ts(self.clock.now()),
                    last_error,
                    stream_id
                ],
            )?;
            Ok(out)
        })
    }

    fn stream_summaries(&self, receiver: Option<&str>) -> StoreResult<Vec<StreamSummary>> {
        self.read(|tx| {
            let now_ms = self.clock.unix_millis();
            let rows = tx
                .prepare(
                    "SELECT s.id, s.receiver, s.method, s.endpoint_url, s.status, s.reason,
                        s.description, s.delivered, s.failed, s.consecutive_failures,
                        s.last_error, s.last_error_at, s.last_delivered_at, s.created_at,
                        (SELECT count(*) FROM ssf_queue q
                            WHERE q.stream_id = s.id AND q.state = 'pending'),
                        (SELECT min(created_at) FROM ssf_queue q
                            WHERE q.stream_id = s.id AND q.state = 'pending')
                     FROM ssf_streams s WHERE ?1 IS NULL OR s.receiver = ?1
                     ORDER BY s.created_at, s.id",
                )?
                .query_map([receiver], |r| {
                    let status: String = r.get(4)?;
                    let oldest: Option<i64> = r.get(15)?;
                    Ok(StreamSummary {
                        stream_id: r.get(0)?,
                        receiver: r.get(1)?,
                        method: r.get(2)?,
                        endpoint_url: r.get(3)?,
                        status: StreamState::parse(&status)
                            .ok_or_else(|| super::bad_value("stream status", &status))?,
                        reason: r.get(5)?,
                        description: r.get(6)?,
                        delivered: r.get::<_, i64>(7)? as u64,
                        failed: r.get::<_, i64>(8)? as u64,
                        consecutive_failures: r.get(9)?,
                        last_error: r.get(10)?,
                        last_error_at: parse_opt_ts(r.get(11)?)?,
                        last_delivered_at: parse_opt_ts(r.get(12)?)?,
                        created_at: parse_ts(&r.get::<_, String>(13)?)?,
                        pending: r.get::<_, i64>(14)? as u64,
                        lag_seconds: oldest
                            .map(|o| ((now_ms - o).max(0) / 1000) as u64)
                            .unwrap_or(0),
                    })
                })?
                .collect::<sql::Result<_>>()?;
            Ok(rows)
        })
    }

    fn fan_out_status(&self, audit_seq: i64) -> StoreResult<(FanOut, String)> {
        self.read(|tx| {
            let actor: String = tx
                .query_row(
                    "SELECT actor_id FROM audit_events WHERE seq = ?1",
                    [audit_seq],
                    |r| r.get(0),
                )
                .optional()?
                .unwrap_or_default();
            let fanned: Option<Option<String>> = tx
                .query_row(
                    "SELECT fanned_out_at FROM ssf_outbox WHERE audit_seq = ?1",
                    [audit_seq],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(fanned) = fanned else {
                return Err(StoreError::NotFound(format!(
                    "audit event {audit_seq} caused no security events (or they were all \
                     delivered long ago, and their history pruned)"
                )));
            };
            let mut out = FanOut {
                audit_seq,
                fanned_out: fanned.is_some(),
                ..Default::default()
            };
            let rows: Vec<(String, i64, i64, String)> = tx
                .prepare(
                    "SELECT q.stream_id,
                        sum(CASE WHEN q.state = 'pending' THEN 1 ELSE 0 END),
                        sum(CASE WHEN q.state IN ('refused', 'dropped') THEN 1 ELSE 0 END), s.status
                     FROM ssf_queue q JOIN ssf_streams s ON s.id = q.stream_id
                     WHERE q.audit_seq = ?1 GROUP BY q.stream_id, s.id",
                )?
                .query_map([audit_seq], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?
                .collect::<sql::Result<_>>()?;
            for (_, pending, failed, status) in rows {
                // A paused stream holds its SETs until it is resumed: they are pending. Only
                // a disabled stream's waiting SETs will never be delivered.
                if failed > 0 || (pending > 0 && status == "disabled") {
                    out.failed += 1;
                } else if pending > 0 {
                    out.pending += 1;
                } else {
                    out.notified += 1;
                }
            }
            Ok((out, actor))
        })
    }

    fn prune_delivered(&self, done_before: i64) -> StoreResult<u64> {
        self.write(|tx| {
            let n = tx.execute(
                "DELETE FROM ssf_queue WHERE state != 'pending' AND done_at <= ?1",
                [done_before],
            )?;
            let cutoff = chrono::DateTime::from_timestamp(done_before, 0).unwrap_or_default();
            tx.execute(
                "DELETE FROM ssf_outbox WHERE fanned_out_at IS NOT NULL AND fanned_out_at <= ?1
                   AND NOT EXISTS (SELECT 1 FROM ssf_queue q WHERE q.audit_seq = ssf_outbox.audit_seq)",
                [ts(cutoff)],
            )?;
            Ok(n as u64)
        })
    }
}
