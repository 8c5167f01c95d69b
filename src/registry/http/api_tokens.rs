//! API-token lineage: list one's tokens (or, for admins, someone's), revoke them all.

use axum::Json;
use axum::extract::State;

use super::auth::Caller;
use super::error::{ApiError, ApiPath};
use super::{AppState, blocking};
use crate::model::api::ApiErrorBody;
use crate::model::delegation::{ApiTokenList, RevokedApiTokens};
use crate::registry::policy;

/// My API tokens and invitations (id, label, created, expires, last used, parent; never the
/// secret or its hash).
#[utoipa::path(get, path = "/v1/me/tokens", tag = "people", security(("bearer" = [])),
    responses((status = 200, body = ApiTokenList), (status = 401, body = ApiErrorBody)))]
pub async fn list_my_tokens(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<ApiTokenList>, ApiError> {
    let email = caller.person.email;
    let wanted = email.clone();
    let tokens = blocking(&state, move |s| s.api_tokens_of(&wanted)).await?;
    Ok(Json(ApiTokenList {
        person: email,
        tokens,
    }))
}

/// Revoke every one of my API tokens (the one making this call included), every token they
/// minted and every live person token or exchange that came from them: "sign out everywhere".
#[utoipa::path(delete, path = "/v1/me/tokens", tag = "people", security(("bearer" = [])),
    responses((status = 200, body = RevokedApiTokens), (status = 401, body = ApiErrorBody)))]
pub async fn revoke_all_my_tokens(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<RevokedApiTokens>, ApiError> {
    let actor = caller.actor();
    let email = caller.person.email;
    Ok(Json(
        blocking(&state, move |s| s.revoke_all_api_tokens(&actor, &email)).await?,
    ))
}

/// A person's API tokens and invitations (admins).
#[utoipa::path(get, path = "/v1/people/{email}/tokens", tag = "people",
    params(("email" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = ApiTokenList), (status = 403, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody)))]
pub async fn list_person_tokens(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(email): ApiPath<String>,
) -> Result<Json<ApiTokenList>, ApiError> {
    if !policy::is_admin(&caller.person) {
        return Err(ApiError::forbidden(format!(
            "{} may not list another person's tokens: it takes the admin role",
            caller.person.email
        )));
    }
    let wanted = email.clone();
    let tokens = blocking(&state, move |s| s.api_tokens_of(&wanted)).await?;
    Ok(Json(ApiTokenList {
        person: email,
        tokens,
    }))
}
