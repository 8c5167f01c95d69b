//! Access requests (`/v1/agents/{id}/requests`) and the approver's queue (`/v1/approvals`).
//! Who may decide what is `registry::service::approvals`; these routes parse and answer.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiPath, ApiQuery, MaybeJson};
use super::{AppState, blocking, check_reason};
use crate::model::api::ApiErrorBody;
use crate::model::approvals::{
    AccessRequest, CreateRequest, Decide, RequestKind, RequestList, RequestQuery, RequestStatus,
};
use crate::model::catalogue::parse_duration;
use crate::model::text::{check_free_text, check_scope};
use crate::registry::policy;
use crate::registry::service::approvals::Voter;
use crate::registry::store::approvals::{NewGrantRequest, RequestFilter};

fn voter(caller: &Caller) -> Voter {
    Voter {
        email: caller.person.email.clone(),
        admin: policy::is_admin(&caller.person),
    }
}

fn parse_kind(kind: &Option<String>) -> Result<Option<RequestKind>, ApiError> {
    kind.as_deref()
        .map(|k| {
            RequestKind::parse(k).ok_or_else(|| {
                ApiError::invalid("invalid_query", format!("kind {k:?} is not grant or use"))
            })
        })
        .transpose()
}

/// Ask for a scope for an agent (its owner or an admin). Low-tier scopes are granted at once;
/// others wait for their approvers.
#[utoipa::path(post, path = "/v1/agents/{id}/requests", tag = "approvals",
    params(("id" = String, Path)), request_body = CreateRequest, security(("bearer" = [])),
    responses((status = 201, body = AccessRequest), (status = 403, body = ApiErrorBody),
        (status = 409, body = ApiErrorBody), (status = 422, body = ApiErrorBody)))]
pub async fn create_request(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<CreateRequest>,
) -> Result<(StatusCode, Json<AccessRequest>), ApiError> {
    check_scope(&req.scope)?;
    check_free_text("justification", &req.justification, 1000)?;
    if req.justification.trim().is_empty() {
        return Err(ApiError::invalid(
            "justification_required",
            "say why the agent needs this scope (justification)",
        ));
    }
    let duration_secs = req
        .duration
        .as_deref()
        .map(parse_duration)
        .transpose()
        .map_err(|e| ApiError::invalid("invalid_duration", e))?;
    let new = NewGrantRequest {
        agent_id: id,
        scope: req.scope,
        justification: Some(req.justification),
        duration_secs,
    };
    let actor = caller.actor();
    let person = caller.person;
    let request = blocking(&state, move |s| {
        s.request_grant(&actor, &new, s.clock().now(), &|f| {
            policy::may_manage_agent(&person, f)
        })
    })
    .await?;
    Ok((StatusCode::CREATED, Json(request)))
}

/// An agent's requests and per-use approvals, newest first (whoever may read the agent).
#[utoipa::path(get, path = "/v1/agents/{id}/requests", tag = "approvals",
    params(("id" = String, Path), RequestQuery), security(("bearer" = [])),
    responses((status = 200, body = RequestList), (status = 403, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody)))]
pub async fn agent_requests(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<RequestQuery>,
) -> Result<Json<RequestList>, ApiError> {
    let wanted = id.clone();
    let detail = blocking(&state, move |s| s.agent_detail(&wanted))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no agent with id {id}")))?;
    policy::may_read_agent(
        &caller.person,
        &crate::registry::store::AgentFacts {
            id: detail.agent.id.clone(),
            owner_email: detail.agent.owner.clone(),
            status: detail.agent.status,
        },
    )?;
    let status = match query.status.as_deref() {
        None | Some("all") => None,
        Some(s) => Some(RequestStatus::parse(s).ok_or_else(|| {
            ApiError::invalid(
                "invalid_query",
                format!("status {s:?} is not pending, approved, denied, expired or all"),
            )
        })?),
    };
    let filter = RequestFilter {
        agent_id: Some(id),
        status,
        kind: parse_kind(&query.kind)?,
    };
    let requests = blocking(&state, move |s| s.list_requests(&filter)).await?;
    Ok(Json(RequestList { requests }))
}

/// What waits for me: pending requests and per-use approvals I may decide, newest first.
#[utoipa::path(get, path = "/v1/approvals", tag = "approvals", params(RequestQuery),
    security(("bearer" = [])),
    responses((status = 200, body = RequestList), (status = 401, body = ApiErrorBody)))]
pub async fn list_approvals(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<RequestQuery>,
) -> Result<Json<RequestList>, ApiError> {
    if query.status.as_deref().is_some_and(|s| s != "pending") {
        return Err(ApiError::invalid(
            "invalid_query",
            "the approvals queue holds pending requests only; see GET /v1/agents/{id}/requests",
        ));
    }
    let kind = parse_kind(&query.kind)?;
    let voter = voter(&caller);
    let requests = blocking(&state, move |s| {
        let mut requests = s.approval_queue(&voter, kind, s.clock().now())?;
        // Whoever may decide a request sees the agent's grants beside it (one read per agent).
        let mut seen: std::collections::HashMap<String, Option<Vec<crate::model::Grant>>> =
            std::collections::HashMap::new();
        for r in &mut requests {
            if !seen.contains_key(&r.agent_id) {
                let grants = s.agent_detail(&r.agent_id)?.map(|d| d.agent.grants);
                seen.insert(r.agent_id.clone(), grants);
            }
            r.agent_grants = seen[&r.agent_id].clone();
        }
        Ok(requests)
    })
    .await?;
    Ok(Json(RequestList { requests }))
}

/// Approve a request or a per-use approval. The last approval a request needs grants it.
#[utoipa::path(post, path = "/v1/approvals/{id}/approve", tag = "approvals",
    params(("id" = String, Path)), request_body = Decide, security(("bearer" = [])),
    responses((status = 200, body = AccessRequest), (status = 403, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody), (status = 409, body = ApiErrorBody)))]
pub async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    MaybeJson(body): MaybeJson<Decide>,
) -> Result<Json<AccessRequest>, ApiError> {
    check_reason(&body.reason)?;
    let actor = caller.actor();
    let voter = voter(&caller);
    Ok(Json(
        blocking(&state, move |s| {
            s.approve_request(&actor, &id, &voter, body.reason.as_deref(), s.clock().now())
        })
        .await?,
    ))
}

/// Deny a request or a per-use approval, with a reason.
#[utoipa::path(post, path = "/v1/approvals/{id}/deny", tag = "approvals",
    params(("id" = String, Path)), request_body = Decide, security(("bearer" = [])),
    responses((status = 200, body = AccessRequest), (status = 403, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody), (status = 409, body = ApiErrorBody),
        (status = 422, body = ApiErrorBody)))]
pub async fn deny(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    MaybeJson(body): MaybeJson<Decide>,
) -> Result<Json<AccessRequest>, ApiError> {
    check_reason(&body.reason)?;
    let reason = body
        .reason
        .filter(|r| !r.trim().is_empty())
        .ok_or_else(|| ApiError::invalid("reason_required", "a denial needs a reason"))?;
    let actor = caller.actor();
    let voter = voter(&caller);
    Ok(Json(
        blocking(&state, move |s| {
            s.deny_request(&actor, &id, &voter, &reason, s.clock().now())
        })
        .await?,
    ))
}
