//! `steward receive --stream-config FILE`: the smallest correct Shared Signals receiver, and
//! the pattern for a resource server. It authenticates as a catalogued resource (its secret),
//! registers (or updates) a push stream to an address it listens on, and for every SET pushed
//! to it (RFC 8935): checks the push's `Authorization`, the media type, the header's
//! `typ: secevent+jwt`, the signature against the registry's JWKS (by `kid`, fetched again
//! once for an unknown `kid`), `iss` and `aud`; answers 202, or 400 with the RFC 8935 error;
//! drops a SET it already received (delivery is at least once); keeps a cache of revoked
//! agents, tokens and people (a resource server checks it before it accepts a JWT); and
//! prints each event on one line (`--json`: one JSON object a line).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, anyhow, bail};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Value, json};

use super::output::safe;
use crate::model::signals::{PUSH, StreamConfiguration, TransmitterConfiguration};

#[derive(clap::Args, Debug)]
pub struct ReceiveArgs {
    /// A TOML file: `registry` (its URL), `resource` (the catalogued resource receiving),
    /// `secret` or `secret_env` (its static secret, or the variable holding it), and optionally
    /// `listen` (default 127.0.0.1:0), `endpoint_url` (what the registry posts to, when a
    /// TLS proxy fronts the receiver), `description`, `events`, `push_authorization`.
    #[arg(long, value_name = "FILE")]
    pub stream_config: PathBuf,
    /// One JSON object per event instead of a line of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct StreamConfigFile {
    registry: String,
    resource: String,
    secret: Option<String>,
    secret_env: Option<String>,
    listen: Option<String>,
    endpoint_url: Option<String>,
    description: Option<String>,
    events: Option<Vec<String>>,
    push_authorization: Option<String>,
}

const DEFAULT_DESCRIPTION: &str = "steward receive";

struct Receiver {
    issuer: String,
    audience: String,
    jwks_uri: String,
    push_authorization: String,
    http: reqwest::Client,
    jwks: tokio::sync::Mutex<JwkSet>,
    json: bool,
    cache: Mutex<Cache>,
}

/// What the receiver has heard: SETs already handled (at-least-once delivery), and what was
/// revoked. A resource server refuses a JWT whose agent (`act.sub`), person (`sub`) or `jti`
/// is in here before it accepts it.
#[derive(Default)]
struct Cache {
    seen_sets: HashSet<String>,
    revoked_agents: HashSet<String>,
    revoked_tokens: HashSet<String>,
    people_left: HashSet<String>,
}

pub async fn run(args: ReceiveArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.stream_config)
        .with_context(|| format!("cannot read {}", args.stream_config.display()))?;
    let file: StreamConfigFile = toml::from_str(&text).with_context(|| {
        format!(
            "{} is not a stream configuration",
            args.stream_config.display()
        )
    })?;
    let secret = match (&file.secret, &file.secret_env) {
        (Some(s), None) => s.clone(),
        (None, Some(var)) => std::env::var(var)
            .with_context(|| format!("secret_env names {var}, which is not set"))?,
        _ => bail!("the stream configuration needs exactly one of `secret` and `secret_env`"),
    };
    let listen: SocketAddr = file
        .listen
        .as_deref()
        .unwrap_or("127.0.0.1:0")
        .parse()
        .map_err(|e| anyhow!("listen: {e} (an address such as 127.0.0.1:8443)"))?;
    if !listen.ip().is_loopback() && file.endpoint_url.is_none() {
        bail!(
            "listen {listen} is not a loopback address: the registry pushes to http only on \
             loopback; put a TLS proxy in front and name it as `endpoint_url`"
        );
    }
    let registry = file.registry.trim_end_matches('/').to_string();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()?;

    let meta: TransmitterConfiguration = get_json(
        &http,
        &format!("{registry}/.well-known/ssf-configuration"),
        None,
    )
    .await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let local = listener.local_addr()?;
    let endpoint = file
        .endpoint_url
        .clone()
        .unwrap_or_else(|| format!("http://{local}/events"));
    let push_authorization = file
        .push_authorization
        .clone()
        .unwrap_or_else(|| format!("Bearer {}", hex::encode(rand::random::<[u8; 24]>())));
    let basic = {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{secret}", file.resource))
        )
    };
    let description = file
        .description
        .clone()
        .unwrap_or_else(|| DEFAULT_DESCRIPTION.to_string());
    let stream = register(
        &http,
        &meta.configuration_endpoint,
        &basic,
        json!({
            "delivery": {"method": PUSH, "endpoint_url": endpoint,
                         "authorization_header": push_authorization},
            "description": description,
            "events_requested": file.events,
        }),
    )
    .await?;
    let jwks: JwkSet = get_json(&http, &meta.jwks_uri, None).await?;
    let receiver = Arc::new(Receiver {
        issuer: meta.issuer.clone(),
        audience: stream.aud.clone(),
        jwks_uri: meta.jwks_uri.clone(),
        push_authorization,
        http,
        jwks: tokio::sync::Mutex::new(jwks),
        json: args.json,
        cache: Mutex::new(Cache::default()),
    });
    eprintln!(
        "steward receive: stream {} for {} receives at {endpoint}; SETs verified against {} \
         (iss {}, aud {})",
        stream.stream_id, stream.aud, meta.jwks_uri, meta.issuer, stream.aud
    );
    let app = axum::Router::new()
        .route("/events", axum::routing::post(push))
        .with_state(receiver);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

async fn get_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
    auth: Option<&str>,
) -> anyhow::Result<T> {
    let mut req = http.get(url);
    if let Some(a) = auth {
        req = req.header(header::AUTHORIZATION, a);
    }
    let resp = req.send().await.with_context(|| format!("GET {url}"))?;
    let status = resp.status();
    let body = resp.text().await?;
    if !status.is_success() {
        bail!("GET {url}: {status}: {}", safe(&body));
    }
    serde_json::from_str(&body).with_context(|| format!("GET {url}: unexpected answer"))
}

/// Updates this receiver's stream with the same description, or creates one.
async fn register(
    http: &reqwest::Client,
    endpoint: &str,
    basic: &str,
    mut body: Value,
) -> anyhow::Result<StreamConfiguration> {
    if body["events_requested"].is_null() {
        body.as_object_mut().map(|o| o.remove("events_requested"));
    }
    let existing: Vec<StreamConfiguration> = get_json(http, endpoint, Some(basic)).await?;
    let mine = existing
        .iter()
        .find(|s| s.description.as_deref() == body["description"].as_str());
    let (method, status_ok) = match mine {
        Some(s) => {
            body["stream_id"] = json!(s.stream_id);
            (reqwest::Method::PUT, StatusCode::OK)
        }
        None => (reqwest::Method::POST, StatusCode::CREATED),
    };
    let resp = http
        .request(method.clone(), endpoint)
        .header(header::AUTHORIZATION, basic)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("{method} {endpoint}"))?;
    let status = resp.status();
    let text = resp.text().await?;
    if status.as_u16() != status_ok.as_u16() {
        bail!("{method} {endpoint}: {status}: {}", safe(&text));
    }
    serde_json::from_str(&text).with_context(|| format!("{method} {endpoint}: unexpected answer"))
}

/// RFC 8935 §2.3: an error the transmitter records and does not retry.
fn refuse(status: StatusCode, err: &str, description: impl Into<String>) -> Response {
    (
        status,
        axum::Json(json!({"err": err, "description": description.into()})),
    )
        .into_response()
}

async fn push(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: String) -> Response {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if auth != Some(r.push_authorization.as_str()) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "authentication_failed",
            "the push does not carry this stream's authorization",
        );
    }
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !media.starts_with("application/secevent+jwt") {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body must be application/secevent+jwt",
        );
    }
    match r.verify(body.trim()).await {
        Ok(claims) => {
            r.handle(&claims);
            StatusCode::ACCEPTED.into_response()
        }
        Err((err, description)) => refuse(StatusCode::BAD_REQUEST, err, description),
    }
}

impl Receiver {
    /// The SET's claims, when it is one: `typ: secevent+jwt`, signed by a key of the JWKS,
    /// from our issuer, for us, with a `jti` and events.
    async fn verify(&self, set: &str) -> Result<Value, (&'static str, String)> {
        let head = jsonwebtoken::decode_header(set)
            .map_err(|e| ("invalid_request", format!("not a JWT: {e}")))?;
        if head.typ.as_deref() != Some("secevent+jwt") {
            return Err((
                "invalid_request",
                format!(
                    "typ is {:?}, not secevent+jwt: not a Security Event Token",
                    head.typ
                ),
            ));
        }
        if head.alg != Algorithm::EdDSA {
            return Err(("invalid_key", format!("alg {:?} is not EdDSA", head.alg)));
        }
        let kid = head
            .kid
            .ok_or(("invalid_key", "the SET names no kid".to_string()))?;
        let key = self.key(&kid).await?;
        let mut v = Validation::new(Algorithm::EdDSA);
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[&self.audience]);
        v.set_required_spec_claims(&["iss", "aud"]);
        v.validate_exp = false;
        let claims = jsonwebtoken::decode::<Value>(set, &key, &v)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind as K;
                match e.kind() {
                    K::InvalidIssuer => ("invalid_issuer", format!("iss is not {}", self.issuer)),
                    K::InvalidAudience => {
                        ("invalid_audience", format!("aud is not {}", self.audience))
                    }
                    K::InvalidSignature => ("invalid_key", "the signature does not verify".into()),
                    _ => ("invalid_request", e.to_string()),
                }
            })?
            .claims;
        if !claims["jti"].is_string() || !claims["events"].is_object() {
            return Err(("invalid_request", "a SET carries a jti and events".into()));
        }
        Ok(claims)
    }

    /// The key named `kid`; the JWKS is fetched again once when it does not hold it (a key
    /// rotated in since).
    async fn key(&self, kid: &str) -> Result<DecodingKey, (&'static str, String)> {
        let mut jwks = self.jwks.lock().await;
        if jwks.find(kid).is_none()
            && let Ok(resp) = self.http.get(&self.jwks_uri).send().await
            && let Ok(fresh) = resp.json::<JwkSet>().await
        {
            *jwks = fresh;
        }
        let jwk = jwks.find(kid).ok_or((
            "invalid_key",
            format!("kid {kid} is not in {}", self.jwks_uri),
        ))?;
        DecodingKey::from_jwk(jwk).map_err(|e| ("invalid_key", e.to_string()))
    }

    /// Records what the SET revokes and prints it, once per SET.
    fn handle(&self, claims: &Value) {
        let jti = claims["jti"].as_str().unwrap_or_default().to_string();
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if !cache.seen_sets.insert(jti.clone()) {
            return;
        }
        let sub = &claims["sub_id"];
        let member = |name: &str, format: &str, field: &str| -> Option<String> {
            let m = if sub["format"] == "complex" {
                &sub[name]
            } else {
                sub
            };
            (m["format"] == format)
                .then(|| m[field].as_str().map(str::to_string))
                .flatten()
        };
        let agent = member("application", "iss_sub", "sub");
        let user = member("user", "email", "email");
        let token = member("session", "opaque", "id");
        let events = claims["events"].as_object().cloned().unwrap_or_default();
        for (kind, body) in &events {
            let short = kind.rsplit('/').next().unwrap_or(kind).to_string();
            if short == "session-revoked" {
                match (&token, &agent, &user) {
                    (Some(t), _, _) => {
                        cache.revoked_tokens.insert(t.clone());
                    }
                    (None, Some(a), _) => {
                        cache.revoked_agents.insert(a.clone());
                    }
                    (None, None, Some(u)) => {
                        cache.people_left.insert(u.clone());
                    }
                    _ => {}
                }
            }
            let reason = body["reason_admin"]["en"].as_str().map(str::to_string);
            let line = if self.json {
                json!({
                    "jti": jti, "txn": claims["txn"], "iat": claims["iat"], "event": kind,
                    "agent": agent, "user": user, "token": token,
                    "initiating_entity": body["initiating_entity"], "reason": reason,
                    "scope": body["claims"]["scope"],
                    "revoked_agents": cache.revoked_agents.len(),
                    "revoked_tokens": cache.revoked_tokens.len(),
                })
                .to_string()
            } else {
                let mut parts = vec![short.clone()];
                for (k, v) in [("agent", &agent), ("user", &user), ("token", &token)] {
                    if let Some(v) = v {
                        parts.push(format!("{k}={}", safe(v)));
                    }
                }
                if let Some(r) = &reason {
                    parts.push(format!("reason={:?}", safe(r)));
                }
                if let Some(t) = claims["txn"].as_str() {
                    parts.push(format!("txn={}", safe(t)));
                }
                parts.push(format!(
                    "(revoked: {} agents, {} tokens, {} people)",
                    cache.revoked_agents.len(),
                    cache.revoked_tokens.len(),
                    cache.people_left.len()
                ));
                parts.join(" ")
            };
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }
}
