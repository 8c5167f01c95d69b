//! `/v1/me/delegations`: a person's explicit consent that an agent may act for them.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};

use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiPath};
use super::{AppState, blocking};
use crate::model::api::ApiErrorBody;
use crate::model::delegation::{CreateDelegation, Delegation, DelegationList, RevokedDelegation};
use crate::model::text::{check_line, check_scope};
use crate::registry::store::delegations::NewDelegation;

/// The longest a delegation may last.
pub const DELEGATION_MAX_DAYS: i64 = 365;
/// The most scopes one delegation may name.
pub const DELEGATION_MAX_SCOPES: usize = 50;

fn check(req: &CreateDelegation, now: DateTime<Utc>) -> Result<NewDelegation, ApiError> {
    check_line("agent_id", &req.agent_id, 128)?;
    if req.scopes.is_empty() || req.scopes.len() > DELEGATION_MAX_SCOPES {
        return Err(ApiError::invalid(
            "invalid_scopes",
            format!("a delegation names 1 to {DELEGATION_MAX_SCOPES} scopes"),
        ));
    }
    let mut scopes: Vec<String> = Vec::with_capacity(req.scopes.len());
    for scope in &req.scopes {
        check_scope(scope).map_err(|e| ApiError::invalid("invalid_scopes", e.0))?;
        if !scopes.contains(scope) {
            scopes.push(scope.clone());
        }
    }
    if req.expires_at <= now {
        return Err(ApiError::invalid(
            "invalid_expiry",
            "expires_at must be in the future",
        ));
    }
    if req.expires_at > now + Duration::days(DELEGATION_MAX_DAYS) {
        return Err(ApiError::invalid(
            "invalid_expiry",
            format!("a delegation lasts at most {DELEGATION_MAX_DAYS} days"),
        ));
    }
    Ok(NewDelegation {
        agent_id: req.agent_id.clone(),
        scopes,
        expires_at: req.expires_at,
    })
}

/// Let an agent act for me with these scopes until `expires_at`. Only I can consent for me:
/// there is no route to delegate for someone else.
#[utoipa::path(post, path = "/v1/me/delegations", tag = "people", request_body = CreateDelegation,
    security(("bearer" = [])),
    responses((status = 201, body = Delegation), (status = 401, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody), (status = 409, body = ApiErrorBody),
        (status = 422, body = ApiErrorBody)))]
pub async fn create_delegation(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<CreateDelegation>,
) -> Result<(StatusCode, Json<Delegation>), ApiError> {
    let new = check(&req, state.store.clock().now())?;
    // Consent names scopes that exist: a scope outside the catalogue can never be granted.
    let asked = new.scopes.clone();
    let known = blocking(&state, move |s| s.scope_catalogue(&asked)).await?;
    if let Some(unknown) = new
        .scopes
        .iter()
        .find(|s| !known.iter().any(|k| &k.scope == *s))
    {
        return Err(ApiError::invalid(
            "unknown_scope",
            format!("{unknown} is not in the catalogue; a delegation names catalogued scopes"),
        ));
    }
    let actor = caller.actor();
    let email = caller.person.email;
    let created = blocking(&state, move |s| {
        s.create_delegation(&actor, &email, &new, s.clock().now())
    })
    .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// My delegations, newest first (active, expired and revoked).
#[utoipa::path(get, path = "/v1/me/delegations", tag = "people", security(("bearer" = [])),
    responses((status = 200, body = DelegationList), (status = 401, body = ApiErrorBody)))]
pub async fn list_delegations(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<DelegationList>, ApiError> {
    let email = caller.person.email;
    let delegations = blocking(&state, move |s| s.delegations_of(&email, s.clock().now())).await?;
    Ok(Json(DelegationList { delegations }))
}

/// Withdraw one of my delegations: every live token exchanged under it dies at once.
/// Idempotent.
#[utoipa::path(delete, path = "/v1/me/delegations/{id}", tag = "people",
    params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = RevokedDelegation), (status = 401, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody)))]
pub async fn revoke_delegation(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<RevokedDelegation>, ApiError> {
    let actor = caller.actor();
    let email = caller.person.email;
    Ok(Json(
        blocking(&state, move |s| {
            s.revoke_delegation(&actor, &email, &id, s.clock().now())
        })
        .await?,
    ))
}
