//! Re-enabling an agent's credential: the one way back for a key a revoke disabled.

use axum::Json;
use axum::extract::State;

use super::auth::Caller;
use super::error::{ApiError, ApiPath, MaybeJson};
use super::{AppState, blocking, check_reason};
use crate::model::Credential;
use crate::model::api::ApiErrorBody;
use crate::model::brake::EnableCredential;
use crate::registry::policy;

/// Re-enable a disabled credential of an active agent (admins and responders; audited). An
/// owner cannot undo a responder's brake; a suspended agent must be reinstated first.
/// Enabling an enabled credential changes nothing.
#[utoipa::path(post, path = "/v1/agents/{id}/credentials/{credential_id}/enable", tag = "tokens",
    params(("id" = String, Path), ("credential_id" = String, Path)),
    request_body = EnableCredential, security(("bearer" = [])),
    responses((status = 200, body = Credential), (status = 403, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody), (status = 409, body = ApiErrorBody)))]
pub async fn enable_credential(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, credential_id)): ApiPath<(String, String)>,
    MaybeJson(body): MaybeJson<EnableCredential>,
) -> Result<Json<Credential>, ApiError> {
    check_reason(&body.reason)?;
    let actor = caller.actor();
    let person = caller.person;
    Ok(Json(
        blocking(&state, move |s| {
            s.enable_credential(&actor, &id, &credential_id, body.reason.as_deref(), &|f| {
                policy::may_enable_credential(&person, f)
            })
        })
        .await?,
    ))
}
