//! Agents that exchange tokens, as the token tests drive them: an agent registered with an
//! Ed25519 key, its one-time assertions (dated by the registry's clock, so that they stay valid
//! when a test moves that clock), person tokens, RFC 8693 exchanges and their error bodies.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use steward::model::tokens::{GRANT_TOKEN_EXCHANGE, TOKEN_TYPE_ACCESS, TOKEN_TYPE_JWT};

use super::{Member, Registry, Reply};

pub const AUD: &str = "https://crm.example.com";

pub struct Agent {
    pub id: String,
    pub key: SigningKey,
    pub credential: String,
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

pub fn random_text() -> String {
    use rand::RngCore;
    let mut b = [0u8; 12];
    rand::rng().fill_bytes(&mut b);
    B64.encode(b)
}

impl Agent {
    /// A fresh one-time assertion for the token endpoint.
    pub fn assertion(&self, reg: &Registry) -> String {
        self.assertion_to(&format!("{}/oauth/token", reg.url), reg.clock.unix())
    }

    /// A fresh one-time assertion for the token endpoint `aud`, dated `now`.
    pub fn assertion_to(&self, aud: &str, now: i64) -> String {
        let claims = json!({
            "iss": self.id, "sub": self.id, "aud": aud,
            "iat": now, "exp": now + 60, "jti": random_text(),
        });
        let der = self.key.to_pkcs8_der().unwrap();
        jsonwebtoken::encode(
            &Header::new(Algorithm::EdDSA),
            &claims,
            &EncodingKey::from_ed_der(der.as_bytes()),
        )
        .unwrap()
    }
}

/// Registers an agent (as the admin) with an owner, scopes and an optional parent, and an
/// Ed25519 key.
pub async fn agent(reg: &Registry, owner: &str, scopes: &[&str], parent: Option<&str>) -> Agent {
    let mut body =
        json!({"name": format!("agent-{}", random_text()), "owner": owner, "scopes": scopes});
    if let Some(p) = parent {
        body["kind"] = json!("sub-agent");
        body["parent_id"] = json!(p);
    }
    let id = reg.register_with(body).await;
    with_key(reg, id).await
}

/// Gives the registered agent `id` a fresh Ed25519 key (as the admin).
pub async fn with_key(reg: &Registry, id: String) -> Agent {
    let mut seed = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut seed);
    let key = SigningKey::from_bytes(&seed);
    let jwk =
        json!({"kty": "OKP", "crv": "Ed25519", "x": B64.encode(key.verifying_key().as_bytes())});
    let credential = reg
        .post(
            &format!("/v1/agents/{id}/credentials"),
            &reg.admin,
            json!({"kind": "public-key", "public_key": jwk.to_string()}),
        )
        .await
        .expect(201)["credential"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    Agent {
        id,
        key,
        credential,
    }
}

/// A person access token minted by `who` (`POST /v1/me/access-token`).
pub async fn mint(reg: &Registry, who: &Member, body: Value) -> Value {
    reg.post("/v1/me/access-token", who, body)
        .await
        .expect(201)
        .clone()
}

pub async fn person_token(reg: &Registry, who: &Member) -> String {
    mint(reg, who, json!({"ttl_seconds": 600}))
        .await
        .get("access_token")
        .and_then(Value::as_str)
        .unwrap()
        .to_string()
}

pub async fn form(
    reg: &Registry,
    path: &str,
    bearer: Option<&str>,
    params: &[(&str, &str)],
) -> Reply {
    form_at(&reg.http, &reg.url, path, bearer, params).await
}

/// A form POST to any registry (`base` without a trailing slash), e.g. one replica of several.
pub async fn form_at(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    bearer: Option<&str>,
    params: &[(&str, &str)],
) -> Reply {
    let mut request = http.post(format!("{base}{path}")).form(params);
    if let Some(b) = bearer {
        request = request.bearer_auth(b);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    Reply {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

pub async fn exchange(reg: &Registry, subject: &str, agent: &Agent, scope: &str) -> Reply {
    exchange_to(reg, subject, agent, scope, AUD).await
}

/// An exchange addressed to `audience`.
pub async fn exchange_to(
    reg: &Registry,
    subject: &str,
    agent: &Agent,
    scope: &str,
    audience: &str,
) -> Reply {
    form(
        reg,
        "/oauth/token",
        None,
        &[
            ("grant_type", GRANT_TOKEN_EXCHANGE),
            ("subject_token", subject),
            ("subject_token_type", TOKEN_TYPE_ACCESS),
            ("actor_token", &agent.assertion(reg)),
            ("actor_token_type", TOKEN_TYPE_JWT),
            ("scope", scope),
            ("audience", audience),
        ],
    )
    .await
}

/// An exchange that must succeed; returns the issued token.
pub async fn exchanged(reg: &Registry, subject: &str, agent: &Agent, scope: &str) -> String {
    let reply = exchange(reg, subject, agent, scope).await;
    reply.expect(200)["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

pub async fn delegate(
    reg: &Registry,
    who: &Member,
    agent_id: &str,
    scopes: &[&str],
    seconds: i64,
) -> Reply {
    let until = reg.clock.now() + chrono::Duration::seconds(seconds);
    reg.post(
        "/v1/me/delegations",
        who,
        json!({"agent_id": agent_id, "scopes": scopes, "expires_at": until}),
    )
    .await
}

pub fn error_of(reply: &Reply) -> (u16, String, String) {
    (
        reply.status,
        reply.body["error"].as_str().unwrap_or_default().to_string(),
        reply.body["error_description"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

/// Whether introspection (as the admin) calls `token` active.
pub async fn active(reg: &Registry, token: &str) -> bool {
    let reply = form(
        reg,
        "/oauth/introspect",
        Some(&reg.admin.token),
        &[("token", token)],
    )
    .await;
    reply.expect(200)["active"] == json!(true)
}
