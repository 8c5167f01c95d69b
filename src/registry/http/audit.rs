//! `/v1/audit` and `/v1/changes`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiPath, ApiQuery};
use super::{AppState, blocking};
use crate::model::ActorKind;
use crate::model::api::{
    AddNote, ApiErrorBody, AuditPage, AuditQuery, AuditVerification, ChangeFeed, ChangesQuery,
};
use crate::model::text::check_free_text;
use crate::model::timeline::{MAX_TIMELINE_PAGE, TimelinePage, TimelineQuery, decode_cursor};
use crate::model::witness::AuditHead;
use crate::registry::policy;
use crate::registry::store::timeline::TimelineFilter;

fn require_audit_reader(caller: &Caller) -> Result<(), ApiError> {
    if policy::may_read_audit(&caller.person) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "{} may not read the audit log: it takes the admin, auditor or responder role",
            caller.person.email
        )))
    }
}

/// Read the audit log in sequence order (admins, auditors, responders).
#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(AuditQuery),
    security(("bearer" = [])),
    responses((status = 200, body = AuditPage), (status = 403, body = ApiErrorBody),
        (status = 503, body = ApiErrorBody, description = "Too many large reads at once (`busy`); wait `Retry-After` seconds")))]
pub async fn list_audit(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    require_audit_reader(&caller)?;
    let _turn = super::large_read_turn(&state, query.limit.unwrap_or(500)).await?;
    Ok(Json(blocking(&state, move |s| s.audit_page(&query)).await?))
}

/// The audit head (last sequence and hash): what consoles and `steward audit verify` witness, so
/// that a later verify notices a chain cut short or rewritten (admins, auditors, responders).
#[utoipa::path(get, path = "/v1/audit/head", tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = AuditHead), (status = 403, body = ApiErrorBody)))]
pub async fn audit_head(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<AuditHead>, ApiError> {
    require_audit_reader(&caller)?;
    Ok(Json(blocking(&state, move |s| s.audit_head()).await?))
}

/// Verify the whole hash chain on the server. (`steward audit verify` also re-checks it locally.)
#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit", security(("bearer" = [])),
    responses((status = 200, body = AuditVerification), (status = 403, body = ApiErrorBody),
        (status = 503, body = ApiErrorBody, description = "Too many large reads at once (`busy`); wait `Retry-After` seconds")))]
pub async fn verify_audit(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<AuditVerification>, ApiError> {
    require_audit_reader(&caller)?;
    // The whole chain: always a large read.
    let _turn = super::large_read_turn(&state, u32::MAX).await?;
    Ok(Json(blocking(&state, move |s| s.audit_verify()).await?))
}

/// Append a note to an event, such as an incident reference after a revocation. Anyone who
/// wrote the event, and admins and responders, may annotate it.
#[utoipa::path(post, path = "/v1/audit/{seq}/notes", tag = "audit",
    params(("seq" = i64, Path)), request_body = AddNote, security(("bearer" = [])),
    responses((status = 201, body = i64, content_type = "application/json"),
        (status = 403, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
pub async fn add_note(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(seq): ApiPath<i64>,
    ApiJson(req): ApiJson<AddNote>,
) -> Result<(StatusCode, Json<i64>), ApiError> {
    check_free_text("text", &req.text, 1000)?;
    if req.text.trim().is_empty() {
        return Err(ApiError::invalid("invalid_text", "text must not be empty"));
    }
    if seq < 1 {
        // Sequence numbers start at 1 (and `seq - 1` below must not overflow).
        return Err(ApiError::not_found(format!("no audit event {seq}")));
    }
    let privileged =
        policy::is_admin(&caller.person) || caller.person.has_role(crate::model::Role::Responder);
    if !privileged {
        let query = AuditQuery {
            after: Some(seq - 1),
            limit: Some(1),
            ..Default::default()
        };
        let page = blocking(&state, move |s| s.audit_page(&query)).await?;
        let event = page
            .events
            .into_iter()
            .find(|e| e.seq == seq)
            .ok_or_else(|| ApiError::not_found(format!("no audit event {seq}")))?;
        if event.actor.id != caller.person.email {
            return Err(ApiError::forbidden(format!(
                "{} may annotate only their own audit events",
                caller.person.email
            )));
        }
    }
    let actor = caller.actor();
    let note = blocking(&state, move |s| s.add_audit_note(&actor, seq, &req.text)).await?;
    Ok((StatusCode::CREATED, Json(note)))
}

/// Everything that changed after a cursor, for a console's local cache. People without a role
/// receive their own agents only, and the ids of agents they can no longer see.
#[utoipa::path(get, path = "/v1/changes", tag = "audit", params(ChangesQuery),
    security(("bearer" = [])), responses((status = 200, body = ChangeFeed),
        (status = 503, body = ApiErrorBody, description = "Too many large reads at once (`busy`); wait `Retry-After` seconds")))]
pub async fn changes(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ChangesQuery>,
) -> Result<Json<ChangeFeed>, ApiError> {
    let visibility = policy::visibility(&caller.person);
    let after = query.after.unwrap_or(0);
    let limit = query.limit.unwrap_or(1000);
    let _turn = super::large_read_turn(&state, limit).await?;
    Ok(Json(
        blocking(&state, move |s| s.changes(after, limit, &visibility)).await?,
    ))
}

/// The activity and audit timeline, newest first: governance events and (with
/// `include_exchanges`) token exchanges, each with its actor kind, who, on whose behalf (the
/// delegation chain, newest actor last) and what. Admins, auditors and responders read
/// everything; anyone else only with `agent` naming an agent they may read (404 otherwise).
#[utoipa::path(get, path = "/v1/audit/timeline", tag = "audit", params(TimelineQuery),
    security(("bearer" = [])),
    responses((status = 200, body = TimelinePage), (status = 403, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody), (status = 422, body = ApiErrorBody),
        (status = 503, body = ApiErrorBody, description = "Too many large reads at once (`busy`); wait `Retry-After` seconds")))]
pub async fn timeline(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<TimelineQuery>,
) -> Result<Json<TimelinePage>, ApiError> {
    let filter = timeline_filter(&query)?;
    match &filter.agent {
        // Anyone who may read the agent; a caller who may not learns nothing (404).
        Some(id) => {
            super::agents::visible_detail(&state, &caller, id.clone()).await?;
        }
        None => require_audit_reader(&caller)?,
    }
    let _turn = super::large_read_turn(&state, filter.limit).await?;
    Ok(Json(blocking(&state, move |s| s.timeline(&filter)).await?))
}

/// Checks the query's values: a clear 422 for each one that is wrong.
fn timeline_filter(q: &TimelineQuery) -> Result<TimelineFilter, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_TIMELINE_PAGE).contains(&limit) {
        return Err(ApiError::invalid(
            "invalid_limit",
            format!("limit must be 1 to {MAX_TIMELINE_PAGE}"),
        ));
    }
    let actor_kind = match q.actor_kind.as_deref().filter(|k| !k.is_empty()) {
        None => None,
        Some(k) => Some(ActorKind::parse(k).ok_or_else(|| {
            ApiError::invalid(
                "invalid_actor_kind",
                format!("actor_kind must be human, agent or system, not {k:?}"),
            )
        })?),
    };
    let before = match q.before.as_deref().filter(|b| !b.is_empty()) {
        None => None,
        Some(b) => Some(decode_cursor(b).ok_or_else(|| {
            ApiError::invalid(
                "invalid_cursor",
                "before must be the `next` value of a previous timeline page",
            )
        })?),
    };
    if let Some(text) = &q.q {
        check_free_text("q", text, 200)?;
    }
    if let Some(agent) = &q.agent {
        check_free_text("agent", agent, 200)?;
    }
    Ok(TimelineFilter {
        agent: q.agent.clone().filter(|a| !a.is_empty()),
        include_exchanges: q.include_exchanges.unwrap_or(false),
        actor_kind,
        text: q
            .q
            .as_deref()
            .map(|t| t.trim().to_lowercase())
            .filter(|t| !t.is_empty()),
        before,
        limit,
    })
}
