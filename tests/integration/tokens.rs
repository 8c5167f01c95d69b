//! The token service against a real registry on a loopback port over a real SQLite file.
//!
//! Issued tokens are checked with an independent JWT library (`jsonwebtoken`, RustCrypto
//! backend) against the JWKS the registry serves; agents' assertions are built with it too.

use crate::support;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Value, json};

use steward::model::Actor;
use steward::model::tokens::{GRANT_TOKEN_EXCHANGE, TOKEN_TYPE_ACCESS, TOKEN_TYPE_JWT};
use steward::registry::store::prelude::*;
use steward::registry::store::{SqliteStore, TrustedIssuer};
use steward::registry::tokens::TokenSettings;

struct Registry {
    base: String,
    http: reqwest::Client,
    admin: String,
    store: Arc<SqliteStore>,
    db: PathBuf,
    /// The registry's clock (moved ahead instead of sleeping for an expiry).
    clock: steward::registry::clock::Clock,
    served: support::Served,
}

fn settings() -> TokenSettings {
    TokenSettings {
        refresh_every: Duration::from_millis(200),
        ..TokenSettings::default()
    }
}

/// These tests fail to authenticate on purpose, many times, from one address; the
/// perimeter's failure budgets are tested in tests/integration/perimeter.rs.
fn launch() -> support::Launch {
    support::Launch::new().tokens(settings()).guards(
        steward::registry::http::guards::GuardSettings {
            source_failures_per_minute: 100_000,
            credential_failures_per_minute: 100_000,
            ..Default::default()
        },
    )
}

impl Registry {
    fn from(served: support::Served, admin: String) -> Registry {
        Registry {
            base: served.url.clone(),
            http: reqwest::Client::new(),
            admin,
            store: served.store.clone(),
            db: served.db.clone(),
            clock: served.clock.clone(),
            served,
        }
    }

    async fn start() -> Registry {
        let served = launch().serve().await;
        let admin = served.admin.token.clone();
        Registry::from(served, admin)
    }

    /// Stops the server and starts a new one over the same database file (and clock).
    async fn restart(self) -> Registry {
        let Registry {
            admin,
            served,
            store,
            ..
        } = self;
        drop(store);
        let served = served.restart_with(launch()).await;
        Registry::from(served, admin)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn token_endpoint(&self) -> String {
        self.url("/oauth/token")
    }

    async fn json(
        &self,
        method: reqwest::Method,
        path: &str,
        bearer: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, self.url(path))
            .bearer_auth(bearer);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, bearer: &str, body: Value) -> Value {
        let (status, v) = self
            .json(reqwest::Method::POST, path, bearer, Some(body))
            .await;
        assert!((200..300).contains(&status), "POST {path}: {status} {v}");
        v
    }

    async fn person(&self, email: &str) -> String {
        self.post(
            "/v1/people",
            &self.admin,
            json!({"email": email, "display_name": email}),
        )
        .await;
        let issued = self
            .post(
                &format!("/v1/people/{email}/tokens"),
                &self.admin,
                json!({}),
            )
            .await;
        // An admin-issued token is an invitation: the person redeems it for their own token.
        let invitation = issued["token"].as_str().unwrap().to_string();
        let redeemed = self.post("/v1/me/tokens", &invitation, json!({})).await;
        redeemed["token"].as_str().unwrap().to_string()
    }

    /// Registers an agent with scopes and an Ed25519 key; returns it.
    async fn agent(&self, name: &str, scopes: &[&str], parent: Option<&str>) -> TestAgent {
        let mut body = json!({"name": name, "owner": "admin@example.com", "scopes": scopes});
        if let Some(p) = parent {
            body["kind"] = json!("sub-agent");
            body["parent_id"] = json!(p);
        }
        let agent = self.post("/v1/agents", &self.admin, body).await;
        let id = agent["id"].as_str().unwrap().to_string();
        let key = new_key();
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": B64.encode(key.verifying_key().as_bytes())});
        let added = self
            .post(
                &format!("/v1/agents/{id}/credentials"),
                &self.admin,
                json!({"kind": "public-key", "public_key": jwk.to_string()}),
            )
            .await;
        TestAgent {
            id,
            key,
            credential_id: added["credential"]["id"].as_str().unwrap().to_string(),
        }
    }

    /// The person behind `bearer` consents that the agent may act for them with these scopes
    /// (the agents here are the admin's, so another person's token needs this or `may_act`).
    async fn delegate(&self, bearer: &str, agent_id: &str, scopes: &[&str]) {
        let until = chrono::Utc::now() + chrono::Duration::days(1);
        self.post(
            "/v1/me/delegations",
            bearer,
            json!({"agent_id": agent_id, "scopes": scopes, "expires_at": until}),
        )
        .await;
    }

    async fn mint(&self, bearer: &str, may_act: Option<&str>) -> String {
        let mut body = json!({"ttl_seconds": 600});
        if let Some(a) = may_act {
            body["may_act"] = json!(a);
        }
        let v = self.post("/v1/me/access-token", bearer, body).await;
        v["access_token"].as_str().unwrap().to_string()
    }

    async fn form(&self, path: &str, auth: Option<&str>, params: &[(&str, &str)]) -> (u16, Value) {
        let mut req = self.http.post(self.url(path)).form(params);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        if status == 200 || status >= 400 {
            assert_eq!(
                resp.headers()
                    .get("cache-control")
                    .and_then(|v| v.to_str().ok()),
                Some("no-store"),
                "{path} must not be cached"
            );
        }
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn exchange(
        &self,
        subject: &str,
        assertion: &str,
        scope: &str,
        audience: &str,
    ) -> (u16, Value) {
        self.form(
            "/oauth/token",
            None,
            &[
                ("grant_type", GRANT_TOKEN_EXCHANGE),
                ("subject_token", subject),
                ("subject_token_type", TOKEN_TYPE_ACCESS),
                ("actor_token", assertion),
                ("actor_token_type", TOKEN_TYPE_JWT),
                ("scope", scope),
                ("audience", audience),
            ],
        )
        .await
    }

    async fn introspect(&self, token: &str) -> Value {
        let (status, v) = self
            .form(
                "/oauth/introspect",
                Some(&format!("Bearer {}", self.admin)),
                &[("token", token)],
            )
            .await;
        assert_eq!(status, 200, "{v}");
        v
    }

    async fn jwks(&self) -> Value {
        self.http
            .get(self.url("/.well-known/jwks.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Verifies a token with jsonwebtoken against the served JWKS; returns its claims.
    async fn verify(&self, token: &str, audience: &str) -> (Header, Value) {
        let header = jsonwebtoken::decode_header(token).unwrap();
        let kid = header.kid.clone().expect("issued tokens name their key");
        let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(self.jwks().await).unwrap();
        let jwk = set.find(&kid).expect("the signing key is in the JWKS");
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&self.base]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data =
            jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
                .unwrap_or_else(|e| panic!("the issued token does not verify: {e}"));
        (data.header, data.claims)
    }
}

struct TestAgent {
    id: String,
    key: SigningKey,
    credential_id: String,
}

fn new_key() -> SigningKey {
    use rand::RngCore;
    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    SigningKey::from_bytes(&seed)
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn random_jti() -> String {
    use rand::RngCore;
    let mut b = [0u8; 12];
    rand::rng().fill_bytes(&mut b);
    B64.encode(b)
}

fn sign_ed(key: &SigningKey, header: Header, claims: &Value) -> String {
    let der = key.to_pkcs8_der().unwrap();
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(der.as_bytes())).unwrap()
}

impl TestAgent {
    fn claims(&self, aud: &str) -> Value {
        json!({"iss": self.id, "sub": self.id, "aud": aud, "iat": now(), "exp": now() + 60, "jti": random_jti()})
    }

    fn assertion(&self, aud: &str) -> String {
        self.assertion_with(self.claims(aud))
    }

    fn assertion_with(&self, claims: Value) -> String {
        sign_ed(&self.key, Header::new(Algorithm::EdDSA), &claims)
    }
}

fn error_of(v: &Value) -> &str {
    v["error"].as_str().unwrap_or("<none>")
}

#[tokio::test]
async fn exchanged_tokens_verify_with_an_independent_library_against_the_served_jwks() {
    let r = Registry::start().await;
    let alice = r.person("alice@example.com").await;
    let agent = r
        .agent("mailer", &["mail:send", "crm.orders:read"], None)
        .await;
    r.delegate(&alice, &agent.id, &["mail:send", "crm.orders:read"])
        .await;

    // Discovery.
    let meta: Value = r
        .http
        .get(r.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["issuer"], r.base.as_str());
    assert_eq!(meta["token_endpoint"], r.token_endpoint().as_str());
    assert_eq!(
        meta["introspection_endpoint"],
        r.url("/oauth/introspect").as_str()
    );
    assert_eq!(meta["revocation_endpoint"], r.url("/oauth/revoke").as_str());
    assert_eq!(meta["jwks_uri"], r.url("/.well-known/jwks.json").as_str());
    assert!(
        meta["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!(GRANT_TOKEN_EXCHANGE))
    );
    assert!(
        meta["token_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!(TOKEN_TYPE_ACCESS))
    );

    let subject = r.mint(&alice, None).await;
    let (status, answer) = r
        .exchange(
            &subject,
            &agent.assertion(&r.token_endpoint()),
            "mail:send",
            "https://mail.example.com",
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["issued_token_type"], TOKEN_TYPE_ACCESS);
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["scope"], "mail:send");
    assert_eq!(answer["expires_in"], 600);
    let token = answer["access_token"].as_str().unwrap();

    let (header, claims) = r.verify(token, "https://mail.example.com").await;
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(claims["sub"], "alice@example.com");
    assert_eq!(claims["act"], json!({"sub": agent.id}));
    assert_eq!(claims["scope"], "mail:send");
    assert_eq!(claims["client_id"], agent.id.as_str());
    assert_eq!(claims["aud"], "https://mail.example.com");
    assert_eq!(claims["iss"], r.base.as_str());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        600
    );
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));

    // The same holds for a client authenticating with client_assertion and two audiences.
    let (status, answer) = r
        .form(
            "/oauth/token",
            None,
            &[
                ("grant_type", GRANT_TOKEN_EXCHANGE),
                ("subject_token", &subject),
                ("subject_token_type", TOKEN_TYPE_JWT),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", &agent.assertion(&r.base)),
                ("scope", "crm.orders:read"),
                ("resource", "https://crm.example.com/api"),
                ("audience", "https://crm.example.com"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let (_, claims) = r
        .verify(
            answer["access_token"].as_str().unwrap(),
            "https://crm.example.com",
        )
        .await;
    assert_eq!(
        claims["aud"],
        json!(["https://crm.example.com", "https://crm.example.com/api"])
    );
    assert_eq!(claims["scope"], "crm.orders:read");

    // Usage feeds the scope diffs: each used scope's last use, the agent's last sight.
    let detail = r
        .json(
            reqwest::Method::GET,
            &format!("/v1/agents/{}", agent.id),
            &r.admin,
            None,
        )
        .await
        .1;
    assert!(detail["last_seen_at"].is_string(), "{detail}");
    let grants = detail["grants"].as_array().unwrap();
    assert!(
        grants.iter().all(|g| g["last_used_at"].is_string()),
        "{detail}"
    );
    let key = detail["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == agent.credential_id.as_str())
        .unwrap();
    assert!(key["last_used_at"].is_string());

    // The console's view: live tokens and the exchange rate.
    let (status, live) = r
        .json(
            reqwest::Method::GET,
            &format!("/v1/agents/{}/tokens", agent.id),
            &r.admin,
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(live["exchanges_last_hour"], 2);
    let tokens = live["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 2);
    assert!(
        tokens
            .iter()
            .all(|t| t["subject"] == "alice@example.com" && t["exchanged_from"].is_string())
    );
    // Another person without a role may not see it: for them it does not exist.
    let bob = r.person("bob@example.com").await;
    let (status, _) = r
        .json(
            reqwest::Method::GET,
            &format!("/v1/agents/{}/tokens", agent.id),
            &bob,
            None,
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn every_refusal_has_its_oauth_error() {
    let r = Registry::start().await;
    let alice = r.person("alice@example.com").await;
    let agent = r.agent("reporter", &["crm.orders:read"], None).await;
    r.delegate(&alice, &agent.id, &["crm.orders:read"]).await;
    let aud = r.token_endpoint();
    let subject = r.mint(&alice, None).await;
    let scope = "crm.orders:read";
    let target = "https://crm.example.com";

    // Ungranted scope.
    let (s, v) = r
        .exchange(&subject, &agent.assertion(&aud), "crm.orders:write", target)
        .await;
    assert_eq!((s, error_of(&v)), (400, "invalid_scope"), "{v}");
    let (s, v) = r
        .exchange(&subject, &agent.assertion(&aud), "", target)
        .await;
    assert_eq!((s, error_of(&v)), (400, "invalid_scope"), "{v}");

    // Expired assertion.
    let mut claims = agent.claims(&aud);
    claims["exp"] = json!(now() - 120);
    claims["iat"] = json!(now() - 180);
    let (s, v) = r
        .exchange(&subject, &agent.assertion_with(claims), scope, target)
        .await;
    assert_eq!((s, error_of(&v)), (401, "invalid_client"), "{v}");
    assert!(v["error_description"].as_str().unwrap().contains("expired"));

    // An assertion valid for longer than five minutes that does not say when it was made, and
    // one that lives longer than an hour after its iat.
    let mut claims = agent.claims(&aud);
    claims.as_object_mut().unwrap().remove("iat");
    claims["exp"] = json!(now() + 3600);
    let (s, v) = r
        .exchange(&subject, &agent.assertion_with(claims), scope, target)
        .await;
    assert_eq!((s, error_of(&v)), (401, "invalid_client"), "{v}");
    let mut claims = agent.claims(&aud);
    claims["exp"] = json!(now() + 3700);
    let (s, v) = r
        .exchange(&subject, &agent.assertion_with(claims), scope, target)
        .await;
    assert_eq!((s, error_of(&v)), (401, "invalid_client"), "{v}");

    // An assertion addressed to someone else.
    let (s, v) = r
        .exchange(
            &subject,
            &agent.assertion("https://elsewhere.example.com/token"),
            scope,
            target,
        )
        .await;
    assert_eq!((s, error_of(&v)), (401, "invalid_client"), "{v}");

    // Replayed assertion: the first use works, the second is refused.
    let once = agent.assertion(&aud);
    let (s, v) = r.exchange(&subject, &once, scope, target).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = r.exchange(&subject, &once, scope, target).await;
    assert_eq!((s, error_of(&v)), (401, "invalid_client"), "{v}");
    assert!(v["error_description"].as_str().unwrap().contains("replay"));

    // alg none.
    let unsigned = format!(
        "{}.{}.",
        B64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        B64.encode(agent.claims(&aud).to_string())
    );
    let (s, v) = r.exchange(&subject, &unsigned, scope, target).await;
    assert_eq!((s, error_of(&v)), (401, "invalid_client"), "{v}");

    // HMAC with the agent's public key as the secret (both the raw key and its JWK text).
    for secret in [
        agent.key.verifying_key().as_bytes().to_vec(),
        B64.encode(agent.key.verifying_key().as_bytes())
            .into_bytes(),
    ] {
        let forged = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &agent.claims(&aud),
            &EncodingKey::from_secret(&secret),
        )
        .unwrap();
        let (s, v) = r.exchange(&subject, &forged, scope, target).await;
        assert_eq!((s, error_of(&v)), (401, "invalid_client"), "{v}");
        assert!(v["error_description"].as_str().unwrap().contains("HS256"));
    }

    // Signed by a key the agent never registered.
    let stranger = TestAgent {
        id: agent.id.clone(),
        key: new_key(),
        credential_id: String::new(),
    };
    let (s, v) = r
        .exchange(&subject, &stranger.assertion(&aud), scope, target)
        .await;
    assert_eq!((s, error_of(&v)), (401, "invalid_client"), "{v}");
    // An agent that does not exist is refused in the same words: no enumeration of agents.
    let ghost = TestAgent {
        id: "ag_ghost".into(),
        key: new_key(),
        credential_id: String::new(),
    };
    let (s, w) = r
        .exchange(&subject, &ghost.assertion(&aud), scope, target)
        .await;
    assert_eq!((s, error_of(&w)), (401, "invalid_client"), "{w}");
    let words = |v: &Value, id: &str| v["error_description"].as_str().unwrap().replace(id, "ID");
    assert_eq!(words(&v, &agent.id), words(&w, "ag_ghost"));

    // The same attacks on the subject token: none, HMAC with the registry's public key.
    let jwks = r.jwks().await;
    let registry_x = jwks["keys"][0]["x"].as_str().unwrap().to_string();
    let person_claims = json!({"iss": r.base, "sub": "alice@example.com", "aud": r.base, "exp": now() + 300, "jti": random_jti()});
    let none_subject = format!(
        "{}.{}.",
        B64.encode(br#"{"alg":"none"}"#),
        B64.encode(person_claims.to_string())
    );
    let hmac_subject = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &person_claims,
        &EncodingKey::from_secret(registry_x.as_bytes()),
    )
    .unwrap();
    for forged in [none_subject, hmac_subject] {
        let (s, v) = r
            .exchange(&forged, &agent.assertion(&aud), scope, target)
            .await;
        assert_eq!((s, error_of(&v)), (400, "invalid_grant"), "{v}");
    }

    // may_act naming another agent.
    let other = r.agent("other", &["crm.orders:read"], None).await;
    let bound = r.mint(&alice, Some(&other.id)).await;
    let (s, v) = r
        .exchange(&bound, &agent.assertion(&aud), scope, target)
        .await;
    assert_eq!((s, error_of(&v)), (400, "invalid_grant"), "{v}");
    assert!(v["error_description"].as_str().unwrap().contains("may_act"));
    let (s, v) = r
        .exchange(&bound, &other.assertion(&aud), scope, target)
        .await;
    assert_eq!(s, 200, "may_act naming the agent is honoured: {v}");

    // A revoked subject token.
    let doomed = r.mint(&alice, None).await;
    let (s, _) = r
        .form(
            "/oauth/revoke",
            Some(&format!("Bearer {alice}")),
            &[("token", &doomed)],
        )
        .await;
    assert_eq!(s, 200);
    let (s, v) = r
        .exchange(&doomed, &agent.assertion(&aud), scope, target)
        .await;
    assert_eq!((s, error_of(&v)), (400, "invalid_grant"), "{v}");
    assert!(v["error_description"].as_str().unwrap().contains("revoked"));

    // An expired subject token signed by the registry itself.
    let expired = registry_signed(
        &r,
        json!({"iss": r.base, "sub": "alice@example.com", "aud": r.base, "iat": now() - 700, "exp": now() - 100, "jti": random_jti()}),
    );
    let (s, v) = r
        .exchange(&expired, &agent.assertion(&aud), scope, target)
        .await;
    assert_eq!((s, error_of(&v)), (400, "invalid_grant"), "{v}");
    assert!(
        v["error_description"].as_str().unwrap().contains("expired"),
        "{v}"
    );

    // A long-lived API token is never a subject token.
    let (s, v) = r
        .exchange(&alice, &agent.assertion(&aud), scope, target)
        .await;
    assert_eq!((s, error_of(&v)), (400, "invalid_grant"), "{v}");

    // Wrong grant type, missing audience, wrong media type.
    let (s, v) = r
        .form(
            "/oauth/token",
            None,
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!((s, error_of(&v)), (400, "unsupported_grant_type"), "{v}");
    let (s, v) = r
        .form(
            "/oauth/token",
            None,
            &[
                ("grant_type", GRANT_TOKEN_EXCHANGE),
                ("subject_token", &subject),
                ("subject_token_type", TOKEN_TYPE_ACCESS),
                ("actor_token", &agent.assertion(&aud)),
                ("actor_token_type", TOKEN_TYPE_JWT),
                ("scope", scope),
            ],
        )
        .await;
    assert_eq!((s, error_of(&v)), (400, "invalid_request"), "{v}");
    let resp = r
        .http
        .post(r.token_endpoint())
        .json(&json!({"grant_type": GRANT_TOKEN_EXCHANGE}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(error_of(&v), "invalid_request");

    // A disabled key.
    let (s, _) = r
        .json(
            reqwest::Method::POST,
            &format!(
                "/v1/agents/{}/credentials/{}/disable",
                agent.id, agent.credential_id
            ),
            &r.admin,
            None,
        )
        .await;
    assert_eq!(s, 200);
    let (s, v) = r
        .exchange(&subject, &agent.assertion(&aud), scope, target)
        .await;
    assert_eq!((s, error_of(&v)), (401, "invalid_client"), "{v}");
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .contains("disabled"),
        "{v}"
    );

    // A suspended agent (revoked), then a decommissioned one.
    let (s, _) = r
        .json(
            reqwest::Method::POST,
            &format!("/v1/agents/{}/revoke", other.id),
            &r.admin,
            None,
        )
        .await;
    assert_eq!(s, 200);
    let (s, v) = r
        .exchange(&subject, &other.assertion(&aud), scope, target)
        .await;
    assert_eq!((s, error_of(&v)), (401, "invalid_client"), "{v}");
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .contains("suspended"),
        "{v}"
    );
    let third = r.agent("third", &["crm.orders:read"], None).await;
    let (s, _) = r
        .json(
            reqwest::Method::POST,
            &format!("/v1/agents/{}/decommission", third.id),
            &r.admin,
            None,
        )
        .await;
    assert_eq!(s, 200);
    let (s, v) = r
        .exchange(&subject, &third.assertion(&aud), scope, target)
        .await;
    assert_eq!((s, error_of(&v)), (401, "invalid_client"), "{v}");
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .contains("decommissioned"),
        "{v}"
    );

    // A person token may live at most an hour.
    let (s, v) = r
        .json(
            reqwest::Method::POST,
            "/v1/me/access-token",
            &alice,
            Some(json!({"ttl_seconds": 3601})),
        )
        .await;
    assert_eq!(s, 422, "{v}");
}

/// Signs claims with the registry's active key, as read from its database (for tokens the
/// registry itself would have issued, e.g. already expired ones).
fn registry_signed(r: &Registry, claims: Value) -> String {
    let key = r
        .store
        .signing_keys()
        .unwrap()
        .into_iter()
        .find(|k| k.retired_at.is_none())
        .unwrap();
    let seed: [u8; 32] = B64.decode(&key.private_key).unwrap().try_into().unwrap();
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(key.kid);
    sign_ed(&SigningKey::from_bytes(&seed), header, &claims)
}

#[tokio::test]
async fn a_sub_agent_hop_nests_act_and_cannot_widen() {
    let r = Registry::start().await;
    let alice = r.person("alice@example.com").await;
    let planner = r
        .agent("planner", &["crm.orders:read", "crm.orders:write"], None)
        .await;
    let worker = r
        .agent(
            "worker",
            &["crm.orders:read", "crm.orders:write"],
            Some(&planner.id),
        )
        .await;
    let outsider = r.agent("outsider", &["crm.orders:read"], None).await;
    r.delegate(
        &alice,
        &planner.id,
        &["crm.orders:read", "crm.orders:write"],
    )
    .await;
    r.delegate(&alice, &outsider.id, &["crm.orders:read"]).await;
    let aud = r.token_endpoint();
    let subject = r.mint(&alice, None).await;

    let (s, first) = r
        .exchange(
            &subject,
            &planner.assertion(&aud),
            "crm.orders:read",
            "https://crm.example.com",
        )
        .await;
    assert_eq!(s, 200, "{first}");
    let planner_token = first["access_token"].as_str().unwrap();

    let (s, second) = r
        .exchange(
            planner_token,
            &worker.assertion(&aud),
            "crm.orders:read",
            "https://crm.example.com",
        )
        .await;
    assert_eq!(s, 200, "{second}");
    let worker_token = second["access_token"].as_str().unwrap();
    let (_, claims) = r.verify(worker_token, "https://crm.example.com").await;
    assert_eq!(claims["sub"], "alice@example.com");
    assert_eq!(
        claims["act"],
        json!({"sub": worker.id, "act": {"sub": planner.id}})
    );
    assert_eq!(claims["client_id"], worker.id.as_str());
    // Never outlives the token it came from.
    let (_, parent_claims) = r.verify(planner_token, "https://crm.example.com").await;
    assert!(claims["exp"].as_i64() <= parent_claims["exp"].as_i64());
    let info = r.introspect(worker_token).await;
    assert_eq!(
        info["act"],
        json!({"sub": worker.id, "act": {"sub": planner.id}})
    );

    // A hop cannot widen the scopes, and an unrelated agent cannot take the token.
    let (s, v) = r
        .exchange(
            planner_token,
            &worker.assertion(&aud),
            "crm.orders:write",
            "https://crm.example.com",
        )
        .await;
    assert_eq!((s, error_of(&v)), (400, "invalid_scope"), "{v}");
    let (s, v) = r
        .exchange(
            planner_token,
            &outsider.assertion(&aud),
            "crm.orders:read",
            "https://crm.example.com",
        )
        .await;
    assert_eq!((s, error_of(&v)), (400, "invalid_grant"), "{v}");

    // Revoking the planner kills the worker's derived token too.
    let (_, outcome) = r
        .json(
            reqwest::Method::POST,
            &format!("/v1/agents/{}/revoke", planner.id),
            &r.admin,
            None,
        )
        .await;
    assert_eq!(outcome["tokens_revoked"], 2, "{outcome}");
    assert_eq!(r.introspect(worker_token).await, json!({"active": false}));
}

/// The activity timeline reads exchanges with their delegation chain (person first, newest actor
/// last), newest first beside the governance events, and the revoke names the tokens it killed
/// and the latest expiry an offline validator still accepts.
#[tokio::test]
async fn the_timeline_shows_who_acted_on_whose_behalf_and_the_revoke_counts() {
    let r = Registry::start().await;
    let alice = r.person("alice@example.com").await;
    let planner = r.agent("planner", &["crm.orders:read"], None).await;
    let worker = r
        .agent("worker", &["crm.orders:read"], Some(&planner.id))
        .await;
    r.delegate(&alice, &planner.id, &["crm.orders:read"]).await;
    let aud = r.token_endpoint();
    let subject = r.mint(&alice, None).await;
    let (s, first) = r
        .exchange(
            &subject,
            &planner.assertion(&aud),
            "crm.orders:read",
            "https://crm.example.com",
        )
        .await;
    assert_eq!(s, 200, "{first}");
    let (s, second) = r
        .exchange(
            first["access_token"].as_str().unwrap(),
            &worker.assertion(&aud),
            "crm.orders:read",
            "https://crm.example.com",
        )
        .await;
    assert_eq!(s, 200, "{second}");

    let path = format!(
        "/v1/audit/timeline?agent={}&include_exchanges=true",
        worker.id
    );
    let (s, page) = r.json(reqwest::Method::GET, &path, &r.admin, None).await;
    assert_eq!(s, 200, "{page}");
    let exchanges: Vec<&Value> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["source"] == "exchange")
        .collect();
    assert_eq!(
        exchanges.len(),
        1,
        "the worker took part in one exchange: {page}"
    );
    assert_eq!(exchanges[0]["actor_kind"], "agent");
    assert_eq!(exchanges[0]["actor"], "worker");
    assert_eq!(
        exchanges[0]["chain"],
        json!(["alice@example.com", "planner", "worker"]),
        "person first, the newest actor outermost"
    );
    assert_eq!(exchanges[0]["what"], "crm.orders:read");
    assert_eq!(exchanges[0]["outcome"], "issued");
    // Without include_exchanges, governance events only.
    let path = format!("/v1/audit/timeline?agent={}", planner.id);
    let (_, only_events) = r.json(reqwest::Method::GET, &path, &r.admin, None).await;
    assert!(
        only_events["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["source"] == "audit"),
        "{only_events}"
    );

    // Revoking the planner kills both tokens; the result names the latest expiry.
    let (_, outcome) = r
        .json(
            reqwest::Method::POST,
            &format!("/v1/agents/{}/revoke", planner.id),
            &r.admin,
            None,
        )
        .await;
    assert_eq!(outcome["tokens_revoked"], 2, "{outcome}");
    let latest = outcome["latest_token_expiry"].as_str().expect("an expiry");
    let latest = chrono::DateTime::parse_from_rfc3339(latest)
        .unwrap()
        .timestamp();
    let expected = now() + first["expires_in"].as_i64().expect("expires_in");
    assert!(
        (latest - expected).abs() <= 5,
        "the planner's token lives longest: {outcome}"
    );
    // Newest first: the revoke tops the planner's timeline, and both exchanges now read revoked.
    let path = format!(
        "/v1/audit/timeline?agent={}&include_exchanges=true",
        planner.id
    );
    let (_, page) = r.json(reqwest::Method::GET, &path, &r.admin, None).await;
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries[0]["action"], "agent.revoke", "{page}");
    assert_eq!(entries[0]["what"], "2 tokens killed");
    let outcomes: Vec<&Value> = entries
        .iter()
        .filter(|e| e["source"] == "exchange")
        .map(|e| &e["outcome"])
        .collect();
    assert_eq!(outcomes, vec!["revoked", "revoked"], "{page}");
    // Actor-kind filters drop exchanges unless they ask for agents.
    let path = format!(
        "/v1/audit/timeline?agent={}&include_exchanges=true&actor_kind=human",
        planner.id
    );
    let (_, humans) = r.json(reqwest::Method::GET, &path, &r.admin, None).await;
    assert!(
        humans["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor_kind"] == "human")
    );
}

#[tokio::test]
async fn introspection_after_expiry_and_after_each_kind_of_revocation() {
    let r = Registry::start().await;
    let alice = r.person("alice@example.com").await;
    let agent = r.agent("a", &["x:read"], None).await;
    r.delegate(&alice, &agent.id, &["x:read"]).await;
    let aud = r.token_endpoint();

    let exchange = |subject: String| {
        let r = &r;
        let a = agent.assertion(&aud);
        async move {
            let (s, v) = r
                .exchange(&subject, &a, "x:read", "https://x.example.com")
                .await;
            assert_eq!(s, 200, "{v}");
            v["access_token"].as_str().unwrap().to_string()
        }
    };

    // Active: every RFC 7662 member.
    let p1 = r.mint(&alice, None).await;
    let t1 = exchange(p1.clone()).await;
    let info = r.introspect(&t1).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["sub"], "alice@example.com");
    assert_eq!(info["act"], json!({"sub": agent.id}));
    assert_eq!(info["scope"], "x:read");
    assert_eq!(info["client_id"], agent.id.as_str());
    assert_eq!(info["aud"], "https://x.example.com");
    assert_eq!(info["iss"], r.base.as_str());
    assert_eq!(info["token_type"], "Bearer");
    for member in ["exp", "iat"] {
        assert!(info[member].is_i64(), "{member}: {info}");
    }
    assert!(info["jti"].is_string());
    // An agent may introspect too, with its assertion addressed to the introspection endpoint.
    let (s, v) = r
        .form(
            "/oauth/introspect",
            None,
            &[
                ("token", &t1),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                (
                    "client_assertion",
                    &agent.assertion(&r.url("/oauth/introspect")),
                ),
            ],
        )
        .await;
    assert_eq!((s, &v["active"]), (200, &json!(true)), "{v}");
    // Unauthenticated callers are refused; junk is simply inactive.
    let (s, v) = r.form("/oauth/introspect", None, &[("token", &t1)]).await;
    assert_eq!((s, error_of(&v)), (401, "invalid_client"), "{v}");
    assert_eq!(r.introspect("not-a-token").await, json!({"active": false}));

    // 1. RFC 7009 revocation by the agent, of its own token.
    let (s, _) = r
        .form(
            "/oauth/revoke",
            None,
            &[
                ("token", &t1),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", &agent.assertion(&aud)),
            ],
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(r.introspect(&t1).await, json!({"active": false}));
    // Revoking again, or revoking junk, is still 200.
    let bearer = format!("Bearer {alice}");
    for token in [t1.as_str(), "junk"] {
        let (s, _) = r
            .form("/oauth/revoke", Some(&bearer), &[("token", token)])
            .await;
        assert_eq!(s, 200);
    }
    // Someone unrelated may not revoke a token: they get the answer an unknown token gets,
    // and the token stays live.
    let bob = r.person("bob@example.com").await;
    let t1b = exchange(p1.clone()).await;
    let (s, v) = r
        .form(
            "/oauth/revoke",
            Some(&format!("Bearer {bob}")),
            &[("token", &t1b)],
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(r.introspect(&t1b).await["active"], true);

    // 2. Revoking the person token revokes everything exchanged from it.
    let t2 = exchange(p1.clone()).await;
    let (s, _) = r
        .form("/oauth/revoke", Some(&bearer), &[("token", &p1)])
        .await;
    assert_eq!(s, 200);
    for t in [&p1, &t1b, &t2] {
        assert_eq!(r.introspect(t).await, json!({"active": false}));
    }

    // 3. Agent-wide revocation, reported with its count.
    let p3 = r.mint(&alice, None).await;
    let t3: Vec<String> = futures::future::join_all((0..3).map(|_| exchange(p3.clone()))).await;
    let (_, outcome) = r
        .json(
            reqwest::Method::POST,
            &format!("/v1/agents/{}/revoke", agent.id),
            &r.admin,
            None,
        )
        .await;
    assert_eq!(outcome["tokens_revoked"], 3, "{outcome}");
    for t in &t3 {
        assert_eq!(r.introspect(t).await, json!({"active": false}));
    }
    assert_eq!(
        r.introspect(&p3).await["active"],
        true,
        "the person's own token is not the agent's"
    );
    // Reinstating the agent does not bring its tokens back.
    let (s, _) = r
        .json(
            reqwest::Method::POST,
            &format!("/v1/agents/{}/reinstate", agent.id),
            &r.admin,
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(r.introspect(&t3[0]).await, json!({"active": false}));

    // 4. Decommissioning, with its count.
    let other = r.agent("b", &["x:read"], None).await;
    r.delegate(&alice, &other.id, &["x:read"]).await;
    let (s, v) = r
        .exchange(
            &p3,
            &other.assertion(&aud),
            "x:read",
            "https://x.example.com",
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let t4 = v["access_token"].as_str().unwrap().to_string();
    let (_, outcome) = r
        .json(
            reqwest::Method::POST,
            &format!("/v1/agents/{}/decommission", other.id),
            &r.admin,
            None,
        )
        .await;
    assert_eq!(outcome["tokens_revoked"], 1, "{outcome}");
    assert_eq!(r.introspect(&t4).await, json!({"active": false}));

    // 5. Expiry: a registry token that expires in two seconds reads inactive afterwards.
    let live = r.store.live_tokens();
    let short = registry_signed(
        &r,
        json!({"iss": r.base, "sub": "alice@example.com", "aud": "https://x.example.com", "iat": now(), "exp": now() + 2, "jti": "short-lived"}),
    );
    let record = steward::registry::tokens::live::TokenRecord {
        jti: "short-lived".into(),
        kind: steward::registry::tokens::live::TokenKind::Exchange,
        digest: steward::registry::tokens::token_digest(&short),
        kid: jsonwebtoken::decode_header(&short).unwrap().kid.unwrap(),
        subject: "alice@example.com".into(),
        client_id: Some(other.id.clone()),
        actors: vec!["someone".into()],
        parent_jti: None,
        scopes: vec!["x:read".into()],
        audience: vec!["https://x.example.com".into()],
        may_act: None,
        subject_source: "test".into(),
        client_auth: None,
        credential_id: None,
        issued_at: now(),
        expires_at: now() + 2,
        api_token_id: None,
        delegation_id: None,
    };
    live.issue(record.clone(), now()).unwrap();
    r.store.record_tokens(&[record], &[]).unwrap();
    assert_eq!(r.introspect(&short).await["active"], true);
    // The registry's clock passes its exp (no sleep: see registry/clock.rs).
    r.clock.advance(chrono::Duration::seconds(3));
    assert_eq!(r.introspect(&short).await, json!({"active": false}));
}

#[tokio::test]
async fn no_token_is_issued_after_an_agent_revoke_takes_effect() {
    let r = Arc::new(Registry::start().await);
    let alice = r.person("alice@example.com").await;
    let agent = Arc::new(r.agent("busy", &["x:read"], None).await);
    r.delegate(&alice, &agent.id, &["x:read"]).await;
    let subject = r.mint(&alice, None).await;
    let revoked_flag = Arc::new(std::sync::atomic::AtomicBool::new(false));

    let mut workers = Vec::new();
    for _ in 0..8 {
        let (r, agent, subject, flag) = (
            r.clone(),
            agent.clone(),
            subject.clone(),
            revoked_flag.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut issued = Vec::new();
            let mut refused_after = 0;
            for _ in 0..400 {
                let started_after_revoke = flag.load(std::sync::atomic::Ordering::SeqCst);
                let (s, v) = r
                    .exchange(
                        &subject,
                        &agent.assertion(&r.token_endpoint()),
                        "x:read",
                        "https://x.example.com",
                    )
                    .await;
                match s {
                    200 => {
                        assert!(
                            !started_after_revoke,
                            "a token was issued after the revoke: {v}"
                        );
                        issued.push(v["access_token"].as_str().unwrap().to_string());
                    }
                    _ => {
                        // A revoked agent's attempts are failures; past the per-credential
                        // failure budget the perimeter answers 429 before checking them.
                        assert!(
                            matches!(error_of(&v), "invalid_client" | "too_many_failures"),
                            "{v}"
                        );
                        if started_after_revoke {
                            refused_after += 1;
                            if refused_after >= 5 {
                                break;
                            }
                        }
                    }
                }
            }
            issued
        }));
    }
    // Let some exchanges through, then pull the brake.
    let live = r.store.live_tokens();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while live.issued_to(&agent.id, now()).len() < 40 {
        assert!(
            std::time::Instant::now() < deadline,
            "no exchanges got through"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (s, outcome) = r
        .json(
            reqwest::Method::POST,
            &format!("/v1/agents/{}/revoke", agent.id),
            &r.admin,
            None,
        )
        .await;
    assert_eq!(s, 200);
    revoked_flag.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut issued = Vec::new();
    for w in workers {
        issued.extend(w.await.unwrap());
    }
    assert!(issued.len() >= 40);
    // Every token issued before the revoke was counted and is dead; none was issued after.
    assert_eq!(
        outcome["tokens_revoked"].as_u64().unwrap(),
        issued.len() as u64,
        "{outcome}"
    );
    let unique: HashSet<&String> = issued.iter().collect();
    assert_eq!(unique.len(), issued.len());
    for t in &issued {
        assert_eq!(r.introspect(t).await, json!({"active": false}));
    }
    assert!(live.issued_to(&agent.id, now()).is_empty());
}

#[tokio::test]
async fn key_rotation_keeps_the_old_key_published() {
    // The key's file permissions and an offline rotation of the file: SQLite's (on PostgreSQL
    // `steward server rotate-key --db postgres://…` is the same command).
    let served = launch().sqlite_only().serve().await;
    let admin = served.admin.token.clone();
    let r = Registry::from(served, admin);
    let alice = r.person("alice@example.com").await;
    let agent = r.agent("a", &["x:read"], None).await;
    r.delegate(&alice, &agent.id, &["x:read"]).await;
    let subject = r.mint(&alice, None).await;
    let (_, v) = r
        .exchange(
            &subject,
            &agent.assertion(&r.token_endpoint()),
            "x:read",
            "https://x.example.com",
        )
        .await;
    let before = v["access_token"].as_str().unwrap().to_string();
    let old_kid = jsonwebtoken::decode_header(&before).unwrap().kid.unwrap();
    assert_eq!(r.jwks().await["keys"].as_array().unwrap().len(), 1);
    // The private key lives in the database: no file of it is readable by anyone else.
    #[cfg(unix)]
    for suffix in ["", "-wal", "-shm"] {
        use std::os::unix::fs::PermissionsExt;
        let mut path = r.db.as_os_str().to_owned();
        path.push(suffix);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{path:?} has mode {mode:o}");
    }

    // Rotate at once (a compromised key) with the real binary, against the database the
    // registry is serving. (Staged rotation: tests/integration/standards.rs.)
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_steward"))
        .args(["server", "rotate-key", "--immediate", "--db"])
        .arg(&r.db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let new_kid = stdout
        .trim()
        .strip_prefix("new signing key: ")
        .unwrap()
        .to_string();
    assert_ne!(new_kid, old_kid);
    assert!(!stdout.contains(&r.store.signing_keys().unwrap()[0].private_key));

    // The running registry picks it up and publishes both.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let kids: Vec<String> = r.jwks().await["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_string())
            .collect();
        if kids.len() == 2 {
            assert_eq!(kids[0], new_kid, "the signing key comes first");
            assert!(kids.contains(&old_kid));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the rotation was never picked up: {kids:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, v) = r
        .exchange(
            &subject,
            &agent.assertion(&r.token_endpoint()),
            "x:read",
            "https://x.example.com",
        )
        .await;
    let after = v["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        jsonwebtoken::decode_header(&after).unwrap().kid.unwrap(),
        new_kid
    );
    // Both verify against the served JWKS; the old one is still active.
    r.verify(&before, "https://x.example.com").await;
    r.verify(&after, "https://x.example.com").await;
    assert_eq!(r.introspect(&before).await["active"], true);
    // The rotation is in the audit log, without key material.
    let (_, audit) = r
        .json(
            reqwest::Method::GET,
            "/v1/audit?action=signing_key.",
            &r.admin,
            None,
        )
        .await;
    let actions: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["signing_key.create", "signing_key.rotate"]);
}

#[tokio::test]
async fn a_trusted_identity_providers_token_is_a_subject() {
    let r = Registry::start().await;
    let carol = r.person("carol@example.com").await;
    let agent = r.agent("a", &["x:read"], None).await;
    r.delegate(&carol, &agent.id, &["x:read"]).await;
    let idp_key = new_key();
    let mut jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": B64.encode(idp_key.verifying_key().as_bytes()), "kid": "sso-1", "alg": "EdDSA"});
    let jwks = json!({"keys": [jwk.clone()]}).to_string();
    let idp = "https://sso.example.com";
    r.store
        .put_trusted_issuer(
            &Actor::system("test"),
            &TrustedIssuer {
                issuer: idp.into(),
                jwks,
                audience: r.base.clone(),
                created_at: chrono::Utc::now(),
            },
        )
        .unwrap();
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("sso-1".into());
    let claims = json!({"iss": idp, "sub": "00u1abc", "email": "carol@example.com", "email_verified": true, "aud": r.base, "iat": now(), "exp": now() + 300});
    let sso_token = sign_ed(&idp_key, header.clone(), &claims);
    // The running registry picks the provider up at its next refresh.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let (s, v) = loop {
        let (s, v) = r
            .exchange(
                &sso_token,
                &agent.assertion(&r.token_endpoint()),
                "x:read",
                "https://x.example.com",
            )
            .await;
        let untrusted = v["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("not a trusted"));
        if !untrusted || std::time::Instant::now() > deadline {
            break (s, v);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(s, 200, "{v}");
    let (_, issued) = r
        .verify(v["access_token"].as_str().unwrap(), "https://x.example.com")
        .await;
    assert_eq!(issued["sub"], "carol@example.com");

    // Expired, wrong audience, unknown person, untrusted issuer, HMAC with the provider's key.
    let cases = [
        (json!({"exp": now() - 120}), "expired"),
        (json!({"aud": "someone-else"}), "aud"),
        (json!({"email": "mallory@example.com"}), "not a person"),
        (json!({"iss": "https://evil.example.com"}), "not a trusted"),
    ];
    for (change, expect) in cases {
        let mut c = claims.clone();
        for (k, v) in change.as_object().unwrap() {
            c[k] = v.clone();
        }
        let (s, v) = r
            .exchange(
                &sign_ed(&idp_key, header.clone(), &c),
                &agent.assertion(&r.token_endpoint()),
                "x:read",
                "https://x.example.com",
            )
            .await;
        assert_eq!((s, error_of(&v)), (400, "invalid_grant"), "{expect}: {v}");
        assert!(
            v["error_description"].as_str().unwrap().contains(expect),
            "{expect}: {v}"
        );
    }
    let forged = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(jwk["x"].as_str().unwrap().as_bytes()),
    )
    .unwrap();
    let (s, v) = r
        .exchange(
            &forged,
            &agent.assertion(&r.token_endpoint()),
            "x:read",
            "https://x.example.com",
        )
        .await;
    assert_eq!((s, error_of(&v)), (400, "invalid_grant"), "{v}");
    // A provider configured with a symmetric key is refused outright.
    jwk = json!({"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"});
    assert!(
        steward::registry::tokens::idp::parse_jwks(&json!({"keys": [jwk]}).to_string()).is_err()
    );
}

#[tokio::test]
async fn a_legacy_agent_uses_its_static_secret_and_state_survives_a_restart() {
    let r = Registry::start().await;
    let alice = r.person("alice@example.com").await;
    let agent = r.agent("modern", &["x:read"], None).await;
    r.delegate(&alice, &agent.id, &["x:read"]).await;
    let legacy = r
        .post(
            "/v1/agents",
            &r.admin,
            json!({"name": "legacy", "owner": "admin@example.com", "scopes": ["x:read"]}),
        )
        .await;
    let legacy_id = legacy["id"].as_str().unwrap().to_string();
    r.delegate(&alice, &legacy_id, &["x:read"]).await;
    let added = r
        .post(
            &format!("/v1/agents/{legacy_id}/credentials"),
            &r.admin,
            json!({"kind": "static-secret"}),
        )
        .await;
    let secret = added["secret"].as_str().unwrap().to_string();
    assert_eq!(added["credential"]["kind"], "static-secret");
    let detail = r
        .json(
            reqwest::Method::GET,
            &format!("/v1/agents/{legacy_id}"),
            &r.admin,
            None,
        )
        .await
        .1;
    assert_eq!(detail["static_secret"], true, "a static secret is flagged");
    assert!(!detail.to_string().contains(&secret));

    let subject = r.mint(&alice, None).await;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{legacy_id}:{secret}"))
    );
    let params = [
        ("grant_type", GRANT_TOKEN_EXCHANGE),
        ("subject_token", subject.as_str()),
        ("subject_token_type", TOKEN_TYPE_ACCESS),
        ("scope", "x:read"),
        ("audience", "https://x.example.com"),
    ];
    let (s, v) = r.form("/oauth/token", Some(&basic), &params).await;
    assert_eq!(s, 200, "{v}");
    let legacy_token = v["access_token"].as_str().unwrap().to_string();
    let wrong = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{legacy_id}:nope"))
    );
    let (s, v) = r.form("/oauth/token", Some(&wrong), &params).await;
    assert_eq!((s, error_of(&v)), (401, "invalid_client"), "{v}");

    // Live, revoked and spent state is durable.
    let used = agent.assertion(&r.token_endpoint());
    let (s, v) = r
        .exchange(&subject, &used, "x:read", "https://x.example.com")
        .await;
    assert_eq!(s, 200, "{v}");
    let kept = v["access_token"].as_str().unwrap().to_string();
    let (_, v) = r
        .exchange(
            &subject,
            &agent.assertion(&r.token_endpoint()),
            "x:read",
            "https://x.example.com",
        )
        .await;
    let killed = v["access_token"].as_str().unwrap().to_string();
    let (s, _) = r
        .form(
            "/oauth/revoke",
            Some(&format!("Bearer {alice}")),
            &[("token", &killed)],
        )
        .await;
    assert_eq!(s, 200);
    let r = r.restart().await;
    assert_eq!(r.introspect(&kept).await["active"], true);
    assert_eq!(r.introspect(&legacy_token).await["active"], true);
    assert_eq!(r.introspect(&killed).await, json!({"active": false}));
    // The replay cache survived too: the spent assertion id is still spent. (Replaying it over
    // HTTP would prove nothing here: the new server's port differs from its audience.)
    assert!(
        !r.store
            .live_tokens()
            .consume_assertion(&agent.id, &jwt_id(&used), now() + 60)
    );
    // And the exchange rate counts both servers' exchanges.
    let (_, live) = r
        .json(
            reqwest::Method::GET,
            &format!("/v1/agents/{}/tokens", agent.id),
            &r.admin,
            None,
        )
        .await;
    assert_eq!(live["exchanges_last_hour"], 2);
    assert_eq!(live["tokens"].as_array().unwrap().len(), 1);
}

fn jwt_id(token: &str) -> String {
    let claims: Value =
        serde_json::from_slice(&B64.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap();
    claims["jti"].as_str().unwrap().to_string()
}

/// Runs the real binary against the registry with an API token in the environment.
fn steward(
    r: &Registry,
    token: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> (bool, String, String) {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_steward"))
        .arg("--server")
        .arg(&r.base)
        .args(args)
        .env("STEWARD_TOKEN", token)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_command_line_registers_keys_mints_and_introspects() {
    use ed25519_dalek::pkcs8::EncodePublicKey;
    let r = Registry::start().await;
    let agent = r
        .post(
            "/v1/agents",
            &r.admin,
            json!({"name": "cli-agent", "owner": "admin@example.com", "scopes": ["x:read"]}),
        )
        .await;
    let id = agent["id"].as_str().unwrap().to_string();
    let key = new_key();
    let dir = tempfile::tempdir().unwrap();
    let pem_path = dir.path().join("agent.pub");
    std::fs::write(
        &pem_path,
        key.verifying_key()
            .to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .unwrap(),
    )
    .unwrap();
    let r = Arc::new(r);
    let run = |args: Vec<String>, stdin: Option<String>| {
        let r = r.clone();
        async move {
            let admin = r.admin.clone();
            tokio::task::spawn_blocking(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                steward(&r, &admin, &args, stdin.as_deref())
            })
            .await
            .unwrap()
        }
    };
    let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();

    let (ok, out, err) = run(
        s(&[
            "agents",
            "add-key",
            &id,
            "--public-key",
            pem_path.to_str().unwrap(),
        ]),
        None,
    )
    .await;
    assert!(ok, "{err}");
    assert!(out.starts_with("key_"), "{out}");
    // A private key file is refused with a clear message.
    let private = dir.path().join("agent.key");
    std::fs::write(
        &private,
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let (ok, _, err) = run(
        s(&[
            "agents",
            "add-key",
            &id,
            "--public-key",
            private.to_str().unwrap(),
        ]),
        None,
    )
    .await;
    assert!(!ok);
    assert!(err.contains("PRIVATE"), "{err}");

    let (ok, person_token, err) =
        run(s(&["token", "mint", "--ttl", "10m", "--for", &id]), None).await;
    assert!(ok, "{err}");
    let person_token = person_token.trim().to_string();
    let (ok, out, err) = run(s(&["token", "introspect"]), Some(person_token.clone())).await;
    assert!(ok, "{err}");
    let info: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(info["active"], true);
    assert_eq!(info["may_act"], json!({"sub": id}));
    let (ok, _, err) = run(s(&["token", "mint", "--ttl", "2h"]), None).await;
    assert!(!ok && err.contains("1h"), "{err}");

    // The agent exchanges it; the command line shows the live token.
    let test_agent = TestAgent {
        id: id.clone(),
        key,
        credential_id: String::new(),
    };
    let (status, v) = r
        .exchange(
            &person_token,
            &test_agent.assertion(&r.token_endpoint()),
            "x:read",
            "https://x.example.com",
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let (ok, out, err) = run(s(&["agents", "tokens", &id, "--json"]), None).await;
    assert!(ok, "{err}");
    let live: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(live["tokens"].as_array().unwrap().len(), 1);

    let (ok, _, err) = run(s(&["token", "revoke", "-"]), Some(person_token.clone())).await;
    assert!(ok, "{err}");
    assert_eq!(
        r.introspect(v["access_token"].as_str().unwrap()).await,
        json!({"active": false})
    );
}

#[tokio::test]
async fn a_revoked_api_token_stops_introspecting() {
    let r = Registry::start().await;
    let issued = r
        .post(
            "/v1/me/tokens",
            &r.admin,
            json!({"name": "resource-server"}),
        )
        .await;
    let rs_token = issued["token"].as_str().unwrap().to_string();
    let bearer = format!("Bearer {rs_token}");
    let (s, _) = r
        .form("/oauth/introspect", Some(&bearer), &[("token", "x")])
        .await;
    assert_eq!(s, 200);
    let (s, _) = r
        .json(
            reqwest::Method::DELETE,
            &format!("/v1/me/tokens/{}", issued["id"].as_str().unwrap()),
            &r.admin,
            None,
        )
        .await;
    assert_eq!(s, 204);
    // Revocation of the caller's API token is refused at once, and introspection follows
    // within its one-second cache.
    let (s, v) = r
        .form("/oauth/revoke", Some(&bearer), &[("token", "x")])
        .await;
    assert_eq!((s, error_of(&v)), (401, "invalid_client"), "{v}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (s, v) = r
            .form("/oauth/introspect", Some(&bearer), &[("token", "x")])
            .await;
        if s == 401 {
            assert_eq!(error_of(&v), "invalid_client");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the revoked API token kept working"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

/// A catalogued resource's server authenticates at introspection with its own credential (a
/// secret over HTTP Basic, or an assertion it signed) and reads the claims of exactly the tokens
/// addressed to its resource; every other token is `{"active": false}`. A resource is never an
/// agent: it cannot exchange tokens, and a disabled credential is refused.
#[tokio::test]
async fn a_resource_server_introspects_only_the_tokens_for_its_resource() {
    let r = Registry::start().await;
    let alice = r.person("alice@example.com").await;
    let agent = r.agent("reader", &["crm:read", "erp:read"], None).await;
    r.delegate(&alice, &agent.id, &["crm:read", "erp:read"])
        .await;
    let mut tokens = Vec::new();
    for (scope, audience) in [
        ("crm:read", "https://crm.example.com"),
        ("erp:read", "https://erp.example.com"),
    ] {
        let subject = r.mint(&alice, None).await;
        let (status, v) = r
            .exchange(
                &subject,
                &agent.assertion(&r.token_endpoint()),
                scope,
                audience,
            )
            .await;
        assert_eq!(status, 200, "{v}");
        tokens.push(v["access_token"].as_str().unwrap().to_string());
    }
    let (crm_token, erp_token) = (&tokens[0], &tokens[1]);

    // crm's server holds a secret, shown once.
    let added = r
        .post(
            "/v1/resources/crm/credentials",
            &r.admin,
            json!({"kind": "static-secret", "label": "crm introspection"}),
        )
        .await;
    let secret = added["secret"].as_str().unwrap().to_string();
    let secret_id = added["credential"]["id"].as_str().unwrap().to_string();
    let crm = basic("crm", &secret);
    let (status, v) = r
        .form("/oauth/introspect", Some(&crm), &[("token", crm_token)])
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["active"], json!(true), "{v}");
    assert_eq!(v["sub"], json!("alice@example.com"));
    assert_eq!(v["scope"], json!("crm:read"));
    // Another resource's token reads exactly like a token that does not exist.
    let (_, other) = r
        .form("/oauth/introspect", Some(&crm), &[("token", erp_token)])
        .await;
    let (_, unknown) = r
        .form(
            "/oauth/introspect",
            Some(&crm),
            &[("token", "no.such.token")],
        )
        .await;
    assert_eq!(other, json!({"active": false}));
    assert_eq!(other, unknown);
    // A wrong secret, and a secret presented as another resource's, are refused.
    for auth in [basic("crm", "sts_wrong"), basic("erp", &secret)] {
        let (status, v) = r
            .form("/oauth/introspect", Some(&auth), &[("token", crm_token)])
            .await;
        assert_eq!((status, error_of(&v)), (401, "invalid_client"), "{v}");
    }

    // erp's server signs assertions with its key (iss = sub = the resource id).
    let key = new_key();
    let jwk =
        json!({"kty": "OKP", "crv": "Ed25519", "x": B64.encode(key.verifying_key().as_bytes())});
    r.post(
        "/v1/resources/erp/credentials",
        &r.admin,
        json!({"kind": "public-key", "public_key": jwk.to_string()}),
    )
    .await;
    let erp = TestAgent {
        id: "erp".into(),
        key,
        credential_id: String::new(),
    };
    let reg = &r;
    let introspect_as_erp = |assertion: String, token: String| async move {
        reg.form(
            "/oauth/introspect",
            None,
            &[
                ("token", token.as_str()),
                (
                    "client_assertion_type",
                    steward::model::tokens::CLIENT_ASSERTION_JWT,
                ),
                ("client_assertion", assertion.as_str()),
            ],
        )
        .await
    };
    let assertion = erp.assertion(&r.url("/oauth/introspect"));
    let (status, v) = introspect_as_erp(assertion.clone(), erp_token.clone()).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["active"], json!(true), "{v}");
    assert_eq!(v["scope"], json!("erp:read"));
    let (_, v) = introspect_as_erp(erp.assertion(&r.token_endpoint()), crm_token.clone()).await;
    assert_eq!(v, json!({"active": false}));
    // An assertion is spent once.
    let (status, v) = introspect_as_erp(assertion, erp_token.clone()).await;
    assert_eq!((status, error_of(&v)), (401, "invalid_client"), "{v}");

    // A resource is not an agent: it cannot exchange, with its key or its secret.
    let subject = r.mint(&alice, None).await;
    let (status, v) = r
        .exchange(
            &subject,
            &erp.assertion(&r.token_endpoint()),
            "erp:read",
            "https://erp.example.com",
        )
        .await;
    assert_eq!((status, error_of(&v)), (401, "invalid_client"), "{v}");
    let (status, v) = r
        .form(
            "/oauth/token",
            Some(&crm),
            &[
                ("grant_type", GRANT_TOKEN_EXCHANGE),
                ("subject_token", subject.as_str()),
                ("subject_token_type", TOKEN_TYPE_ACCESS),
                ("scope", "crm:read"),
                ("audience", "https://crm.example.com"),
            ],
        )
        .await;
    assert_eq!((status, error_of(&v)), (401, "invalid_client"), "{v}");

    // Disabling the secret locks crm's server out at once.
    r.post(
        &format!("/v1/resources/crm/credentials/{secret_id}/disable"),
        &r.admin,
        json!({}),
    )
    .await;
    let (status, v) = r
        .form("/oauth/introspect", Some(&crm), &[("token", crm_token)])
        .await;
    assert_eq!((status, error_of(&v)), (401, "invalid_client"), "{v}");
}

/// Only admins give resources credentials; bad requests are precise 4xx.
#[tokio::test]
async fn resource_credentials_are_admin_only_and_checked() {
    let r = Registry::start().await;
    let alice = r.person("alice@example.com").await;
    let (status, v) = r
        .json(
            reqwest::Method::POST,
            "/v1/resources/crm/credentials",
            &alice,
            Some(json!({"kind": "static-secret"})),
        )
        .await;
    assert_eq!(status, 403, "{v}");
    let (status, v) = r
        .json(
            reqwest::Method::POST,
            "/v1/resources/nope/credentials",
            &r.admin,
            Some(json!({"kind": "static-secret"})),
        )
        .await;
    assert_eq!(status, 404, "{v}");
    let (status, v) = r
        .json(
            reqwest::Method::POST,
            "/v1/resources/crm/credentials",
            &r.admin,
            Some(json!({"kind": "public-key", "public_key": "not a key"})),
        )
        .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (422, Some("invalid_public_key")),
        "{v}"
    );
    let (status, v) = r
        .json(
            reqwest::Method::POST,
            "/v1/resources/crm/credentials/sec_none/disable",
            &r.admin,
            None,
        )
        .await;
    assert_eq!(status, 404, "{v}");
}
