//! The SQLite bodies of [`ApprovalStore`]: access requests, per-use approvals and their votes.
//! A child module of `sqlite`, sharing its transaction, audit and change-feed helpers. The
//! policy (who may decide, how many, how long) lives in `registry::service::approvals`; this
//! file reads the facts it needs and writes what it decides, in one transaction.

use crate::registry::store::sql::{self, OptionalExtension, Row, Tx};
use chrono::{DateTime, Duration, Utc};
use rusqlite::params;

use super::catalogue::{scope_info_in, unknown_scope};
use super::{
    SqliteStore, agent_by_id, append_audit, bad_value, facts, json_list, new_id, parse_json_list,
    parse_opt_ts, parse_ts, person_by_email, touch_agent, ts,
};
use crate::model::approvals::{AccessRequest, ApprovalVote, RequestKind, RequestStatus};
use crate::model::catalogue::{ApprovalMode, Tier, format_duration};
use crate::model::{Actor, ActorKind, Agent, AgentStatus, Role};
use crate::registry::service::approvals::{
    self as policy, MAX_PENDING_USE_PER_AGENT, REQUEST_TTL_SECS, RequestFacts,
    USE_APPROVAL_TTL_SECS, Voter,
};
use crate::registry::store::approvals::{
    ApprovalStore, NewGrantRequest, RequestFilter, UseApprovalAsked, UseBinding, UseRedemption,
};
use crate::registry::store::{Guard, StoreError, StoreResult};

/// The approver recorded for low-tier grants approved at once.
pub const POLICY_APPROVER: &str = "policy";

const REQUEST_COLUMNS: &str = "q.id, q.kind, q.status, q.agent_id, a.name, o.email, q.scopes,
    q.resource_id, q.tier, q.requester, q.subject, q.audience, q.chain, q.justification,
    q.duration_secs, q.approvals_required, q.created_at, q.expires_at, q.decided_at,
    q.decided_by, q.reason, q.grant_expires_at, q.used_at";

const REQUEST_FROM: &str = "access_requests q JOIN agents a ON a.id = q.agent_id
    LEFT JOIN people o ON o.id = a.owner_id";

fn request_from_row(r: &Row<'_>) -> sql::Result<AccessRequest> {
    let kind: String = r.get(1)?;
    let status: String = r.get(2)?;
    let tier: String = r.get(8)?;
    let scopes = parse_json_list(&r.get::<_, String>(6)?)?;
    let duration: Option<i64> = r.get(14)?;
    Ok(AccessRequest {
        id: r.get(0)?,
        kind: RequestKind::parse(&kind).ok_or_else(|| bad_value("request kind", &kind))?,
        status: RequestStatus::parse(&status)
            .ok_or_else(|| bad_value("request status", &status))?,
        agent_id: r.get(3)?,
        agent_name: r.get(4)?,
        agent_owner: r.get(5)?,
        scope: scopes.join(" "),
        scopes,
        resource_id: r.get(7)?,
        tier: Tier::parse(&tier).ok_or_else(|| bad_value("tier", &tier))?,
        requester: r.get(9)?,
        subject: r.get(10)?,
        audience: parse_json_list(&r.get::<_, String>(11)?)?,
        chain: parse_json_list(&r.get::<_, String>(12)?)?,
        justification: r.get(13)?,
        duration: duration.map(format_duration),
        approvals_required: r.get(15)?,
        approvals: Vec::new(),
        created_at: parse_ts(&r.get::<_, String>(16)?)?,
        expires_at: parse_ts(&r.get::<_, String>(17)?)?,
        decided_at: parse_opt_ts(r.get(18)?)?,
        decided_by: r.get(19)?,
        reason: r.get(20)?,
        grant_expires_at: parse_opt_ts(r.get(21)?)?,
        used_at: parse_opt_ts(r.get(22)?)?,
        agent_grants: None,
    })
}

fn votes_of(tx: &Tx<'_>, id: &str) -> StoreResult<Vec<ApprovalVote>> {
    let mut stmt = tx.prepare_cached(
        "SELECT approver, approved_at, reason FROM request_approvals
         WHERE request_id = ?1 ORDER BY approved_at, approver",
    )?;
    let rows = stmt.query_map([id], |r| {
        Ok(ApprovalVote {
            by: r.get(0)?,
            at: parse_ts(&r.get::<_, String>(1)?)?,
            reason: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<sql::Result<Vec<_>>>()?)
}

fn load_requests(
    tx: &Tx<'_>,
    where_sql: &str,
    params: &[&dyn rusqlite::ToSql],
) -> StoreResult<Vec<AccessRequest>> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {REQUEST_COLUMNS} FROM {REQUEST_FROM} WHERE {where_sql}"
    ))?;
    let mut requests = stmt
        .query_map(params, request_from_row)?
        .collect::<sql::Result<Vec<_>>>()?;
    for r in &mut requests {
        r.approvals = votes_of(tx, &r.id)?;
    }
    Ok(requests)
}

fn request_by_id(tx: &Tx<'_>, id: &str) -> StoreResult<AccessRequest> {
    load_requests(tx, "q.id = ?1", &[&id])?
        .pop()
        .ok_or_else(|| StoreError::NotFound(format!("no request or approval with id {id}")))
}

/// An agent's pending, unexpired requests, newest first (for its detail view).
pub(in crate::registry::store) fn pending_for_agent(
    tx: &Tx<'_>,
    agent_id: &str,
    now: DateTime<Utc>,
) -> StoreResult<Vec<AccessRequest>> {
    load_requests(
        tx,
        "q.agent_id = ?1 AND q.status = 'pending' AND q.expires_at > ?2
         ORDER BY q.created_at DESC, q.id DESC LIMIT 100",
        &[&agent_id, &ts(now)],
    )
}

fn refused(status: u16, code: &'static str, message: String) -> StoreError {
    StoreError::Refused {
        status,
        code,
        message,
    }
}

/// The resource owner when they are an active person.
fn active_resource_owner(tx: &Tx<'_>, resource_id: &str) -> StoreResult<Option<String>> {
    Ok(tx
        .prepare_cached(
            "SELECT p.email FROM resources r JOIN people p ON p.id = r.owner_id
             WHERE r.id = ?1 AND p.active = 1",
        )?
        .query_row([resource_id], |r| r.get(0))
        .optional()?
        .flatten())
}

fn is_admin(tx: &Tx<'_>, email: &str) -> StoreResult<bool> {
    Ok(person_by_email(tx, email)?.is_some_and(|p| p.active && p.has_role(Role::Admin)))
}

/// What the policy needs to decide on `request`, read now. For a grant, the tier and the
/// number of approvers are the catalogue's current ones (a reclassification applies to
/// requests still pending).
fn request_facts(tx: &Tx<'_>, request: &AccessRequest) -> StoreResult<RequestFacts> {
    let (tier, approvers_required) = match request.kind {
        RequestKind::Grant => {
            let info =
                scope_info_in(tx, &request.scope)?.ok_or_else(|| unknown_scope(&request.scope))?;
            let p = policy::grant_policy(&info);
            (p.tier, p.approvers)
        }
        RequestKind::Use => (request.tier, 1),
    };
    let mut votes = Vec::new();
    for v in &request.approvals {
        votes.push(Voter {
            email: v.by.clone(),
            admin: is_admin(tx, &v.by)?,
        });
    }
    Ok(RequestFacts {
        kind: request.kind,
        tier,
        approvers_required,
        requester: request.requester.clone(),
        agent_owner: request.agent_owner.clone(),
        resource_owner: active_resource_owner(tx, &request.resource_id)?,
        subject: request.subject.clone(),
        votes,
    })
}

fn decision_details(request: &AccessRequest, extra: serde_json::Value) -> serde_json::Value {
    let mut details = serde_json::json!({
        "request_id": request.id,
        "kind": request.kind.as_str(),
        "requester": request.requester,
        "scope": request.scope,
        "tier": request.tier.as_str(),
        "duration": request.duration,
        "approvers": request.approvals.iter().map(|v| v.by.clone()).collect::<Vec<_>>(),
    });
    if request.kind == RequestKind::Use {
        details["subject"] = serde_json::json!(request.subject);
        details["audience"] = serde_json::json!(request.audience);
        details["chain"] = serde_json::json!(request.chain);
    }
    if let (Some(d), serde_json::Value::Object(extra)) = (details.as_object_mut(), extra) {
        d.extend(extra);
    }
    details
}

/// Writes the time-bound grant an approved request becomes (replacing an existing grant of the
/// same scope: a re-approval renews it), with its audit event.
fn grant_from_request(
    tx: &Tx<'_>,
    actor: &Actor,
    request: &AccessRequest,
    duration_secs: i64,
    now: DateTime<Utc>,
) -> StoreResult<DateTime<Utc>> {
    let expires_at = now + Duration::seconds(duration_secs);
    let approvers: Vec<&str> = request.approvals.iter().map(|v| v.by.as_str()).collect();
    tx.execute(
        "INSERT INTO grants (agent_id, scope, granted_by, granted_at, expires_at, justification)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (agent_id, scope) DO UPDATE SET granted_by = excluded.granted_by,
            granted_at = excluded.granted_at, expires_at = excluded.expires_at,
            justification = excluded.justification",
        params![
            request.agent_id,
            request.scope,
            approvers.join(","),
            ts(now),
            ts(expires_at),
            request.justification
        ],
    )?;
    // A re-approval replaces an upgrade's deadline with its own.
    tx.execute(
        "DELETE FROM upgrade_deadlines WHERE agent_id = ?1 AND scope = ?2",
        params![request.agent_id, request.scope],
    )?;
    touch_agent(tx, &request.agent_id)?;
    append_audit(
        tx,
        actor,
        "grant.add",
        Some(&request.agent_id),
        "success",
        request.justification.as_deref(),
        &serde_json::json!({
            "scope": request.scope, "expires_at": ts(expires_at), "request_id": request.id,
            "requester": request.requester, "approvers": approvers, "tier": request.tier.as_str(),
        }),
    )?;
    tx.execute(
        "UPDATE access_requests SET grant_expires_at = ?1 WHERE id = ?2",
        params![ts(expires_at), request.id],
    )?;
    Ok(expires_at)
}

/// Files one access request for `agent` (checked by the caller), approving it at once when
/// the tier's policy says so. Shared by requests and registration.
pub(in crate::registry::store) fn file_grant_request(
    tx: &Tx<'_>,
    actor: &Actor,
    agent: &Agent,
    scope: &str,
    justification: Option<&str>,
    duration_secs: Option<i64>,
    now: DateTime<Utc>,
) -> StoreResult<AccessRequest> {
    if agent.status == AgentStatus::Decommissioned {
        return Err(StoreError::Conflict(format!(
            "agent {} is decommissioned; it cannot receive grants",
            agent.id
        )));
    }
    let info = scope_info_in(tx, scope)?.ok_or_else(|| unknown_scope(scope))?;
    let grant_policy = policy::grant_policy(&info);
    let duration = policy::grant_duration(&grant_policy, scope, duration_secs)?;
    let pending: Option<String> = tx
        .query_row(
            "SELECT id FROM access_requests WHERE agent_id = ?1 AND kind = 'grant'
             AND status = 'pending' AND scopes = ?2 AND expires_at > ?3",
            params![agent.id, json_list(&[scope.to_string()]), ts(now)],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(id) = pending {
        return Err(refused(
            409,
            "request_pending",
            format!(
                "request {id} for {scope} on agent {} is already pending",
                agent.id
            ),
        ));
    }
    let id = new_id("rq");
    tx.execute(
        "INSERT INTO access_requests (id, kind, status, agent_id, scopes, resource_id, tier,
            requester, justification, duration_secs, approvals_required, created_at, expires_at)
         VALUES (?1, 'grant', 'pending', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            id,
            agent.id,
            json_list(&[scope.to_string()]),
            info.resource_id,
            info.tier.as_str(),
            actor.id,
            justification,
            duration,
            grant_policy.approvers,
            ts(now),
            ts(now + Duration::seconds(REQUEST_TTL_SECS))
        ],
    )?;
    // The agent shows its pending requests: consoles learn of them through the change feed.
    touch_agent(tx, &agent.id)?;
    let request = request_by_id(tx, &id)?;
    append_audit(
        tx,
        actor,
        "request.create",
        Some(&agent.id),
        "success",
        justification,
        &decision_details(
            &request,
            serde_json::json!({"resource_id": info.resource_id}),
        ),
    )?;
    if grant_policy.automatic {
        tx.execute(
            "INSERT INTO request_approvals (request_id, approver, approved_at, reason)
             VALUES (?1, ?2, ?3, 'low tier: approved by policy')",
            params![id, POLICY_APPROVER, ts(now)],
        )?;
        tx.execute(
            "UPDATE access_requests SET status = 'approved', decided_at = ?1, decided_by = ?2
             WHERE id = ?3",
            params![ts(now), POLICY_APPROVER, id],
        )?;
        let request = request_by_id(tx, &id)?;
        append_audit(
            tx,
            &Actor::system(POLICY_APPROVER),
            "request.approve",
            Some(&agent.id),
            "success",
            Some("low tier: approved by policy"),
            &decision_details(&request, serde_json::json!({"complete": true})),
        )?;
        grant_from_request(tx, &Actor::system(POLICY_APPROVER), &request, duration, now)?;
    }
    request_by_id(tx, &id)
}

fn check_decidable(request: &AccessRequest, now: DateTime<Utc>) -> StoreResult<()> {
    match request.status {
        RequestStatus::Pending if request.expires_at <= now => Err(refused(
            409,
            "request_expired",
            format!(
                "{} expired undecided at {}; file a new one",
                request.id,
                ts(request.expires_at)
            ),
        )),
        RequestStatus::Pending => Ok(()),
        RequestStatus::Expired => Err(refused(
            409,
            "request_expired",
            format!("{} expired undecided; file a new one", request.id),
        )),
        other => Err(refused(
            409,
            "already_decided",
            format!("{} is already {}", request.id, other.as_str()),
        )),
    }
}

fn use_actor(binding_agent: &str, subject: Option<&str>, chain: &[String]) -> Actor {
    Actor {
        kind: ActorKind::Agent,
        id: binding_agent.to_string(),
        on_behalf_of: subject.map(str::to_string),
        chain: chain.to_vec(),
    }
}

impl ApprovalStore for SqliteStore {
    fn request_grant(
        &self,
        actor: &Actor,
        req: &NewGrantRequest,
        now: DateTime<Utc>,
        guard: Guard<'_>,
    ) -> StoreResult<AccessRequest> {
        self.write(|tx| {
            let agent = agent_by_id(tx, &req.agent_id)?;
            guard(&facts(&agent))?;
            file_grant_request(
                tx,
                actor,
                &agent,
                &req.scope,
                req.justification.as_deref(),
                req.duration_secs,
                now,
            )
        })
    }

    fn request(&self, id: &str) -> StoreResult<Option<AccessRequest>> {
        self.read(|tx| match request_by_id(tx, id) {
            Ok(r) => Ok(Some(r)),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        })
    }

    fn list_requests(&self, filter: &RequestFilter) -> StoreResult<Vec<AccessRequest>> {
        self.read(|tx| {
            load_requests(
                tx,
                "(?1 IS NULL OR q.agent_id = ?1) AND (?2 IS NULL OR q.status = ?2)
                 AND (?3 IS NULL OR q.kind = ?3) ORDER BY q.created_at DESC, q.id DESC LIMIT 500",
                &[
                    &filter.agent_id,
                    &filter.status.map(|s| s.as_str()),
                    &filter.kind.map(|k| k.as_str()),
                ],
            )
        })
    }

    fn approval_queue(
        &self,
        voter: &Voter,
        kind: Option<RequestKind>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<AccessRequest>> {
        self.read(|tx| {
            let pending = load_requests(
                tx,
                "q.status = 'pending' AND q.expires_at > ?1 AND (?2 IS NULL OR q.kind = ?2)
                 ORDER BY q.created_at DESC, q.id DESC LIMIT 2000",
                &[&ts(now), &kind.map(|k| k.as_str())],
            )?;
            let mut mine = Vec::new();
            for r in pending {
                let facts = match request_facts(tx, &r) {
                    Ok(f) => f,
                    // A scope since removed from the catalogue: nobody can decide it.
                    Err(StoreError::Invalid { .. }) => continue,
                    Err(e) => return Err(e),
                };
                if facts.may_decide(voter)
                    && !r
                        .approvals
                        .iter()
                        .any(|v| v.by.eq_ignore_ascii_case(&voter.email))
                {
                    mine.push(r);
                }
            }
            Ok(mine)
        })
    }

    fn approve_request(
        &self,
        actor: &Actor,
        id: &str,
        voter: &Voter,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<AccessRequest> {
        self.write(|tx| {
            let request = request_by_id(tx, id)?;
            check_decidable(&request, now)?;
            let facts = request_facts(tx, &request)?;
            let complete = facts.approve(voter)?;
            let duration = match request.kind {
                RequestKind::Grant => {
                    let info = scope_info_in(tx, &request.scope)?
                        .ok_or_else(|| unknown_scope(&request.scope))?;
                    let asked = request
                        .duration
                        .as_deref()
                        .map(|d| crate::model::catalogue::parse_duration(d).unwrap_or(i64::MAX));
                    Some(policy::grant_duration(
                        &policy::grant_policy(&info),
                        &request.scope,
                        asked,
                    )?)
                }
                RequestKind::Use => None,
            };
            tx.execute(
                "INSERT INTO request_approvals (request_id, approver, approved_at, reason)
                 VALUES (?1, ?2, ?3, ?4)",
                params![id, voter.email, ts(now), reason],
            )?;
            if complete {
                // A per-use approval is good for one exchange within the next ten minutes.
                let expires_at = match request.kind {
                    RequestKind::Use => now + Duration::seconds(USE_APPROVAL_TTL_SECS),
                    RequestKind::Grant => request.expires_at,
                };
                tx.execute(
                    "UPDATE access_requests SET status = 'approved', decided_at = ?1,
                        decided_by = ?2, expires_at = ?3, approvals_required = ?4 WHERE id = ?5",
                    params![
                        ts(now),
                        voter.email,
                        ts(expires_at),
                        facts.approvers_required,
                        id
                    ],
                )?;
            } else {
                tx.execute(
                    "UPDATE access_requests SET approvals_required = ?1 WHERE id = ?2",
                    params![facts.approvers_required, id],
                )?;
            }
            touch_agent(tx, &request.agent_id)?;
            let request = request_by_id(tx, id)?;
            append_audit(
                tx,
                actor,
                "request.approve",
                Some(&request.agent_id),
                "success",
                reason,
                &decision_details(
                    &request,
                    serde_json::json!({
                        "approver": voter.email,
                        "complete": complete,
                        "approvals_required": facts.approvers_required,
                    }),
                ),
            )?;
            if complete && let Some(duration) = duration {
                grant_from_request(tx, actor, &request, duration, now)?;
            }
            request_by_id(tx, id)
        })
    }

    fn deny_request(
        &self,
        actor: &Actor,
        id: &str,
        voter: &Voter,
        reason: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<AccessRequest> {
        self.write(|tx| {
            let request = request_by_id(tx, id)?;
            check_decidable(&request, now)?;
            request_facts(tx, &request)?.deny(voter)?;
            tx.execute(
                "UPDATE access_requests SET status = 'denied', decided_at = ?1, decided_by = ?2,
                    reason = ?3 WHERE id = ?4",
                params![ts(now), voter.email, reason, id],
            )?;
            touch_agent(tx, &request.agent_id)?;
            let request = request_by_id(tx, id)?;
            append_audit(
                tx,
                actor,
                "request.deny",
                Some(&request.agent_id),
                "success",
                Some(reason),
                &decision_details(&request, serde_json::json!({"denied_by": voter.email})),
            )?;
            Ok(request)
        })
    }

    fn expire_requests(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        self.write(|tx| {
            let due = load_requests(
                tx,
                "q.status = 'pending' AND q.expires_at <= ?1 ORDER BY q.expires_at LIMIT 1000",
                &[&ts(now)],
            )?;
            for request in &due {
                tx.execute(
                    "UPDATE access_requests SET status = 'expired', decided_at = ?1 WHERE id = ?2",
                    params![ts(now), request.id],
                )?;
                append_audit(
                    tx,
                    &Actor::system("steward-approvals"),
                    "request.expire",
                    Some(&request.agent_id),
                    "success",
                    Some("undecided in time"),
                    &decision_details(request, serde_json::json!({})),
                )?;
            }
            Ok(due.len() as u64)
        })
    }

    fn expired_grants(&self, now: DateTime<Utc>, limit: u32) -> StoreResult<Vec<(String, String)>> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT agent_id, scope FROM grants
                 WHERE expires_at IS NOT NULL AND expires_at <= ?1 ORDER BY expires_at LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![ts(now), limit], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<sql::Result<Vec<_>>>()?)
        })
    }

    fn request_use_approval(
        &self,
        binding: &UseBinding,
        now: DateTime<Utc>,
    ) -> StoreResult<UseApprovalAsked> {
        self.write(|tx| {
            let actor = use_actor(&binding.agent_id, Some(&binding.subject), &binding.chain);
            let scopes = json_list(&binding.scopes);
            let audience = json_list(&binding.audience);
            let same: Option<String> = tx
                .query_row(
                    "SELECT id FROM access_requests WHERE agent_id = ?1 AND kind = 'use'
                     AND status = 'pending' AND subject = ?2 COLLATE NOCASE AND scopes = ?3
                     AND audience = ?4 AND expires_at > ?5 ORDER BY created_at DESC LIMIT 1",
                    params![binding.agent_id, binding.subject, scopes, audience, ts(now)],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(id) = same {
                let request = request_by_id(tx, &id)?;
                append_audit(
                    tx,
                    &actor,
                    "approval.request",
                    Some(&binding.agent_id),
                    "merged",
                    None,
                    &decision_details(&request, serde_json::json!({"merged": true})),
                )?;
                return Ok(UseApprovalAsked {
                    request,
                    merged: true,
                });
            }
            let pending: i64 = tx.query_row(
                "SELECT count(*) FROM access_requests WHERE agent_id = ?1 AND kind = 'use'
                 AND status = 'pending' AND expires_at > ?2",
                params![binding.agent_id, ts(now)],
                |r| r.get(0),
            )?;
            if pending >= MAX_PENDING_USE_PER_AGENT {
                return Err(refused(
                    429,
                    "too_many_pending",
                    format!(
                        "agent {} already has {pending} per-use approvals waiting (at most \
                         {MAX_PENDING_USE_PER_AGENT}); wait for a decision",
                        binding.agent_id
                    ),
                ));
            }
            // The approval is about the per-use scopes: the first one names the resource
            // whose owner decides; the tier shown is the highest among them.
            let mut per_use = Vec::new();
            for s in &binding.scopes {
                if let Some(info) = scope_info_in(tx, s)?
                    && info.approval == ApprovalMode::PerUse
                {
                    per_use.push(info);
                }
            }
            let first = per_use.first().ok_or_else(|| {
                StoreError::Internal("a per-use approval was asked for no per-use scope".into())
            })?;
            let tier = per_use
                .iter()
                .map(|i| i.tier)
                .max_by_key(|t| match t {
                    Tier::Low => 0,
                    Tier::Medium => 1,
                    Tier::High | Tier::Unclassified => 2,
                    Tier::Critical => 3,
                })
                .unwrap_or(first.tier);
            let id = new_id("ap");
            tx.execute(
                "INSERT INTO access_requests (id, kind, status, agent_id, scopes, resource_id, tier,
                    requester, subject, audience, chain, approvals_required, created_at, expires_at)
                 VALUES (?1, 'use', 'pending', ?2, ?3, ?4, ?5, ?2, ?6, ?7, ?8, 1, ?9, ?10)",
                params![
                    id,
                    binding.agent_id,
                    scopes,
                    first.resource_id,
                    tier.as_str(),
                    binding.subject,
                    audience,
                    json_list(&binding.chain),
                    ts(now),
                    ts(now + Duration::seconds(USE_APPROVAL_TTL_SECS))
                ],
            )?;
            touch_agent(tx, &binding.agent_id)?;
            let request = request_by_id(tx, &id)?;
            append_audit(
                tx,
                &actor,
                "approval.request",
                Some(&binding.agent_id),
                "pending",
                None,
                &decision_details(&request, serde_json::json!({"merged": false})),
            )?;
            Ok(UseApprovalAsked {
                request,
                merged: false,
            })
        })
    }

    fn redeem_use_approval(
        &self,
        id: &str,
        binding: &UseBinding,
        now: DateTime<Utc>,
    ) -> StoreResult<UseRedemption> {
        self.write(|tx| {
            let actor = use_actor(&binding.agent_id, Some(&binding.subject), &binding.chain);
            let request = match request_by_id(tx, id) {
                Ok(r) if r.kind == RequestKind::Use => r,
                Ok(_) | Err(StoreError::NotFound(_)) => {
                    return Ok(UseRedemption::Invalid(format!(
                        "approval_id {id} is not a per-use approval of this registry"
                    )));
                }
                Err(e) => return Err(e),
            };
            let mismatch = if request.agent_id != binding.agent_id {
                Some("it was asked for another agent")
            } else if !request
                .subject
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case(&binding.subject))
            {
                Some("it was asked for another subject")
            } else if request.scopes != binding.scopes {
                Some("it was asked for another set of scopes")
            } else if request.audience != binding.audience {
                Some("it was asked for another audience")
            } else {
                None
            };
            let (outcome, verdict) = match (mismatch, request.status) {
                (Some(why), _) => (
                    "refused",
                    UseRedemption::Invalid(format!(
                        "approval {id} does not match this exchange: {why}"
                    )),
                ),
                (None, RequestStatus::Pending) if request.expires_at > now => {
                    ("pending", UseRedemption::Pending)
                }
                (None, RequestStatus::Denied) => ("denied", UseRedemption::Denied),
                (None, RequestStatus::Approved) if request.used_at.is_some() => (
                    "refused",
                    UseRedemption::Invalid(format!("approval {id} has already been used")),
                ),
                (None, RequestStatus::Approved) if request.expires_at > now => {
                    ("success", UseRedemption::Spent)
                }
                _ => (
                    "refused",
                    UseRedemption::Invalid(format!("approval {id} has expired")),
                ),
            };
            if verdict == UseRedemption::Spent {
                tx.execute(
                    "UPDATE access_requests SET used_at = ?1 WHERE id = ?2",
                    params![ts(now), id],
                )?;
            }
            // A pending retry is not worth an event each time; every other step is.
            if verdict != UseRedemption::Pending {
                let why = match &verdict {
                    UseRedemption::Invalid(m) => Some(m.clone()),
                    _ => None,
                };
                append_audit(
                    tx,
                    &actor,
                    "approval.use",
                    Some(&binding.agent_id),
                    outcome,
                    why.as_deref(),
                    &decision_details(&request, serde_json::json!({"approval_id": id})),
                )?;
            }
            Ok(verdict)
        })
    }
}
