//! The OAuth surfaces (RFC 8414 discovery, JWKS, RFC 8693 token exchange, RFC 7662
//! introspection, RFC 7009 revocation) and the governance calls around tokens: agents' keys,
//! person access tokens, an agent's live tokens.
//!
//! OAuth endpoints take `application/x-www-form-urlencoded` bodies and answer errors as RFC 6749
//! §5.2 says (`{"error", "error_description"}`); the `/v1/` calls keep the API's JSON errors.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{ApiError, ApiJson, ApiPath, MaybeJson};
use super::guards::{Peer, TooManyFailures, note_failure};
use super::{AppState, blocking};
use crate::model::api::ApiErrorBody;
use crate::model::text::check_line;
use crate::model::tokens::{
    AddCredential, AddedCredential, AgentTokens, Introspection, Jwks, LiveToken, MintAccessToken,
    MintedAccessToken, OAuthErrorBody, ServerMetadata, TokenResponse,
};
use crate::model::{Credential, CredentialKind};
use crate::registry::policy;
use crate::registry::store::{AgentFacts, NewCredential};
use crate::registry::tokens::OAuthError;
use crate::registry::tokens::auth::{FormParams, client_credentials, secret_hash};
use crate::registry::tokens::exchange::{MintingApiToken, parse_scopes};
use crate::registry::tokens::keys::parse_agent_public_key;

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        // An internal failure's detail goes to the log; the caller gets the request id.
        let description = if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(detail = %self.description, "internal error at an OAuth endpoint");
            super::error::internal_message()
        } else {
            self.description
        };
        let mut response = (
            status,
            Json(OAuthErrorBody {
                error: self.error.to_string(),
                approval_id: self.approval.as_ref().map(|(id, _)| id.clone()),
                expires_in: self.approval.as_ref().map(|(_, secs)| *secs),
                error_description: description,
            }),
        )
            .into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"steward\""),
            );
        }
        response
    }
}

/// An OAuth error answer with the challenge that fits the request: a failed `Bearer` gets a
/// `Bearer` challenge (RFC 6750 §3); a request without credentials at the endpoints that take
/// them is offered both schemes.
fn oauth_error(e: OAuthError, headers: &HeaderMap, bearer_accepted: bool) -> Response {
    let mut response = e.into_response();
    if response.status() != StatusCode::UNAUTHORIZED {
        return response;
    }
    let scheme = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_whitespace().next())
        .map(str::to_ascii_lowercase);
    let out = response.headers_mut();
    match scheme.as_deref() {
        Some("bearer") => {
            out.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"steward\", error=\"invalid_token\""),
            );
        }
        None if bearer_accepted => {
            out.append(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"steward\""),
            );
        }
        _ => {}
    }
    response
}

/// A JSON answer that must never be cached (tokens, token state).
fn no_store<T: Serialize>(body: T) -> Response {
    let mut response = Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// Reads a form body, refusing other media types; a body that cannot be read (over the size
/// limit: 413) is an OAuth error in JSON like every other.
fn form_body(
    headers: &HeaderMap,
    body: &Result<Bytes, BytesRejection>,
) -> Result<FormParams, OAuthError> {
    let body = body.as_ref().map_err(|rejection| {
        let status = rejection.status().as_u16();
        OAuthError::unreadable_body(
            status,
            if status == 413 {
                format!(
                    "the request body is larger than {} bytes",
                    super::BODY_LIMIT
                )
            } else {
                "the request body could not be read".to_string()
            },
        )
    })?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence != "application/x-www-form-urlencoded" {
        return Err(OAuthError::invalid_request(
            "send the parameters form-encoded (Content-Type: application/x-www-form-urlencoded)",
        ));
    }
    Ok(FormParams::parse(body))
}

fn authorization(headers: &HeaderMap) -> Result<Option<&str>, OAuthError> {
    headers
        .get(header::AUTHORIZATION)
        .map(|v| {
            v.to_str()
                .map_err(|_| OAuthError::invalid_client("the Authorization header is not text"))
        })
        .transpose()
}

/// 429 at an OAuth endpoint, in its error format, with `Retry-After`.
fn oauth_too_many(refusal: TooManyFailures) -> Response {
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        Json(OAuthErrorBody {
            error: "too_many_failures".into(),
            error_description: refusal.message(),
            approval_id: None,
            expires_in: None,
        }),
    )
        .into_response();
    refusal.stamp(&mut response);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The credential a failed OAuth call named, for counting failures against it: the agent an
/// assertion (`client_assertion` or `actor_token`) or a client id names, or a digest prefix of
/// a bearer token. Never the secret itself. Unverified: it only picks a counter.
fn named_credential(headers: &HeaderMap, body: &Bytes) -> Option<(String, &'static str)> {
    let form = FormParams::parse(body);
    for name in ["client_assertion", "actor_token"] {
        if let Ok(Some(assertion)) = form.one(name)
            && let Ok(parsed) = crate::registry::tokens::jwt::parse(assertion)
            && let Some(sub) = parsed.claim_str("sub")
        {
            return Some((format!("agent:{}", truncate(sub)), "client_assertion"));
        }
    }
    if let Ok(Some(id)) = form.one("client_id") {
        return Some((format!("agent:{}", truncate(id)), "client_secret"));
    }
    let header = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, value) = header.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") {
        let digest = super::auth::hash_api_token(value.trim());
        return Some((format!("api_token:{}", &digest[..16]), "api_token"));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        use base64::Engine;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(value.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (id, _) = text.split_once(':')?;
        return Some((format!("agent:{}", truncate(id)), "client_secret"));
    }
    None
}

fn truncate(id: &str) -> &str {
    match id.char_indices().nth(128) {
        Some((at, _)) => &id[..at],
        None => id,
    }
}

/// Runs an OAuth endpoint behind the failure limits: a failed client authentication (401) is
/// counted and, beyond a budget, answered 429 instead.
async fn guarded<T>(
    state: &AppState,
    peer: Peer,
    headers: &HeaderMap,
    body: &Result<Bytes, BytesRejection>,
    bearer_accepted: bool,
    work: impl std::future::Future<Output = Result<T, OAuthError>>,
) -> Result<T, Response> {
    match work.await {
        Ok(v) => Ok(v),
        Err(e) if e.status == 401 => {
            let named = body
                .as_ref()
                .ok()
                .and_then(|b| named_credential(headers, b));
            let (credential, method) = match &named {
                Some((c, m)) => (Some(c.as_str()), *m),
                None => (None, "client_assertion"),
            };
            match note_failure(state, peer.0, credential, method) {
                Some(refusal) => Err(oauth_too_many(refusal)),
                None => Err(oauth_error(e, headers, bearer_accepted)),
            }
        }
        Err(e) => Err(oauth_error(e, headers, bearer_accepted)),
    }
}

/// The token exchange request (RFC 8693 §2.1), form-encoded. Documentation only.
#[derive(ToSchema)]
#[allow(dead_code)]
struct TokenRequestForm {
    /// `urn:ietf:params:oauth:grant-type:token-exchange`
    grant_type: String,
    /// The person's short-lived token: an identity provider's JWT, a person access token, or
    /// a token issued by an earlier exchange (a sub-agent hop).
    subject_token: String,
    subject_token_type: String,
    /// The agent's signed assertion (or authenticate with `client_assertion`).
    actor_token: Option<String>,
    /// `urn:ietf:params:oauth:token-type:jwt`
    actor_token_type: Option<String>,
    /// Space-separated scopes; each must be granted to the agent.
    scope: String,
    /// The service the token is for (may repeat); or `resource`.
    audience: Option<String>,
    resource: Option<String>,
    requested_token_type: Option<String>,
    client_assertion_type: Option<String>,
    client_assertion: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// Introspection and revocation requests, form-encoded. Documentation only.
#[derive(ToSchema)]
#[allow(dead_code)]
struct TokenForm {
    token: String,
    token_type_hint: Option<String>,
}

/// Authorization server metadata (RFC 8414).
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", tag = "tokens",
    responses((status = 200, description = "The metadata", body = ServerMetadata),
        (status = 503, description = "The store is busy", body = OAuthErrorBody)))]
pub async fn metadata(State(state): State<AppState>) -> Response {
    match state.tokens.metadata().await {
        Ok(m) => Json(m).into_response(),
        Err(e) => e.into_response(),
    }
}

/// The registry's public signing keys (RFC 7517): the signing key first, then a staged next key
/// (published before it signs), then rotated-out keys until their tokens expire.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "tokens",
    responses((status = 200, body = Jwks)))]
pub async fn jwks(State(state): State<AppState>) -> Response {
    let mut response = Json(state.tokens.jwks().as_ref().clone()).into_response();
    let cache = format!(
        "public, max-age={}",
        crate::registry::tokens::JWKS_MAX_AGE_SECONDS
    );
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_str(&cache).expect("a plain header value"),
    );
    response
}

/// Token exchange (RFC 8693): the person as subject, the agent as actor.
#[utoipa::path(post, path = "/oauth/token", tag = "tokens",
    request_body(content = inline(TokenRequestForm), content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = TokenResponse), (status = 400, body = OAuthErrorBody),
        (status = 401, body = OAuthErrorBody)))]
pub async fn token(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let mut refusal: Option<&'static str> = None;
    let work = async {
        let form = form_body(&headers, &body)?;
        let client = client_credentials(authorization(&headers)?, &form)?;
        state.tokens.exchange(&form, client).await
    };
    let work = async {
        let out = work.await;
        if let Err(e) = &out {
            refusal = Some(e.error);
        }
        out
    };
    match guarded(&state, peer, &headers, &body, false, work).await {
        Ok(answer) => no_store(answer),
        Err(response) => {
            // Activity: a refused exchange, counted against the agent it named (a 429 from the
            // failure limits counts too).
            let reason = if response.status() == StatusCode::TOO_MANY_REQUESTS {
                "rate_limited"
            } else {
                refusal.unwrap_or("invalid_request")
            };
            note_refused_exchange(&state, &headers, &body, reason);
            response
        }
    }
}

/// Pushes a refused exchange onto the activity record (registry/behaviour), naming the agent
/// the request claimed to be; requests that name none are not attributable and are skipped.
fn note_refused_exchange(
    state: &AppState,
    headers: &HeaderMap,
    body: &Result<Bytes, BytesRejection>,
    reason: &str,
) {
    let Some(behaviour) = state.tokens.behaviour() else {
        return;
    };
    let Some(body) = body.as_ref().ok() else {
        return;
    };
    let Some((named, method)) = named_credential(headers, body) else {
        return;
    };
    let Some(agent) = named.strip_prefix("agent:") else {
        return;
    };
    let form = FormParams::parse(body);
    let scopes: Vec<String> = form
        .one("scope")
        .ok()
        .flatten()
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .take(16)
        .map(|s| truncate(s).to_string())
        .collect();
    let audience: Vec<String> = form
        .all("audience")
        .into_iter()
        .chain(form.all("resource"))
        .take(5)
        .map(|a| truncate(a).to_string())
        .collect();
    let authenticated = reason != "invalid_client" && reason != "rate_limited";
    behaviour.observe(
        crate::registry::behaviour::event(
            state.store.clock().now(),
            agent,
            false,
            Some(reason),
            None,
            0,
            &scopes,
            &audience,
            authenticated.then_some(if method == "client_secret" {
                "client_secret"
            } else {
                "private_key_jwt"
            }),
        ),
        None,
    );
}

/// Introspection (RFC 7662). Claims go to admins, responders, the token's subject and the agents
/// in its chain (and, once the catalogue lands, the resource it is for); any other
/// authenticated caller gets `{"active": false}`.
#[utoipa::path(post, path = "/oauth/introspect", tag = "tokens",
    request_body(content = inline(TokenForm), content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = Introspection), (status = 401, body = OAuthErrorBody)))]
pub async fn introspect(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let work = async {
        let form = form_body(&headers, &body)?;
        let client = client_credentials(authorization(&headers)?, &form)?;
        let t = &state.tokens;
        let caller = t
            .authenticate_caller(client, &t.introspection_endpoint)
            .await?;
        let token = form.required("token")?;
        form.one("token_type_hint")?;
        t.catch_up(token).await;
        Ok::<_, OAuthError>(t.introspect_for(&caller, token))
    };
    match guarded(&state, peer, &headers, &body, true, work).await {
        Ok(answer) => no_store(answer),
        Err(response) => response,
    }
}

/// Revocation (RFC 7009): always 200 for an authenticated caller, whether the token is
/// unknown, live or not the caller's to revoke (then nothing happens); revoking a token also
/// revokes every token exchanged from it.
#[utoipa::path(post, path = "/oauth/revoke", tag = "tokens",
    request_body(content = inline(TokenForm), content_type = "application/x-www-form-urlencoded"),
    responses((status = 200), (status = 400, body = OAuthErrorBody),
        (status = 401, body = OAuthErrorBody)))]
pub async fn revoke(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let work = async {
        let form = form_body(&headers, &body)?;
        let client = client_credentials(authorization(&headers)?, &form)?;
        let t = &state.tokens;
        let caller = t
            .authenticate_caller(client, &t.revocation_endpoint)
            .await?;
        t.revoke(&caller, &form).await
    };
    match guarded(&state, peer, &headers, &body, true, work).await {
        Ok(_) => (StatusCode::OK, [(header::CACHE_CONTROL, "no-store")]).into_response(),
        Err(response) => response,
    }
}

/// Mint a person access token (at most one hour) for yourself: the `subject_token` an agent
/// exchanges, for registries without an identity provider.
#[utoipa::path(post, path = "/v1/me/access-token", tag = "tokens",
    request_body = MintAccessToken, security(("bearer" = [])),
    responses((status = 201, body = MintedAccessToken), (status = 422, body = ApiErrorBody)))]
pub async fn mint_access_token(
    State(state): State<AppState>,
    caller: Caller,
    MaybeJson(req): MaybeJson<MintAccessToken>,
) -> Result<Response, ApiError> {
    let ttl = req.ttl_seconds.unwrap_or(600);
    if !(60..=3600).contains(&ttl) {
        return Err(ApiError::invalid(
            "invalid_ttl",
            "ttl_seconds must be between 60 and 3600",
        ));
    }
    let scopes = match req.scope.as_deref() {
        None => Vec::new(),
        Some(text) => {
            parse_scopes(text).map_err(|e| ApiError::invalid("invalid_scope", e.description))?
        }
    };
    if let Some(agent) = &req.may_act {
        check_line("may_act", agent, 128)?;
        let id = agent.clone();
        if blocking(&state, move |s| s.agent_token_facts(&id))
            .await?
            .is_none()
        {
            return Err(ApiError::invalid(
                "unknown_agent",
                format!("no agent with id {agent}"),
            ));
        }
    }
    let minted = state
        .tokens
        .mint_person_token(
            &caller.person,
            ttl as i64,
            req.may_act,
            scopes,
            &MintingApiToken {
                id: caller.token_id.clone(),
                expires_at: caller.token_expires_at.timestamp(),
            },
        )
        .await
        .map_err(|e| match e.status {
            503 => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", e.description),
            // The API token was revoked (or its person left) while minting.
            400 => ApiError::unauthenticated("token_revoked", e.description),
            _ => ApiError::internal(e.description),
        })?;
    let mut response = no_store(minted);
    *response.status_mut() = StatusCode::CREATED;
    Ok(response)
}

fn facts_of(detail: &crate::model::AgentDetail) -> AgentFacts {
    AgentFacts {
        id: detail.agent.id.clone(),
        owner_email: detail.agent.owner.clone(),
        status: detail.agent.status,
    }
}

/// Register a credential for an agent (the owner or an admin): an Ed25519 public key (JWK or
/// PEM), or a static secret, generated here and shown once (flagged as technical debt).
#[utoipa::path(post, path = "/v1/agents/{id}/credentials", tag = "tokens",
    params(("id" = String, Path)), request_body = AddCredential, security(("bearer" = [])),
    responses((status = 201, body = AddedCredential), (status = 403, body = ApiErrorBody),
        (status = 409, body = ApiErrorBody), (status = 422, body = ApiErrorBody)))]
pub async fn add_credential(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<AddCredential>,
) -> Result<(StatusCode, Json<AddedCredential>), ApiError> {
    let (credential, secret) = new_credential(&req)?;
    let actor = caller.actor();
    let person = caller.person;
    let stored: Credential = blocking(&state, move |s| {
        s.add_credential(&actor, &id, &credential, &|f| {
            policy::may_manage_agent(&person, f)
        })
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

/// The credential an [`AddCredential`] asks for, ready to store: a parsed public key, or a
/// freshly generated static secret (returned once, stored only as its hash). Shared by agents
/// and catalogued resources.
pub fn new_credential(req: &AddCredential) -> Result<(NewCredential, Option<String>), ApiError> {
    if let Some(label) = &req.label {
        check_line("label", label, 128)?;
    }
    Ok(match req.kind {
        CredentialKind::PublicKey => {
            let text = req.public_key.as_deref().ok_or_else(|| {
                ApiError::invalid(
                    "missing_public_key",
                    "a public-key credential needs public_key",
                )
            })?;
            let key = parse_agent_public_key(text)
                .map_err(|e| ApiError::invalid("invalid_public_key", e))?;
            (
                NewCredential {
                    id: format!("key_{}", &key.fingerprint[..16]),
                    kind: CredentialKind::PublicKey,
                    label: req.label.clone().unwrap_or_else(|| "public key".into()),
                    fingerprint: key.fingerprint,
                    material: key.jwk_text,
                },
                None,
            )
        }
        CredentialKind::StaticSecret => {
            if req.public_key.is_some() {
                return Err(ApiError::invalid(
                    "unexpected_public_key",
                    "a static secret is generated by the registry; send no public_key",
                ));
            }
            let secret = crate::registry::http::auth::new_api_token().replacen("stw_", "sts_", 1);
            let hash = secret_hash(&secret);
            (
                NewCredential {
                    id: format!("sec_{}", &hash[..16]),
                    kind: CredentialKind::StaticSecret,
                    label: req.label.clone().unwrap_or_else(|| "static secret".into()),
                    fingerprint: format!("sha256:{}", &hash[..16]),
                    material: hash,
                },
                Some(secret),
            )
        }
    })
}

/// Disable one of an agent's credentials (the owner, an admin, or a responder).
#[utoipa::path(post, path = "/v1/agents/{id}/credentials/{credential_id}/disable", tag = "tokens",
    params(("id" = String, Path), ("credential_id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = Credential), (status = 404, body = ApiErrorBody)))]
pub async fn disable_credential(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, credential_id)): ApiPath<(String, String)>,
) -> Result<Json<Credential>, ApiError> {
    let actor = caller.actor();
    let person = caller.person;
    Ok(Json(
        blocking(&state, move |s| {
            // Disabling a key is a brake like revocation: responders may pull it too.
            s.disable_credential(&actor, &id, &credential_id, &|f| {
                policy::may_revoke_agent(&person, f)
            })
        })
        .await?,
    ))
}

/// An agent's live tokens (subject, scopes, audience, expiry, what each was exchanged from) and
/// its exchanges in the last hour.
#[utoipa::path(get, path = "/v1/agents/{id}/tokens", tag = "tokens",
    params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = AgentTokens), (status = 403, body = ApiErrorBody),
        (status = 404, body = ApiErrorBody)))]
pub async fn agent_tokens(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let wanted = id.clone();
    let detail = blocking(&state, move |s| s.agent_detail(&wanted))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no agent with id {id}")))?;
    policy::may_read_agent(&caller.person, &facts_of(&detail))?;
    let now = state.store.clock().unix();
    let time = |t: i64| chrono::DateTime::from_timestamp(t, 0).unwrap_or_default();
    let tokens = state
        .tokens
        .live()
        .issued_to(&id, now)
        .into_iter()
        .map(|r| LiveToken {
            jti: r.jti,
            subject: r.subject,
            client_id: r.client_id.unwrap_or_default(),
            actors: r.actors,
            scopes: r.scopes,
            audience: r.audience,
            issued_at: time(r.issued_at),
            expires_at: time(r.expires_at),
            exchanged_from: r.parent_jti,
        })
        .collect();
    let agent_id = id.clone();
    let exchanges_last_hour =
        blocking(&state, move |s| s.exchanges_since(&agent_id, now - 3600)).await?;
    Ok(no_store(AgentTokens {
        agent_id: id,
        tokens,
        exchanges_last_hour,
    }))
}
