//! `/v1/resources/{id}/credentials`: the keys and secrets with which a catalogued resource's
//! servers authenticate to the registry (to introspect tokens addressed to it). Admins only:
//! a resource credential reads the claims of every token for that resource.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiPath};
use super::oauth::new_credential;
use super::{AppState, blocking};
use crate::model::Credential;
use crate::model::api::ApiErrorBody;
use crate::model::tokens::{AddCredential, AddedCredential};
use crate::registry::policy;

fn require_admin(caller: &Caller) -> Result<(), ApiError> {
    if policy::is_admin(&caller.person) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "{} may not manage resource credentials: it takes the admin role",
            caller.person.email
        )))
    }
}

/// Register a credential for a resource (admins; audited): an Ed25519 public key (JWK or
/// PEM), or a static secret, generated here and shown once.
#[utoipa::path(post, path = "/v1/resources/{id}/credentials", tag = "catalogue",
    params(("id" = String, Path)), request_body = AddCredential, security(("bearer" = [])),
    responses((status = 201, body = AddedCredential), (status = 403, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody), (status = 409, body = ApiErrorBody),
        (status = 422, body = ApiErrorBody)))]
pub async fn add_resource_credential(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<AddCredential>,
) -> Result<(StatusCode, Json<AddedCredential>), ApiError> {
    require_admin(&caller)?;
    let (credential, secret) = new_credential(&req)?;
    let actor = caller.actor();
    let stored = blocking(&state, move |s| {
        s.add_resource_credential(&actor, &id, &credential)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(AddedCredential {
            credential: stored,
            secret,
        }),
    ))
}

/// Disable one of a resource's credentials (admins; audited). Disabling a disabled one changes
/// nothing.
#[utoipa::path(post, path = "/v1/resources/{id}/credentials/{credential_id}/disable",
    tag = "catalogue", params(("id" = String, Path), ("credential_id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = Credential), (status = 403, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody)))]
pub async fn disable_resource_credential(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, credential_id)): ApiPath<(String, String)>,
) -> Result<Json<Credential>, ApiError> {
    require_admin(&caller)?;
    let actor = caller.actor();
    Ok(Json(
        blocking(&state, move |s| {
            s.disable_resource_credential(&actor, &id, &credential_id)
        })
        .await?,
    ))
}
