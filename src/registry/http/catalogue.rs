//! `/v1/resources`: the resource catalogue. Everyone signed in reads it (owners pick scopes to
//! request from it); admins import it.

use axum::Json;
use axum::extract::State;

use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiPath};
use super::{AppState, blocking};
use crate::model::api::ApiErrorBody;
use crate::model::catalogue::{ImportCatalogue, ImportOutcome, Resource, ResourceList};
use crate::registry::policy;

/// Every resource with its audiences, owner and scopes.
#[utoipa::path(get, path = "/v1/resources", tag = "catalogue", security(("bearer" = [])),
    responses((status = 200, body = ResourceList), (status = 401, body = ApiErrorBody)))]
pub async fn list_resources(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<ResourceList>, ApiError> {
    let resources = blocking(&state, |s| s.list_resources()).await?;
    Ok(Json(ResourceList { resources }))
}

/// Creates or updates the listed resources and their scopes (admins). Importing the same
/// catalogue twice changes nothing; a bad entry refuses the whole import.
#[utoipa::path(put, path = "/v1/resources", tag = "catalogue", request_body = ImportCatalogue,
    security(("bearer" = [])),
    responses((status = 200, body = ImportOutcome), (status = 403, body = ApiErrorBody),
        (status = 422, body = ApiErrorBody)))]
pub async fn import_catalogue(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<ImportCatalogue>,
) -> Result<Json<ImportOutcome>, ApiError> {
    if !policy::is_admin(&caller.person) {
        return Err(ApiError::forbidden(format!(
            "{} may not change the resource catalogue: it takes the admin role",
            caller.person.email
        )));
    }
    let actor = caller.actor();
    Ok(Json(
        blocking(&state, move |s| s.import_catalogue(&actor, &req)).await?,
    ))
}

/// One resource.
#[utoipa::path(get, path = "/v1/resources/{id}", tag = "catalogue",
    params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = Resource), (status = 404, body = ApiErrorBody)))]
pub async fn show_resource(
    State(state): State<AppState>,
    _caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Resource>, ApiError> {
    let wanted = id.clone();
    blocking(&state, move |s| s.resource(&wanted))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no resource with id {id}")))
}
