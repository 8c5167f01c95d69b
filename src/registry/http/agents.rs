//! `/v1/agents`: the inventory and the governance verbs on one agent.

use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::Datelike;

use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiPath, ApiQuery, MaybeJson};
use super::{AppState, blocking, check_reason};
use crate::model::api::{
    ActionReason, AddGrant, AgentPage, AgentQuery, ApiErrorBody, AuditPage, AuditQuery,
    DecommissionOutcome, DecommissionPlan, RegisterAgent, RevokeOutcome, SetOwner,
};
use crate::model::brake::{ReinstateOutcome, ReinstateRequest};
use crate::model::text::{check_email, check_free_text, check_line, check_scope};
use crate::model::{Agent, AgentDetail};
use crate::registry::policy;
use crate::registry::service;
use crate::registry::store::AgentFacts;

fn facts_of(detail: &AgentDetail) -> AgentFacts {
    AgentFacts {
        id: detail.agent.id.clone(),
        owner_email: detail.agent.owner.clone(),
        status: detail.agent.status,
    }
}

/// List and search agents. People without a role see only the agents they own.
#[utoipa::path(get, path = "/v1/agents", tag = "agents", params(AgentQuery),
    security(("bearer" = [])),
    responses((status = 200, body = AgentPage), (status = 401, body = ApiErrorBody),
        (status = 503, body = ApiErrorBody, description = "Too many large reads at once (`busy`); wait `Retry-After` seconds")))]
pub async fn list_agents(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<AgentQuery>,
) -> Result<Json<AgentPage>, ApiError> {
    if let Some(q) = &query.q {
        check_free_text("q", q, 200)?;
    }
    let visibility = policy::visibility(&caller.person);
    let _turn = super::large_read_turn(&state, query.limit.unwrap_or(200)).await?;
    Ok(Json(
        blocking(&state, move |s| s.list_agents(&query, &visibility)).await?,
    ))
}

/// Register an agent. A person registers agents they own; an admin registers any, owned or not.
#[utoipa::path(post, path = "/v1/agents", tag = "agents", request_body = RegisterAgent,
    security(("bearer" = [])),
    responses((status = 201, body = Agent), (status = 403, body = ApiErrorBody),
        (status = 409, body = ApiErrorBody), (status = 422, body = ApiErrorBody)))]
pub async fn register_agent(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<RegisterAgent>,
) -> Result<(StatusCode, Json<Agent>), ApiError> {
    check_line("name", &req.name, 128)?;
    check_free_text("description", &req.description, 2000)?;
    if let Some(team) = &req.team {
        check_line("team", team, 64)?;
    }
    if let Some(env) = &req.environment {
        check_line("environment", env, 64)?;
    }
    if let Some(owner) = &req.owner {
        check_email(owner)?;
    }
    if req.scopes.len() > 200 {
        return Err(ApiError::invalid(
            "too_many_scopes",
            "an agent may be registered with at most 200 scopes",
        ));
    }
    for scope in &req.scopes {
        check_scope(scope)?;
    }
    service::agents::may_register(&caller.person, &req)?;
    if let Some(parent_id) = req.parent_id.clone() {
        let parent = blocking(&state, move |s| s.agent_detail(&parent_id))
            .await?
            .ok_or_else(|| {
                ApiError::invalid("unknown_parent", "the parent agent does not exist")
            })?;
        // A parent the caller may not see is answered like one that does not exist.
        policy::may_manage_agent(&caller.person, &facts_of(&parent)).map_err(|e| match e {
            crate::registry::store::StoreError::NotFound(_) => {
                ApiError::invalid("unknown_parent", "the parent agent does not exist")
            }
            other => ApiError::from(other),
        })?;
    }
    let actor = caller.actor();
    let agent = blocking(&state, move |s| s.register_agent(&actor, &req)).await?;
    Ok((StatusCode::CREATED, Json(agent)))
}

pub(super) async fn visible_detail(
    state: &AppState,
    caller: &Caller,
    id: String,
) -> Result<AgentDetail, ApiError> {
    let detail = blocking(state, {
        let id = id.clone();
        move |s| s.agent_detail(&id)
    })
    .await?
    .ok_or_else(|| ApiError::not_found(format!("no agent with id {id}")))?;
    policy::may_read_agent(&caller.person, &facts_of(&detail))?;
    Ok(detail)
}

/// One agent with its grants, credentials, parent and children.
#[utoipa::path(get, path = "/v1/agents/{id}", tag = "agents", params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = AgentDetail), (status = 403, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody)))]
pub async fn show_agent(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<AgentDetail>, ApiError> {
    let mut detail = visible_detail(&state, &caller, id).await?;
    detail.may = Some(policy::agent_actions(&caller.person, &facts_of(&detail)));
    if !detail.agent.flags.is_empty() {
        let query = crate::model::flag::FlagQuery {
            agent: Some(detail.agent.id.clone()),
            state: Some("unresolved".into()),
            ..Default::default()
        };
        detail.open_flags = blocking(&state, move |s| {
            s.list_flags(&query, &crate::registry::store::Visibility::All)
        })
        .await?;
    }
    Ok(Json(detail))
}

/// The audit events about one agent, for anyone who may read the agent.
#[utoipa::path(get, path = "/v1/agents/{id}/audit", tag = "agents",
    params(("id" = String, Path), AuditQuery), security(("bearer" = [])),
    responses((status = 200, body = AuditPage), (status = 403, body = ApiErrorBody)))]
pub async fn agent_audit(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(mut query): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    visible_detail(&state, &caller, id.clone()).await?;
    query.target = Some(id);
    Ok(Json(blocking(&state, move |s| s.audit_page(&query)).await?))
}

/// Grant a catalogued `low` or `medium` scope directly (admins, never to an agent they own).
/// Everything else, and every owner, goes through an access request.
#[utoipa::path(post, path = "/v1/agents/{id}/grants", tag = "agents",
    params(("id" = String, Path)), request_body = AddGrant, security(("bearer" = [])),
    responses((status = 201, body = Agent), (status = 403, body = ApiErrorBody),
        (status = 409, body = ApiErrorBody), (status = 422, body = ApiErrorBody)))]
pub async fn add_grant(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<AddGrant>,
) -> Result<(StatusCode, Json<Agent>), ApiError> {
    check_scope(&req.scope)?;
    if let Some(j) = &req.justification {
        check_free_text("justification", j, 1000)?;
    }
    let now = state.store.clock().now();
    if req.expires_at.is_some_and(|t| t <= now) {
        return Err(ApiError::invalid(
            "invalid_expiry",
            "expires_at must be in the future",
        ));
    }
    if req.expires_at.is_some_and(|t| t.year() > 9999) {
        // Stored times are RFC 3339, which has four-digit years.
        return Err(ApiError::invalid(
            "invalid_expiry",
            "expires_at must be before the year 10000",
        ));
    }
    service::agents::may_grant_directly(&caller.person, &id)?;
    let wanted = vec![req.scope.clone()];
    let info = blocking(&state, move |s| s.scope_catalogue(&wanted))
        .await?
        .pop();
    let grant = service::agents::direct_grant(&caller.person, &id, info.as_ref(), req, now)?;
    let actor = caller.actor();
    let person = caller.person;
    let agent = blocking(&state, move |s| {
        s.add_grant(&actor, &id, &grant, &|f| {
            policy::may_manage_agent(&person, f)?;
            policy::may_grant_directly(&person, f)
        })
    })
    .await?;
    Ok((StatusCode::CREATED, Json(agent)))
}

/// Remove a scope (the owner or an admin).
#[utoipa::path(delete, path = "/v1/agents/{id}/grants/{scope}", tag = "agents",
    params(("id" = String, Path), ("scope" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = Agent), (status = 404, body = ApiErrorBody)))]
pub async fn remove_grant(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, scope)): ApiPath<(String, String)>,
) -> Result<Json<Agent>, ApiError> {
    let actor = caller.actor();
    let person = caller.person;
    Ok(Json(
        blocking(&state, move |s| {
            service::agents::act::remove_grant(s, &person, &actor, &id, &scope)
        })
        .await?,
    ))
}

/// Assign or change the owner (admins).
#[utoipa::path(put, path = "/v1/agents/{id}/owner", tag = "agents",
    params(("id" = String, Path)), request_body = SetOwner, security(("bearer" = [])),
    responses((status = 200, body = Agent), (status = 403, body = ApiErrorBody),
        (status = 409, body = ApiErrorBody), (status = 422, body = ApiErrorBody)))]
pub async fn set_owner(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<SetOwner>,
) -> Result<Json<Agent>, ApiError> {
    check_email(&req.owner)?;
    check_reason(&req.reason)?;
    let actor = caller.actor();
    let person = caller.person;
    Ok(Json(
        blocking(&state, move |s| {
            service::agents::act::set_owner(
                s,
                &person,
                &actor,
                &id,
                &req.owner,
                req.reason.as_deref(),
            )
        })
        .await?,
    ))
}

/// Revoke at once: suspend, disable every credential, kill live tokens. Idempotent.
#[utoipa::path(post, path = "/v1/agents/{id}/revoke", tag = "agents",
    params(("id" = String, Path)), request_body = ActionReason, security(("bearer" = [])),
    responses((status = 200, body = RevokeOutcome), (status = 403, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody)))]
pub async fn revoke_agent(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    MaybeJson(body): MaybeJson<ActionReason>,
) -> Result<Json<RevokeOutcome>, ApiError> {
    let started = Instant::now();
    let reason = body.reason;
    check_reason(&reason)?;
    let actor = caller.actor();
    let person = caller.person;
    let by = person.email.clone();
    let agent_id = id.clone();
    let revoked = blocking(&state, move |s| {
        service::agents::act::revoke(s, &person, &actor, &agent_id, reason.as_deref())
    })
    .await?;
    if revoked.changed {
        // The brake stops the whole tree: each agent it acted on is an activity event.
        record_events(
            &state,
            crate::registry::behaviour::brake_events(
                state.store.clock().now(),
                &id,
                &revoked.stopped,
                &by,
                "revoked",
            ),
        );
    }
    Ok(Json(RevokeOutcome {
        agent_id: id,
        previous_status: revoked.previous_status,
        status: revoked.agent.status,
        changed: revoked.changed,
        credentials_disabled: revoked.credentials_disabled,
        tokens_revoked: revoked.tokens_revoked,
        audit_seq: revoked.audit_seq,
        elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
        agent: revoked.agent,
        stopped: revoked.stopped,
        latest_token_expiry: revoked.latest_token_expiry,
    }))
}

/// Reinstate a suspended agent (admins and responders): the agent alone by default, or with
/// `subtree` every suspended sub-agent and instance under it too. Credentials stay disabled.
#[utoipa::path(post, path = "/v1/agents/{id}/reinstate", tag = "agents",
    params(("id" = String, Path)), request_body = ReinstateRequest, security(("bearer" = [])),
    responses((status = 200, body = ReinstateOutcome), (status = 403, body = ApiErrorBody),
        (status = 409, body = ApiErrorBody)))]
pub async fn reinstate_agent(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    MaybeJson(body): MaybeJson<ReinstateRequest>,
) -> Result<Json<ReinstateOutcome>, ApiError> {
    let reason = body.reason;
    let subtree = body.subtree;
    check_reason(&reason)?;
    let actor = caller.actor();
    let person = caller.person;
    let done = blocking(&state, move |s| {
        service::agents::act::reinstate(s, &person, &actor, &id, reason.as_deref(), subtree)
    })
    .await?;
    Ok(Json(ReinstateOutcome {
        agent: done.agent,
        subtree,
        reinstated: done.reinstated,
        still_suspended: done.still_suspended,
    }))
}

/// What decommissioning would do (the agent's subtree, grants, credentials), changing nothing.
#[utoipa::path(get, path = "/v1/agents/{id}/decommission", tag = "agents",
    params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = DecommissionPlan), (status = 403, body = ApiErrorBody)))]
pub async fn decommission_plan(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<DecommissionPlan>, ApiError> {
    let person = caller.person;
    Ok(Json(
        blocking(&state, move |s| {
            service::agents::act::decommission_plan(s, &person, &id)
        })
        .await?,
    ))
}

/// Decommission: revoke, remove grants, disable credentials, close open review items,
/// cascading to sub-agents and instances; for a non-admin the cascade stops at agents owned by
/// someone else (listed in `skipped`). The records stay for audit. The owner or an admin.
#[utoipa::path(post, path = "/v1/agents/{id}/decommission", tag = "agents",
    params(("id" = String, Path)), request_body = ActionReason, security(("bearer" = [])),
    responses((status = 200, body = DecommissionOutcome), (status = 403, body = ApiErrorBody)))]
pub async fn decommission_agent(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    MaybeJson(body): MaybeJson<ActionReason>,
) -> Result<Json<DecommissionOutcome>, ApiError> {
    let started = Instant::now();
    let reason = body.reason;
    check_reason(&reason)?;
    let actor = caller.actor();
    let person = caller.person;
    let by = person.email.clone();
    let mut outcome = blocking(&state, move |s| {
        service::agents::act::decommission(s, &person, &actor, &id, reason.as_deref())
    })
    .await?;
    record_revoke(&state, &outcome.decommissioned, &by, "decommissioned");
    outcome.elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok(Json(outcome))
}

/// Revocations and decommissions enter the activity record (registry/behaviour) once done.
fn record_revoke(state: &AppState, agents: &[String], by: &str, what: &str) {
    let now = state.store.clock().now();
    record_events(
        state,
        agents
            .iter()
            .map(|id| crate::registry::behaviour::revoke_event(now, id, by, what))
            .collect(),
    );
}

/// Queues activity events without waiting (a full queue drops and counts them).
fn record_events(state: &AppState, events: Vec<crate::model::activity::ActivityEvent>) {
    if let Some(b) = state.tokens.behaviour() {
        for e in events {
            b.observe(e, None);
        }
    }
}
