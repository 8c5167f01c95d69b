//! The registry's HTTP surface: routes, JSON errors, authentication and the OpenAPI document.

pub mod agents;
pub mod api_tokens;
pub mod approvals;
pub mod audit;
pub mod auth;
pub mod catalogue;
pub mod credentials;
pub mod delegations;
pub mod error;
pub mod flags;
pub mod guards;
pub mod oauth;
pub mod openapi;
pub mod ownership;
pub mod people;
pub mod resource_credentials;
pub mod reviews;
pub mod ssf;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::model::api::Health;
use crate::model::text::check_free_text;
use crate::registry::store::{Store, StoreResult};
use error::ApiError;

/// The largest request body the registry reads (governance payloads are small).
pub const BODY_LIMIT: usize = 64 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub server_name: Arc<str>,
    pub tokens: Arc<crate::registry::tokens::TokenService>,
    /// Rate limits on failed authentication and bounds on large reads.
    pub guards: Arc<guards::Guards>,
    /// The Shared Signals transmitter.
    pub signals: Arc<crate::registry::signals::Signals>,
}

/// Runs a store call on the blocking pool so that SQLite never stalls the async runtime.
pub async fn blocking<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&dyn Store) -> StoreResult<T> + Send + 'static,
) -> Result<T, ApiError> {
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || f(store.as_ref()))
        .await
        .map_err(|e| ApiError::internal(format!("the request's worker failed: {e}")))?
        .map_err(ApiError::from)
}

/// Waits for a turn when a read asks for more than `large_read_rows` rows (pass `u32::MAX` for
/// reads that are always large), so that a burst of big pages cannot starve the revoke brake of
/// readers and memory. Too many waiting: 503 `busy` with `Retry-After`.
pub async fn large_read_turn(
    state: &AppState,
    rows: u32,
) -> Result<Option<tokio::sync::OwnedSemaphorePermit>, ApiError> {
    if rows <= state.guards.settings.large_read_rows {
        return Ok(None);
    }
    match state.guards.large_read().await {
        Some(permit) => Ok(Some(permit)),
        None => Err(ApiError {
            retry_after: Some(1),
            ..ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "too many large reads are running; try again in a second or ask for fewer rows",
            )
        }),
    }
}

pub fn check_reason(reason: &Option<String>) -> Result<(), ApiError> {
    if let Some(r) = reason {
        check_free_text("reason", r, 1000)?;
    }
    Ok(())
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Steward identity registry",
        description = "Inventory, owners, grants, revocation and a tamper-evident audit log for AI agents."
    ),
    modifiers(&BearerAuth),
    // Referenced by a query parameter, which does not register its schema itself.
    components(schemas(
        crate::model::review::ExportFormat,
        crate::model::review::QueueSort,
        crate::model::flag::Severity
    )),
    tags(
        (name = "agents", description = "The agent inventory and governance verbs"),
        (name = "people", description = "People, roles and API tokens"),
        (name = "audit", description = "The hash-chained audit log and the change feed"),
        (name = "tokens", description = "OAuth token exchange, introspection, revocation, keys"),
        (name = "reviews", description = "Access-review campaigns, decisions, scope diffs, reminders"),
        (name = "catalogue", description = "The resource catalogue: resources, audiences, owners, scopes and tiers"),
        (name = "approvals", description = "Access requests, per-use approvals and the approver's queue"),
        (name = "signals", description = "OpenID Shared Signals (SSF 1.0) transmitter: CAEP events to relying parties, pushed or polled"),
        (name = "flags", description = "Behaviour flags: departures from an agent's learned activity, with evidence"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A person's API token (`stw_…`)"))
                    .build(),
            ),
        );
    }
}

/// Liveness and the schema version; needs no token. A replica over PostgreSQL that cannot
/// hear the others' revocations answers 503 with status `not_synced` (it issues no token and
/// reads none as active until it has caught up): a load balancer should send traffic elsewhere.
#[utoipa::path(get, path = "/healthz", tag = "audit", responses((status = 200, body = Health),
    (status = 503, body = Health, description = "`not_synced`: this replica lost the database's change feed")))]
async fn health(
    State(state): State<AppState>,
) -> Result<(axum::http::StatusCode, Json<Health>), ApiError> {
    let schema_version = blocking(&state, |s| s.schema_version()).await?;
    let synced = state.store.live_tokens().is_synced();
    Ok((
        if synced {
            axum::http::StatusCode::OK
        } else {
            axum::http::StatusCode::SERVICE_UNAVAILABLE
        },
        Json(Health {
            status: if synced { "ok" } else { "not_synced" }.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            schema_version,
            delivers_signals: state.signals.delivering(),
        }),
    ))
}

/// Every route may answer 429 (too many failed authentications from this source or against
/// this credential) with `Retry-After`: documented on every operation from one place.
fn document_rate_limits(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::Operation;
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, RefOr, ResponseBuilder};
    let retry_after = HeaderBuilder::new()
        .schema(Some(ObjectBuilder::new().schema_type(Type::Integer)))
        .description(Some("Seconds to wait before trying again"))
        .build();
    for (path, item) in openapi.paths.paths.iter_mut() {
        let error_schema = if path.starts_with("/oauth/") {
            "OAuthErrorBody"
        } else {
            "ApiErrorBody"
        };
        let response = ResponseBuilder::new()
            .description(
                "Too many failed authentications from this address or against this \
                 credential (`too_many_failures`); wait `Retry-After` seconds",
            )
            .header("Retry-After", retry_after.clone())
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name(error_schema)))
                    .build(),
            )
            .build();
        let operations: [&mut Option<Operation>; 8] = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ];
        for operation in operations.into_iter().flatten() {
            operation
                .responses
                .responses
                .entry("429".to_string())
                .or_insert_with(|| RefOr::T(response.clone()));
        }
    }
}

/// Refusals that come from shared parts rather than a route's own rules, documented from one
/// place: a JSON body is refused by the extractor (415 wrong media type, 422 not the expected
/// shape, 413 too large), and a Shared Signals route refuses a person who is not an admin (403).
fn document_common_refusals(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::Operation;
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
    let refusal = |description: &str| {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ApiErrorBody")))
                        .build(),
                )
                .build(),
        )
    };
    for (path, item) in openapi.paths.paths.iter_mut() {
        if path.starts_with("/oauth/") || path.starts_with("/.well-known/") {
            continue;
        }
        let signals = path.starts_with("/ssf/");
        let operations: [&mut Option<Operation>; 5] = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            let json_body = operation.request_body.as_ref().is_some_and(|b| match b {
                RefOr::T(body) => body.content.contains_key("application/json"),
                RefOr::Ref(_) => false,
            });
            let responses = &mut operation.responses.responses;
            if json_body {
                for (code, text) in [
                    ("413", "The body is larger than the registry accepts"),
                    (
                        "415",
                        "The body is not JSON (send Content-Type: application/json)",
                    ),
                    ("422", "The body is not of the expected shape"),
                ] {
                    responses
                        .entry(code.to_string())
                        .or_insert_with(|| refusal(text));
                }
            }
            // A write meets the registry's current state (a decommissioned parent, a person
            // who left, a decided item): refused 409 with the reason.
            if json_body && path.starts_with("/v1/") {
                responses.entry("409".to_string()).or_insert_with(|| {
                    refusal("The change conflicts with the current state (the message says which)")
                });
            }
            if signals {
                responses
                    .entry("403".to_string())
                    .or_insert_with(|| refusal("Not a receiver: a person who is not an admin"));
            }
        }
    }
}

/// Every route, with the OpenAPI document built from the same list.
pub fn router(state: AppState) -> Router {
    let (router, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health))
        .routes(routes!(people::me))
        .routes(routes!(
            people::issue_my_token,
            api_tokens::list_my_tokens,
            api_tokens::revoke_all_my_tokens
        ))
        .routes(routes!(people::revoke_my_token))
        .routes(routes!(
            delegations::create_delegation,
            delegations::list_delegations
        ))
        .routes(routes!(delegations::revoke_delegation))
        .routes(routes!(people::list_people, people::create_person))
        .routes(routes!(people::show_person, people::update_person))
        .routes(routes!(people::issue_token, api_tokens::list_person_tokens))
        .routes(routes!(agents::list_agents, agents::register_agent))
        .routes(routes!(agents::show_agent))
        .routes(routes!(agents::agent_audit))
        .routes(routes!(flags::agent_activity))
        .routes(routes!(flags::agent_activity_hourly))
        .routes(routes!(flags::list_flags))
        .routes(routes!(flags::show_flag))
        .routes(routes!(flags::acknowledge_flag))
        .routes(routes!(flags::resolve_flag))
        .routes(routes!(agents::add_grant))
        .routes(routes!(agents::remove_grant))
        .routes(routes!(agents::set_owner, ownership::clear_owner))
        .routes(routes!(ownership::owner_candidates))
        .routes(routes!(ownership::leave))
        .routes(routes!(ownership::my_handovers))
        .routes(routes!(ownership::acknowledge_handovers))
        .routes(routes!(agents::revoke_agent))
        .routes(routes!(agents::reinstate_agent))
        .routes(routes!(
            agents::decommission_plan,
            agents::decommission_agent
        ))
        .routes(routes!(audit::list_audit))
        .routes(routes!(audit::verify_audit))
        .routes(routes!(audit::audit_head))
        .routes(routes!(audit::timeline))
        .routes(routes!(audit::add_note))
        .routes(routes!(audit::changes))
        .routes(routes!(oauth::metadata))
        .routes(routes!(oauth::jwks))
        .routes(routes!(oauth::token))
        .routes(routes!(oauth::introspect))
        .routes(routes!(oauth::revoke))
        .routes(routes!(oauth::mint_access_token))
        .routes(routes!(oauth::add_credential))
        .routes(routes!(oauth::disable_credential))
        .routes(routes!(credentials::enable_credential))
        .routes(routes!(oauth::agent_tokens))
        .routes(routes!(reviews::list_campaigns, reviews::create_campaign))
        .routes(routes!(reviews::show_campaign))
        .routes(routes!(reviews::campaign_items))
        .routes(routes!(reviews::close_campaign))
        .routes(routes!(reviews::export_campaign))
        .routes(routes!(reviews::certify_unchanged))
        .routes(routes!(reviews::reassign_agent))
        .routes(routes!(reviews::accept_recommendations))
        .routes(routes!(reviews::my_reviews))
        .routes(routes!(reviews::reminders))
        .routes(routes!(reviews::show_item))
        .routes(routes!(reviews::decide_item))
        .routes(routes!(reviews::reassign_item))
        .routes(routes!(reviews::scope_diff))
        .routes(routes!(
            catalogue::list_resources,
            catalogue::import_catalogue
        ))
        .routes(routes!(catalogue::show_resource))
        .routes(routes!(resource_credentials::add_resource_credential))
        .routes(routes!(resource_credentials::disable_resource_credential))
        .routes(routes!(
            approvals::agent_requests,
            approvals::create_request
        ))
        .routes(routes!(approvals::list_approvals))
        .routes(routes!(approvals::approve))
        .routes(routes!(approvals::deny))
        .routes(routes!(ssf::ssf_configuration))
        .routes(routes!(
            ssf::create_stream,
            ssf::read_stream,
            ssf::update_stream,
            ssf::replace_stream,
            ssf::delete_stream
        ))
        .routes(routes!(ssf::read_status, ssf::update_status))
        .routes(routes!(ssf::add_subject))
        .routes(routes!(ssf::remove_subject))
        .routes(routes!(ssf::verify))
        .routes(routes!(ssf::poll))
        .routes(routes!(ssf::list_streams))
        .routes(routes!(ssf::show_stream))
        .routes(routes!(ssf::pause_stream))
        .routes(routes!(ssf::resume_stream))
        .routes(routes!(ssf::fan_out))
        .with_state(state)
        .split_for_parts();
    let mut openapi = openapi;
    document_rate_limits(&mut openapi);
    document_common_refusals(&mut openapi);
    let openapi = Arc::new(openapi::complete(
        serde_json::to_value(&openapi).expect("the OpenAPI document is JSON"),
    ));
    let router = router
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let doc = openapi.clone();
                async move { Json(doc.as_ref().clone()) }
            }),
        )
        .fallback(|| async {
            ApiError::not_found("no such route; the API is described at /openapi.json")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not accept that method; see /openapi.json",
            )
        })
        .layer(DefaultBodyLimit::max(BODY_LIMIT));
    answer_panics(router).layer(axum::middleware::from_fn(
        crate::registry::logging::request_span,
    ))
}

/// A handler that panics answers 500 `internal_error` with its request id (inside the request
/// span, so the id is known), instead of the connection dropping with no answer. The panic's
/// text goes to the log only.
fn answer_panics(router: Router) -> Router {
    router.layer(tower_http::catch_panic::CatchPanicLayer::custom(
        |payload: Box<dyn std::any::Any + Send>| {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(panic = %what, "a request handler panicked");
            axum::response::IntoResponse::into_response(ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                error::INTERNAL_ERROR,
                error::internal_message(),
            ))
        },
    ))
}

#[cfg(test)]
mod panic_tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    #[tokio::test]
    async fn a_panicking_handler_answers_500_with_its_request_id() {
        let app = super::answer_panics(axum::Router::new().route(
            "/boom",
            axum::routing::get(|| async {
                if true {
                    panic!("a bug");
                }
                "unreachable"
            }),
        ))
        .layer(axum::middleware::from_fn(
            crate::registry::logging::request_span,
        ));
        let response = app
            .oneshot(Request::get("/boom").body(Body::empty()).unwrap())
            .await
            .expect("the router answers");
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let id = response
            .headers()
            .get("x-request-id")
            .expect("a request id")
            .to_str()
            .unwrap()
            .to_string();
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"], "internal_error");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(&id), "{message}");
        assert!(
            !message.contains("a bug"),
            "the panic text stays in the log: {message}"
        );
    }
}
