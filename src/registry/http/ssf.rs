//! OpenID Shared Signals (SSF 1.0): the transmitter metadata, stream management for receivers
//! (`/ssf/…`, authenticated as a catalogued resource or with an admin's API token; a receiver
//! sees only its own streams), poll delivery (RFC 8936), and the admin's view of every stream
//! (`/v1/streams`) and of one action's fan-out (`/v1/signals/{audit_seq}`).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiPath, ApiQuery, MaybeJson};
use super::guards::{Peer, note_failure};
use super::{AppState, blocking};
use crate::model::api::ApiErrorBody;
use crate::model::signals::{
    AddSubject, AuthorizationScheme, CREDENTIAL_CHANGE, Delivery, EVENTS_SUPPORTED, FanOut, POLL,
    PUSH, PollRequest, PollResponse, RemoveSubject, SESSION_REVOKED, StreamConfiguration,
    StreamList, StreamRead, StreamRequest, StreamState, StreamStatus, StreamSummary, Subject,
    TOKEN_CLAIMS_CHANGE, TransmitterConfiguration, VerificationRequest, parse_subject,
};
use crate::model::text::check_free_text;
use crate::model::{Actor, Role};
use crate::registry::policy;
use crate::registry::signals::Signals;
use crate::registry::store::streams::{StreamFields, StreamRow};
use crate::registry::tokens::auth::{ClientCredentials, FormParams, client_credentials};
use crate::registry::tokens::introspect::OAuthCaller;

/// Who manages a stream.
#[derive(Debug, Clone)]
pub enum Receiver {
    Admin(String),
    Resource(String),
}

impl Receiver {
    pub fn key(&self) -> String {
        match self {
            Receiver::Admin(e) => format!("admin:{e}"),
            Receiver::Resource(r) => format!("resource:{r}"),
        }
    }

    fn actor(&self) -> Actor {
        match self {
            Receiver::Admin(e) => Actor::human(e),
            Receiver::Resource(r) => Actor::system(&format!("resource:{r}")),
        }
    }
}

/// A receiver's routes authenticate it first, before the body is read. A failed
/// authentication (401) is counted by the failed-authentication limits like every other route
/// (per source address and per named credential) and, beyond a budget, answered 429.
impl axum::extract::FromRequestParts<AppState> for Receiver {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, ApiError> {
        let Peer(peer) =
            <Peer as axum::extract::FromRequestParts<AppState>>::from_request_parts(parts, state)
                .await
                .unwrap_or(Peer(None));
        match receiver(state, &parts.headers).await {
            Err(e) if e.status == StatusCode::UNAUTHORIZED => {
                let named = named_credential(&parts.headers);
                let (credential, method) = match &named {
                    Some((c, m)) => (Some(c.as_str()), *m),
                    None => (None, "none"),
                };
                match note_failure(state, peer, credential, method) {
                    Some(refusal) => Err(ApiError::too_many_failures(refusal)),
                    None => Err(e),
                }
            }
            other => other,
        }
    }
}

/// The credential a failed receiver authentication named, to count failures against it: the
/// resource a Basic header or an assertion names, or a digest prefix of a bearer API token.
/// Never the secret itself; unverified, it only picks a counter.
fn named_credential(headers: &HeaderMap) -> Option<(String, &'static str)> {
    let header = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, value) = header.split_once(' ')?;
    let value = value.trim();
    let short = |id: &str| id.chars().take(128).collect::<String>();
    if scheme.eq_ignore_ascii_case("bearer") {
        if value.matches('.').count() == 2 {
            let parsed = crate::registry::tokens::jwt::parse(value).ok()?;
            let sub = parsed.claim_str("sub")?;
            return Some((format!("resource:{}", short(sub)), "client_assertion"));
        }
        let digest = super::auth::hash_api_token(value);
        return Some((format!("api_token:{}", &digest[..16]), "api_token"));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        use base64::Engine;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(value)
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (id, _) = text.split_once(':')?;
        return Some((format!("resource:{}", short(id)), "client_secret"));
    }
    None
}

async fn receiver(state: &AppState, headers: &HeaderMap) -> Result<Receiver, ApiError> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str())
        .transpose()
        .map_err(|_| {
            ApiError::unauthenticated("unauthenticated", "the Authorization header is not text")
        })?;
    let Some(authorization) = authorization else {
        return Err(ApiError::unauthenticated(
            "unauthenticated",
            "a receiver authenticates as a catalogued resource (Basic resource-id:secret, or \
             Bearer with an assertion the resource signed) or with an admin's API token",
        ));
    };
    let credentials = match authorization.trim().split_once(' ') {
        Some((scheme, value))
            if scheme.eq_ignore_ascii_case("bearer") && value.trim().matches('.').count() == 2 =>
        {
            ClientCredentials::Assertion(value.trim().to_string())
        }
        _ => client_credentials(Some(authorization), &FormParams::parse(b""))
            .map_err(|e| ApiError::unauthenticated("unauthenticated", e.description))?,
    };
    let endpoint = format!("{}/ssf/streams", state.tokens.issuer);
    let caller = state
        .tokens
        .authenticate_receiver(credentials, &endpoint)
        .await
        .map_err(|e| ApiError::unauthenticated("unauthenticated", e.description))?;
    match caller {
        OAuthCaller::Resource { id, .. } => Ok(Receiver::Resource(id)),
        OAuthCaller::Person(p) if p.has_role(Role::Admin) => Ok(Receiver::Admin(p.email)),
        OAuthCaller::Person(p) => Err(ApiError::forbidden(format!(
            "{} may not manage Shared Signals streams: it takes the admin role (resource \
             servers authenticate as their catalogued resource)",
            p.email
        ))),
        OAuthCaller::Agent(_) => Err(ApiError::forbidden("agents are not receivers")),
    }
}

fn signals(state: &AppState) -> &Signals {
    &state.signals
}

/// The stream, if it exists and belongs to this receiver (another's is answered as missing).
async fn own_stream(state: &AppState, who: &Receiver, id: &str) -> Result<StreamRow, ApiError> {
    let id = id.to_string();
    let key = who.key();
    let found = blocking(state, move |s| s.stream(&id)).await?;
    match found {
        Some(s) if s.receiver == key => Ok(s),
        _ => Err(ApiError::not_found("no such stream for this receiver")),
    }
}

fn poll_url(state: &AppState, id: &str) -> String {
    format!("{}/ssf/poll/{id}", state.tokens.issuer)
}

fn configuration(state: &AppState, s: &StreamRow) -> StreamConfiguration {
    let endpoint_url = if s.method == POLL {
        Some(poll_url(state, &s.id))
    } else {
        s.endpoint_url.clone()
    };
    StreamConfiguration {
        stream_id: s.id.clone(),
        iss: state.tokens.issuer.clone(),
        aud: Signals::audience(s),
        events_supported: EVENTS_SUPPORTED.iter().map(|e| e.to_string()).collect(),
        events_requested: s.events_requested.clone(),
        events_delivered: s
            .events_requested
            .iter()
            .filter(|e| EVENTS_SUPPORTED.contains(&e.as_str()))
            .cloned()
            .collect(),
        delivery: Delivery {
            method: s.method.clone(),
            endpoint_url,
            authorization_header: None,
        },
        description: s.description.clone(),
        min_verification_interval: signals(state).settings.min_verification_interval,
    }
}

/// Checks a requested configuration; `base` is the stream being updated (PATCH).
async fn fields(
    state: &AppState,
    req: &StreamRequest,
    base: Option<&StreamRow>,
) -> Result<StreamFields, ApiError> {
    let bad = |code: &'static str, m: String| ApiError::new(StatusCode::BAD_REQUEST, code, m);
    let delivery = match (&req.delivery, base) {
        (Some(d), _) => d.clone(),
        (None, Some(b)) => Delivery {
            method: b.method.clone(),
            endpoint_url: b.endpoint_url.clone(),
            authorization_header: b.authorization_header.clone(),
        },
        (None, None) => {
            return Err(bad(
                "invalid_delivery",
                format!(
                    "`delivery` is required: {{\"method\": \"{PUSH}\", \"endpoint_url\": …}} or {{\"method\": \"{POLL}\"}}"
                ),
            ));
        }
    };
    let (endpoint_url, authorization_header) = match delivery.method.as_str() {
        PUSH => {
            let url = delivery.endpoint_url.as_deref().ok_or_else(|| {
                bad(
                    "invalid_delivery",
                    "push delivery needs `delivery.endpoint_url`".into(),
                )
            })?;
            let url = signals(state)
                .networks
                .check_url(url)
                .await
                .map_err(|e| bad("invalid_endpoint", e))?;
            if let Some(h) = &delivery.authorization_header
                && (h.is_empty() || h.len() > 1024 || h.chars().any(|c| c.is_control()))
            {
                return Err(bad(
                    "invalid_delivery",
                    "`delivery.authorization_header` must be 1..=1024 printable characters".into(),
                ));
            }
            (Some(url.to_string()), delivery.authorization_header.clone())
        }
        POLL => {
            if req.delivery.is_some()
                && delivery.endpoint_url.is_some()
                && delivery.endpoint_url != base.map(|b| poll_url(state, &b.id))
            {
                return Err(bad(
                    "invalid_delivery",
                    "poll delivery takes no `endpoint_url`: the transmitter sets it".into(),
                ));
            }
            (None, None)
        }
        other => {
            return Err(bad(
                "invalid_delivery",
                format!("delivery method {other:?} is not supported; use {PUSH} or {POLL}"),
            ));
        }
    };
    let events_requested = match (&req.events_requested, base) {
        (Some(list), _) => {
            if list.len() > 16 {
                return Err(bad("invalid_events", "at most 16 event types".into()));
            }
            if let Some(unknown) = list
                .iter()
                .find(|e| !EVENTS_SUPPORTED.contains(&e.as_str()))
            {
                return Err(bad(
                    "unknown_event_type",
                    format!(
                        "event type {unknown:?} is not supported; supported: {}",
                        EVENTS_SUPPORTED.join(", ")
                    ),
                ));
            }
            let mut l = list.clone();
            l.sort();
            l.dedup();
            l
        }
        (None, Some(b)) => b.events_requested.clone(),
        (None, None) => vec![
            SESSION_REVOKED.to_string(),
            CREDENTIAL_CHANGE.to_string(),
            TOKEN_CLAIMS_CHANGE.to_string(),
        ],
    };
    let description = match (&req.description, base) {
        (Some(d), _) => {
            check_free_text("description", d, 500)?;
            Some(d.clone())
        }
        (None, Some(b)) => b.description.clone(),
        (None, None) => None,
    };
    Ok(StreamFields {
        method: delivery.method,
        endpoint_url,
        authorization_header,
        events_requested,
        description,
    })
}

/// Transmitter Configuration Metadata (SSF 1.0 §7.1); needs no authentication.
#[utoipa::path(get, path = "/.well-known/ssf-configuration", tag = "signals",
    responses((status = 200, body = TransmitterConfiguration)))]
pub async fn ssf_configuration(State(state): State<AppState>) -> Json<TransmitterConfiguration> {
    let iss = state.tokens.issuer.clone();
    Json(TransmitterConfiguration {
        spec_version: "1_0".into(),
        jwks_uri: state.tokens.jwks_uri.clone(),
        delivery_methods_supported: vec![PUSH.into(), POLL.into()],
        configuration_endpoint: format!("{iss}/ssf/streams"),
        status_endpoint: format!("{iss}/ssf/status"),
        add_subject_endpoint: format!("{iss}/ssf/subjects/add"),
        remove_subject_endpoint: format!("{iss}/ssf/subjects/remove"),
        verification_endpoint: format!("{iss}/ssf/verify"),
        authorization_schemes: vec![
            AuthorizationScheme {
                spec_urn: "urn:ietf:rfc:6749".into(),
            },
            AuthorizationScheme {
                spec_urn: "urn:ietf:rfc:6750".into(),
            },
        ],
        default_subjects: "ALL".into(),
        issuer: iss,
    })
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamIdQuery {
    /// The stream; omitted on GET: every stream of the receiver.
    pub stream_id: Option<String>,
}

/// Create a stream (SSF 1.0 §8.1.1.1). Push endpoints must be https (http only to loopback);
/// internal addresses are refused unless an admin allowed their network.
#[utoipa::path(post, path = "/ssf/streams", tag = "signals", request_body = StreamRequest,
    responses((status = 201, body = StreamConfiguration), (status = 400, body = ApiErrorBody),
        (status = 401, body = ApiErrorBody), (status = 403, body = ApiErrorBody),
        (status = 409, body = ApiErrorBody)))]
pub async fn create_stream(
    State(state): State<AppState>,
    who: Receiver,
    ApiJson(req): ApiJson<StreamRequest>,
) -> Result<(StatusCode, Json<StreamConfiguration>), ApiError> {
    // The transmitter names streams (SSF 1.0 §8.1.1.1: the receiver sends only its own
    // properties). A `stream_id` here is a receiver that thinks it is updating: say so rather
    // than create a second stream under another name.
    if req.stream_id.is_some() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "`stream_id` is chosen by the transmitter: omit it to create a stream, or PATCH/PUT to change one",
        ));
    }
    let f = fields(&state, &req, None).await?;
    let id = format!("st_{:020x}", rand::random::<u128>() >> 48);
    let (actor, key) = (who.actor(), who.key());
    let row = blocking(&state, move |s| s.create_stream(&actor, &id, &key, &f)).await?;
    signals(&state).poke(&row.id);
    Ok((StatusCode::CREATED, Json(configuration(&state, &row))))
}

/// Read one stream (`?stream_id=`) or every stream of the receiver (SSF 1.0 §8.1.1.2).
#[utoipa::path(get, path = "/ssf/streams", tag = "signals", params(StreamIdQuery),
    responses((status = 200, body = StreamRead,
        description = "One configuration object with `stream_id`, an array without"),
        (status = 401, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
pub async fn read_stream(
    State(state): State<AppState>,
    who: Receiver,
    ApiQuery(q): ApiQuery<StreamIdQuery>,
) -> Result<Response, ApiError> {
    match q.stream_id {
        Some(id) => {
            let row = own_stream(&state, &who, &id).await?;
            Ok(Json(StreamRead::One(Box::new(configuration(&state, &row)))).into_response())
        }
        None => {
            let key = who.key();
            let rows = blocking(&state, move |s| s.streams(Some(&key))).await?;
            let list: Vec<_> = rows.iter().map(|r| configuration(&state, r)).collect();
            Ok(Json(StreamRead::Many(list)).into_response())
        }
    }
}

async fn change_stream(
    state: AppState,
    who: Receiver,
    req: StreamRequest,
    replace: bool,
) -> Result<Json<StreamConfiguration>, ApiError> {
    let id = req.stream_id.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "`stream_id` is required",
        )
    })?;
    let row = own_stream(&state, &who, &id).await?;
    let f = fields(&state, &req, if replace { None } else { Some(&row) }).await?;
    let actor = who.actor();
    let row = blocking(&state, move |s| s.update_stream(&actor, &id, &f)).await?;
    signals(&state).poke(&row.id);
    Ok(Json(configuration(&state, &row)))
}

/// Update a stream: members given replace the stored ones (SSF 1.0 §8.1.1.3).
#[utoipa::path(patch, path = "/ssf/streams", tag = "signals", request_body = StreamRequest,
    responses((status = 200, body = StreamConfiguration), (status = 400, body = ApiErrorBody),
        (status = 401, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
pub async fn update_stream(
    State(state): State<AppState>,
    who: Receiver,
    ApiJson(req): ApiJson<StreamRequest>,
) -> Result<Json<StreamConfiguration>, ApiError> {
    change_stream(state, who, req, false).await
}

/// Replace a stream's configuration (SSF 1.0 §8.1.1.4).
#[utoipa::path(put, path = "/ssf/streams", tag = "signals", request_body = StreamRequest,
    responses((status = 200, body = StreamConfiguration), (status = 400, body = ApiErrorBody),
        (status = 401, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
pub async fn replace_stream(
    State(state): State<AppState>,
    who: Receiver,
    ApiJson(req): ApiJson<StreamRequest>,
) -> Result<Json<StreamConfiguration>, ApiError> {
    change_stream(state, who, req, true).await
}

/// Delete a stream with its queue (SSF 1.0 §8.1.1.5).
#[utoipa::path(delete, path = "/ssf/streams", tag = "signals", params(StreamIdQuery),
    responses((status = 204), (status = 400, body = ApiErrorBody),
        (status = 401, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
pub async fn delete_stream(
    State(state): State<AppState>,
    who: Receiver,
    ApiQuery(q): ApiQuery<StreamIdQuery>,
) -> Result<StatusCode, ApiError> {
    let id = q.stream_id.ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "`stream_id` is required",
        )
    })?;
    own_stream(&state, &who, &id).await?;
    let actor = who.actor();
    blocking(&state, move |s| s.delete_stream(&actor, &id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A stream's status (SSF 1.0 §8.1.2.1).
#[utoipa::path(get, path = "/ssf/status", tag = "signals", params(StreamIdQuery),
    responses((status = 200, body = StreamStatus), (status = 400, body = ApiErrorBody),
        (status = 401, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
pub async fn read_status(
    State(state): State<AppState>,
    who: Receiver,
    ApiQuery(q): ApiQuery<StreamIdQuery>,
) -> Result<Json<StreamStatus>, ApiError> {
    let id = q.stream_id.ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "`stream_id` is required",
        )
    })?;
    let row = own_stream(&state, &who, &id).await?;
    Ok(Json(StreamStatus {
        stream_id: row.id,
        status: row.status,
        reason: row.reason,
    }))
}

/// Enable, pause or disable a stream (SSF 1.0 §8.1.2.2). Paused: events are held; disabled:
/// events are dropped.
#[utoipa::path(post, path = "/ssf/status", tag = "signals", request_body = StreamStatus,
    responses((status = 200, body = StreamStatus), (status = 400, body = ApiErrorBody),
        (status = 401, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
pub async fn update_status(
    State(state): State<AppState>,
    who: Receiver,
    ApiJson(req): ApiJson<StreamStatus>,
) -> Result<Json<StreamStatus>, ApiError> {
    if let Some(r) = &req.reason {
        check_free_text("reason", r, 500)?;
    }
    own_stream(&state, &who, &req.stream_id).await?;
    let actor = who.actor();
    let (id, status, reason) = (req.stream_id.clone(), req.status, req.reason.clone());
    let row = blocking(&state, move |s| {
        s.set_stream_status(&actor, &id, status, reason.as_deref())
    })
    .await?;
    signals(&state).poke(&row.id);
    Ok(Json(StreamStatus {
        stream_id: row.id,
        status: row.status,
        reason: row.reason,
    }))
}

/// The subject key of a requested subject, after checking that this receiver may see it.
async fn subject_key(
    state: &AppState,
    who: &Receiver,
    subject: &serde_json::Value,
) -> Result<String, ApiError> {
    let bad = |code: &'static str, m: String| ApiError::new(StatusCode::BAD_REQUEST, code, m);
    let parsed = parse_subject(subject).map_err(|e| bad("invalid_subject", e))?;
    let key = match parsed {
        Subject::Agent(id) => format!("agent:{id}"),
        Subject::Person(email) => format!("person:{email}"),
        Subject::IssSub { iss, sub } => {
            if iss != state.tokens.issuer {
                return Err(bad(
                    "invalid_subject",
                    format!(
                        "an iss_sub subject must name this registry ({}) as iss",
                        state.tokens.issuer
                    ),
                ));
            }
            format!("agent:{sub}")
        }
    };
    let k = key.clone();
    let allowed = match who {
        Receiver::Resource(r) => {
            let r = r.clone();
            blocking(state, move |s| s.resource_may_see(&r, &k)).await?
        }
        Receiver::Admin(_) => {
            blocking(state, move |s| {
                Ok(match k.split_once(':') {
                    Some(("agent", id)) => s.agent_detail(id)?.is_some(),
                    Some(("person", email)) => s.person(email)?.is_some(),
                    _ => false,
                })
            })
            .await?
        }
    };
    if !allowed {
        return Err(ApiError::forbidden(
            "this stream may not carry events about that subject (unknown, or not one of the \
             receiver's: an agent holding its scopes or a person whose tokens were addressed to it)",
        ));
    }
    Ok(key)
}

/// Add a subject to a stream (SSF 1.0 §8.1.3.2).
#[utoipa::path(post, path = "/ssf/subjects/add", tag = "signals", request_body = AddSubject,
    responses((status = 200), (status = 400, body = ApiErrorBody),
        (status = 401, body = ApiErrorBody), (status = 403, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody)))]
pub async fn add_subject(
    State(state): State<AppState>,
    who: Receiver,
    ApiJson(req): ApiJson<AddSubject>,
) -> Result<StatusCode, ApiError> {
    own_stream(&state, &who, &req.stream_id).await?;
    let key = subject_key(&state, &who, &req.subject).await?;
    let id = req.stream_id.clone();
    blocking(&state, move |s| s.set_stream_subject(&id, &key, true)).await?;
    Ok(StatusCode::OK)
}

/// Remove a subject from a stream (SSF 1.0 §8.1.3.3): its events are no longer sent.
#[utoipa::path(post, path = "/ssf/subjects/remove", tag = "signals", request_body = RemoveSubject,
    responses((status = 204), (status = 400, body = ApiErrorBody),
        (status = 401, body = ApiErrorBody), (status = 403, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody)))]
pub async fn remove_subject(
    State(state): State<AppState>,
    who: Receiver,
    ApiJson(req): ApiJson<RemoveSubject>,
) -> Result<StatusCode, ApiError> {
    own_stream(&state, &who, &req.stream_id).await?;
    let key = subject_key(&state, &who, &req.subject).await?;
    let id = req.stream_id.clone();
    blocking(&state, move |s| s.set_stream_subject(&id, &key, false)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ask for a verification event on the stream (SSF 1.0 §8.1.4.2).
#[utoipa::path(post, path = "/ssf/verify", tag = "signals", request_body = VerificationRequest,
    responses((status = 204), (status = 400, body = ApiErrorBody),
        (status = 401, body = ApiErrorBody), (status = 404, body = ApiErrorBody),
        (status = 429, body = ApiErrorBody,
            description = "Too many failed authentications (`too_many_failures`), or a verification \
                asked sooner than `min_verification_interval` (`too_many_verifications`); wait \
                `Retry-After` seconds",
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again")))))]
pub async fn verify(
    State(state): State<AppState>,
    who: Receiver,
    ApiJson(req): ApiJson<VerificationRequest>,
) -> Result<StatusCode, ApiError> {
    if let Some(s) = &req.state {
        check_free_text("state", s, 256)?;
    }
    let row = own_stream(&state, &who, &req.stream_id).await?;
    let now = state.store.clock().unix();
    let min = signals(&state).settings.min_verification_interval as i64;
    if let Some(last) = row.last_verification_at
        && now < last + min
    {
        return Err(ApiError {
            retry_after: Some((last + min - now) as u64),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_verifications",
                format!("at most one verification every {min} s (min_verification_interval)"),
            )
        });
    }
    let id = row.id.clone();
    blocking(&state, move |s| s.note_verification(&id, now)).await?;
    signals(&state)
        .queue_verification(&row, req.state.as_deref())
        .await
        .map_err(ApiError::from)?;
    Ok(StatusCode::NO_CONTENT)
}

fn poll_error(status: StatusCode, err: &str, description: impl Into<String>) -> Response {
    (
        status,
        Json(serde_json::json!({"err": err, "description": description.into()})),
    )
        .into_response()
}

/// Poll delivery (RFC 8936): acknowledge (`ack`) and refuse (`setErrs`) earlier SETs, and take
/// up to `maxEvents` more, in order; without `returnImmediately` the call waits (bounded) for
/// SETs to arrive. An unacknowledged SET is returned again by the next poll.
#[utoipa::path(post, path = "/ssf/poll/{stream_id}", tag = "signals",
    params(("stream_id" = String, Path)), request_body = PollRequest,
    responses((status = 200, body = PollResponse), (status = 400, description = "`{err, description}` (RFC 8936)"),
        (status = 401, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
pub async fn poll(
    State(state): State<AppState>,
    who: Receiver,
    ApiPath(stream_id): ApiPath<String>,
    MaybeJson(req): MaybeJson<Option<PollRequest>>,
) -> Result<Response, ApiError> {
    let row = own_stream(&state, &who, &stream_id).await?;
    if row.method != POLL {
        return Ok(poll_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "this stream is delivered by push; poll only a poll stream",
        ));
    }
    let req = req.unwrap_or_default();
    let max = req.max_events.unwrap_or(25).min(100);
    if req.ack.len() + req.set_errs.len() > 1000 {
        return Ok(poll_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "at most 1000 acknowledgements per poll",
        ));
    }
    if !req.ack.is_empty() || !req.set_errs.is_empty() {
        let (id, ack) = (row.id.clone(), req.ack.clone());
        let errs: Vec<_> = req.set_errs.clone().into_iter().collect();
        match blocking(&state, move |s| s.acknowledge(&id, &ack, &errs)).await {
            Ok(_) => {}
            Err(e)
                if e.status == StatusCode::UNPROCESSABLE_ENTITY
                    || e.status == StatusCode::BAD_REQUEST =>
            {
                return Ok(poll_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    e.message,
                ));
            }
            Err(e) => return Err(e),
        }
    }
    if max == 0 || row.status != StreamState::Enabled {
        return Ok(Json(PollResponse::default()).into_response());
    }
    let wait = signals(&state).settings.max_poll_wait;
    let deadline = tokio::time::Instant::now() + wait;
    let wake = signals(&state).wake_of(&row.id);
    loop {
        let notified = wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let id = row.id.clone();
        let pending = blocking(&state, move |s| s.pending_sets(&id, max + 1)).await?;
        if !pending.is_empty() || req.return_immediately == Some(true) {
            let more = pending.len() as u32 > max;
            let sets = pending
                .into_iter()
                .take(max as usize)
                .map(|p| (p.jti, p.set))
                .collect();
            return Ok(Json(PollResponse {
                sets,
                more_available: more,
            })
            .into_response());
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return Ok(Json(PollResponse::default()).into_response());
        }
    }
}

fn require_admin(caller: &Caller) -> Result<(), ApiError> {
    if policy::may_manage_streams(&caller.person) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "{} may not see Shared Signals streams: it takes the admin role",
            caller.person.email
        )))
    }
}

/// Every stream with its state, lag and last error (admins).
#[utoipa::path(get, path = "/v1/streams", tag = "signals", security(("bearer" = [])),
    responses((status = 200, body = StreamList), (status = 403, body = ApiErrorBody)))]
pub async fn list_streams(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<StreamList>, ApiError> {
    require_admin(&caller)?;
    let streams = blocking(&state, |s| s.stream_summaries(None)).await?;
    Ok(Json(StreamList { streams }))
}

async fn summary(state: &AppState, id: String) -> Result<StreamSummary, ApiError> {
    let all = blocking(state, |s| s.stream_summaries(None)).await?;
    all.into_iter()
        .find(|s| s.stream_id == id)
        .ok_or_else(|| ApiError::not_found(format!("no stream {id}")))
}

/// One stream with its delivery health (admins).
#[utoipa::path(get, path = "/v1/streams/{id}", tag = "signals", params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = StreamSummary), (status = 403, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody)))]
pub async fn show_stream(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<StreamSummary>, ApiError> {
    require_admin(&caller)?;
    Ok(Json(summary(&state, id).await?))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StreamAction {
    pub reason: Option<String>,
}

async fn set_state(
    state: AppState,
    caller: Caller,
    id: String,
    status: StreamState,
    reason: Option<String>,
) -> Result<Json<StreamSummary>, ApiError> {
    require_admin(&caller)?;
    super::check_reason(&reason)?;
    let actor = caller.actor();
    let sid = id.clone();
    blocking(&state, move |s| {
        s.set_stream_status(&actor, &sid, status, reason.as_deref())
    })
    .await?;
    signals(&state).poke(&id);
    Ok(Json(summary(&state, id).await?))
}

/// Pause a stream (admins): its events are held until it is resumed.
#[utoipa::path(post, path = "/v1/streams/{id}/pause", tag = "signals", params(("id" = String, Path)),
    request_body(content = Option<StreamAction>), security(("bearer" = [])),
    responses((status = 200, body = StreamSummary), (status = 403, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody)))]
pub async fn pause_stream(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    MaybeJson(body): MaybeJson<Option<StreamAction>>,
) -> Result<Json<StreamSummary>, ApiError> {
    let reason = body.and_then(|b| b.reason);
    set_state(state, caller, id, StreamState::Paused, reason).await
}

/// Resume a stream (admins): held events are delivered in order.
#[utoipa::path(post, path = "/v1/streams/{id}/resume", tag = "signals", params(("id" = String, Path)),
    request_body(content = Option<StreamAction>), security(("bearer" = [])),
    responses((status = 200, body = StreamSummary), (status = 403, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody)))]
pub async fn resume_stream(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    MaybeJson(body): MaybeJson<Option<StreamAction>>,
) -> Result<Json<StreamSummary>, ApiError> {
    let reason = body.and_then(|b| b.reason);
    set_state(state, caller, id, StreamState::Enabled, reason).await
}

/// What became of one action's security events: receivers notified, pending, failed (the
/// revoke result's fan-out line). Admins, responders and auditors; anyone for their own action.
#[utoipa::path(get, path = "/v1/signals/{audit_seq}", tag = "signals",
    params(("audit_seq" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, body = FanOut), (status = 404, body = ApiErrorBody)))]
pub async fn fan_out(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(seq): ApiPath<i64>,
) -> Result<Json<FanOut>, ApiError> {
    let (out, actor) = blocking(&state, move |s| s.fan_out_status(seq)).await?;
    let p = &caller.person;
    let privileged =
        p.has_role(Role::Admin) || p.has_role(Role::Responder) || p.has_role(Role::Auditor);
    if !privileged && !actor.eq_ignore_ascii_case(&p.email) {
        return Err(ApiError::not_found(format!(
            "audit event {seq} caused no security events you may see"
        )));
    }
    Ok(Json(out))
}
