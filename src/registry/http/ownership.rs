//! Ownership routes: the ranked owner candidates of an agent, clearing an owner (the undo of a
//! first owner), a person's leave with its succession, and the handover reminders of managers.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::Caller;
use super::error::{ApiError, ApiPath, ApiQuery, MaybeJson};
use super::{AppState, blocking, check_reason};
use crate::model::Agent;
use crate::model::api::{ActionReason, ApiErrorBody};
use crate::model::ownership::{Acknowledged, HandoverList, LeaveOutcome, OwnerCandidates};
use crate::model::text::{check_email, check_free_text};
use crate::registry::policy;
use crate::registry::service::ownership::MAX_CANDIDATES;
use crate::registry::store::{AgentFacts, StoreError, ownership};

#[derive(Deserialize, Debug, Default, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CandidateQuery {
    /// Narrow by email or name (case-insensitive substring).
    pub q: Option<String>,
    /// How many to return, 1 to 500 (default 50).
    pub limit: Option<u32>,
}

/// The people who may own the agent, ranked: its team first, then the previous owner's manager,
/// then the people who use it (subjects of its exchanges and delegations), then the rest. The
/// current owner is named and not offered; people who left are never offered. For those who
/// may change the agent's owner (admins).
#[utoipa::path(get, path = "/v1/agents/{id}/owner-candidates", tag = "agents",
    params(("id" = String, Path), CandidateQuery), security(("bearer" = [])),
    responses((status = 200, body = OwnerCandidates), (status = 403, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody)))]
pub async fn owner_candidates(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<CandidateQuery>,
) -> Result<Json<OwnerCandidates>, ApiError> {
    if let Some(q) = &query.q {
        check_free_text("q", q, 200)?;
    }
    let limit = match query.limit {
        None => 50,
        Some(n) if (1..=MAX_CANDIDATES as u32).contains(&n) => n as usize,
        Some(_) => {
            return Err(ApiError::invalid(
                "invalid_limit",
                format!("limit must be between 1 and {MAX_CANDIDATES}"),
            ));
        }
    };
    let person = caller.person;
    let facts = blocking(&state, move |s| {
        let detail = s
            .agent_detail(&id)?
            .ok_or_else(|| StoreError::NotFound(format!("no agent with id {id}")))?;
        policy::may_set_owner(
            &person,
            &AgentFacts {
                id: detail.agent.id.clone(),
                owner_email: detail.agent.owner.clone(),
                status: detail.agent.status,
            },
        )?;
        s.candidate_facts(&id, query.q.as_deref())
    })
    .await?;
    Ok(Json(ownership::ranked(facts, limit)))
}

/// Make the agent unowned again (admins; audited). Used to undo giving an unowned agent an
/// owner. Idempotent.
#[utoipa::path(delete, path = "/v1/agents/{id}/owner", tag = "agents",
    params(("id" = String, Path)), request_body = ActionReason, security(("bearer" = [])),
    responses((status = 200, body = Agent), (status = 403, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody), (status = 409, body = ApiErrorBody)))]
pub async fn clear_owner(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    MaybeJson(req): MaybeJson<ActionReason>,
) -> Result<Json<Agent>, ApiError> {
    check_reason(&req.reason)?;
    let actor = caller.actor();
    let person = caller.person;
    Ok(Json(
        blocking(&state, move |s| {
            s.clear_owner(&actor, &id, req.reason.as_deref(), &|f| {
                policy::may_set_owner(&person, f)
            })
        })
        .await?,
    ))
}

/// Mark a person as having left (admins): their tokens end, and each of their live agents goes
/// to their manager when they have an active one (audited, with a handover reminder to the
/// manager), else it stays orphaned (unowned work: `unowned=true` lists it, marked owner left).
#[utoipa::path(post, path = "/v1/people/{email}/leave", tag = "people",
    params(("email" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = LeaveOutcome), (status = 403, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody), (status = 409, body = ApiErrorBody),
        (status = 422, body = ApiErrorBody)))]
pub async fn leave(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(email): ApiPath<String>,
) -> Result<Json<LeaveOutcome>, ApiError> {
    if !policy::is_admin(&caller.person) {
        return Err(ApiError::forbidden(format!(
            "{} may not mark people as having left: it takes the admin role",
            caller.person.email
        )));
    }
    check_email(&email)?;
    if email.eq_ignore_ascii_case(&caller.person.email) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "you cannot mark yourself as having left",
        ));
    }
    let actor = caller.actor();
    Ok(Json(
        blocking(&state, move |s| s.leave(&actor, &email)).await?,
    ))
}

#[derive(Deserialize, Debug, Default, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HandoverQuery {
    /// Include acknowledged handovers too.
    pub all: Option<bool>,
}

/// Agents you inherited from people who left (your handover reminders), newest first; open
/// ones unless `all=true`.
#[utoipa::path(get, path = "/v1/me/handovers", tag = "people", params(HandoverQuery),
    security(("bearer" = [])), responses((status = 200, body = HandoverList)))]
pub async fn my_handovers(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<HandoverQuery>,
) -> Result<Json<HandoverList>, ApiError> {
    let email = caller.person.email;
    let all = query.all.unwrap_or(false);
    let handovers = blocking(&state, move |s| s.handovers(&email, all)).await?;
    Ok(Json(HandoverList { handovers }))
}

/// Mark your open handover reminders as seen.
#[utoipa::path(post, path = "/v1/me/handovers/acknowledge", tag = "people",
    security(("bearer" = [])), responses((status = 200, body = Acknowledged)))]
pub async fn acknowledge_handovers(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Acknowledged>, ApiError> {
    let actor = caller.actor();
    let email = caller.person.email;
    let acknowledged = blocking(&state, move |s| s.acknowledge_handovers(&actor, &email)).await?;
    Ok(Json(Acknowledged { acknowledged }))
}
