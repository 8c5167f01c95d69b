//! The Shared Signals transmitter against a real registry on a loopback port, with a real push
//! receiver (an axum server in the test) and SETs verified with an independent JWT library
//! (`jsonwebtoken`) against the JWKS the registry serves.

use crate::support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Value, json};

use steward::model::Actor;
use steward::model::signals::{
    CREDENTIAL_CHANGE, POLL, PUSH, SESSION_REVOKED, TOKEN_CLAIMS_CHANGE,
};
use steward::model::tokens::{GRANT_TOKEN_EXCHANGE, TOKEN_TYPE_ACCESS, TOKEN_TYPE_JWT};
use steward::registry;
use steward::registry::signals::SignalSettings;
use steward::registry::store::CatalogueStore;
use steward::registry::store::sqlite::OpenMode;

const WAIT: Duration = Duration::from_secs(20);

/// A push receiver on loopback: keeps every SET it accepts, or answers 503 while down.
#[derive(Clone)]
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<String>>>,
    up: Arc<AtomicBool>,
    bad_requests: Arc<Mutex<Vec<String>>>,
}

async fn receiver() -> Receiver {
    let got = Arc::new(Mutex::new(Vec::new()));
    let up = Arc::new(AtomicBool::new(true));
    let bad = Arc::new(Mutex::new(Vec::new()));
    let (g, u, b) = (got.clone(), up.clone(), bad.clone());
    let app = axum::Router::new().route(
        "/events",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let (g, u, b) = (g.clone(), u.clone(), b.clone());
            async move {
                if !u.load(Ordering::SeqCst) {
                    return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                }
                let ct = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if ct != "application/secevent+jwt" {
                    b.lock().unwrap().push(format!("content-type {ct}"));
                    return axum::http::StatusCode::BAD_REQUEST;
                }
                if headers.get("authorization").and_then(|v| v.to_str().ok())
                    != Some("Bearer receiver-secret")
                {
                    b.lock().unwrap().push("no authorization".into());
                }
                g.lock().unwrap().push(body);
                axum::http::StatusCode::ACCEPTED
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Receiver {
        url,
        got,
        up,
        bad_requests: bad,
    }
}

impl Receiver {
    fn count(&self) -> usize {
        self.got.lock().unwrap().len()
    }

    /// Waits (bounded) until at least `n` SETs arrived; returns them all.
    async fn wait_for(&self, n: usize) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if self.count() >= n {
                return self.got.lock().unwrap().clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {} of {n} SETs arrived",
                self.count()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

struct Registry {
    base: String,
    http: reqwest::Client,
    admin: String,
    served: support::Served,
}

fn fast_retries() -> SignalSettings {
    SignalSettings {
        retry_base: Duration::from_millis(50),
        retry_max: Duration::from_millis(400),
        pause_after: 1000,
        min_verification_interval: 0,
        ..Default::default()
    }
}

impl Registry {
    async fn start(settings: SignalSettings) -> Registry {
        Registry::start_guarded(settings, None).await
    }

    /// Like [`Registry::start`], with the failed-authentication limits set.
    async fn start_guarded(
        settings: SignalSettings,
        guards: Option<steward::registry::http::guards::GuardSettings>,
    ) -> Registry {
        let mut launch = support::Launch::new().signals(settings);
        if let Some(g) = guards {
            launch = launch.guards(g);
        } else {
            // Unlike the shared harness's default (lifted), these tests keep the server's own
            // failure budgets unless they name theirs.
            launch.guards = Some(Default::default());
        }
        let served = launch.serve().await;
        Registry {
            base: served.url.clone(),
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            admin: served.admin.token.clone(),
            served,
        }
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        auth: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .header("authorization", auth);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// The registry's database, opened beside the server (read only by the tests).
    fn sql(&self) -> support::Sql {
        support::store_sql(&self.served.store)
    }

    fn admin_auth(&self) -> String {
        format!("Bearer {}", self.admin)
    }

    async fn ok(&self, method: &str, path: &str, body: Value) -> Value {
        let (status, v) = self
            .call(method, path, &self.admin_auth(), Some(body))
            .await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {v}"
        );
        v
    }

    async fn person(&self, email: &str) -> String {
        self.ok(
            "POST",
            "/v1/people",
            json!({"email": email, "display_name": email}),
        )
        .await;
        let inv = self
            .ok("POST", &format!("/v1/people/{email}/tokens"), json!({}))
            .await;
        let inv = inv["token"].as_str().unwrap();
        let (s, v) = self
            .call(
                "POST",
                "/v1/me/tokens",
                &format!("Bearer {inv}"),
                Some(json!({})),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        v["token"].as_str().unwrap().to_string()
    }

    async fn agent(
        &self,
        name: &str,
        scopes: &[&str],
        parent: Option<&str>,
    ) -> (String, SigningKey) {
        let mut body = json!({"name": name, "owner": "admin@example.com", "scopes": scopes});
        if let Some(p) = parent {
            body["kind"] = json!("sub-agent");
            body["parent_id"] = json!(p);
        }
        let v = self.ok("POST", "/v1/agents", body).await;
        let id = v["id"].as_str().unwrap().to_string();
        let mut seed = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut seed);
        let key = SigningKey::from_bytes(&seed);
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": B64.encode(key.verifying_key().as_bytes())});
        self.ok(
            "POST",
            &format!("/v1/agents/{id}/credentials"),
            json!({"kind": "public-key", "public_key": jwk.to_string()}),
        )
        .await;
        (id, key)
    }

    /// The person consents, mints a token, and the agent exchanges it for `scope` at `audience`.
    async fn exchanged(
        &self,
        person: &str,
        agent: &(String, SigningKey),
        scope: &str,
        audience: &str,
    ) -> String {
        let until = chrono::Utc::now() + chrono::Duration::days(1);
        let auth = format!("Bearer {person}");
        let (s, v) = self
            .call(
                "POST",
                "/v1/me/delegations",
                &auth,
                Some(json!({"agent_id": agent.0, "scopes": [scope], "expires_at": until})),
            )
            .await;
        assert!(s < 300, "{v}");
        let (s, v) = self
            .call(
                "POST",
                "/v1/me/access-token",
                &auth,
                Some(json!({"ttl_seconds": 600})),
            )
            .await;
        assert!(s < 300, "{v}");
        let subject = v["access_token"].as_str().unwrap().to_string();
        let assertion = assertion(agent, &format!("{}/oauth/token", self.base));
        let (s, v) = self
            .form(
                "/oauth/token",
                None,
                &[
                    ("grant_type", GRANT_TOKEN_EXCHANGE),
                    ("subject_token", &subject),
                    ("subject_token_type", TOKEN_TYPE_ACCESS),
                    ("actor_token", &assertion),
                    ("actor_token_type", TOKEN_TYPE_JWT),
                    ("scope", scope),
                    ("audience", audience),
                ],
            )
            .await;
        assert_eq!(s, 200, "{v}");
        v["access_token"].as_str().unwrap().to_string()
    }

    async fn form(&self, path: &str, auth: Option<&str>, params: &[(&str, &str)]) -> (u16, Value) {
        let mut req = self.http.post(format!("{}{path}", self.base)).form(params);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn push_stream(&self, auth: &str, url: &str) -> String {
        let (s, v) = self
            .call(
                "POST",
                "/ssf/streams",
                auth,
                Some(json!({
                    "delivery": {"method": PUSH, "endpoint_url": url,
                                 "authorization_header": "Bearer receiver-secret"},
                    "description": "test receiver"
                })),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        assert_eq!(v["delivery"]["method"], PUSH);
        assert!(
            v["delivery"].get("authorization_header").is_none(),
            "never shown back"
        );
        v["stream_id"].as_str().unwrap().to_string()
    }

    /// A static secret for a catalogued resource; returns its Basic header.
    async fn resource_auth(&self, resource: &str) -> String {
        let v = self
            .ok(
                "POST",
                &format!("/v1/resources/{resource}/credentials"),
                json!({"kind": "static-secret", "label": "ssf"}),
            )
            .await;
        let secret = v["secret"].as_str().unwrap();
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{resource}:{secret}"))
        )
    }

    /// Verifies a SET with jsonwebtoken against the served JWKS; returns its claims.
    async fn verify(&self, set: &str, aud: &str) -> Value {
        let header = jsonwebtoken::decode_header(set).unwrap();
        assert_eq!(header.typ.as_deref(), Some("secevent+jwt"));
        let jwks: jsonwebtoken::jwk::JwkSet = self
            .http
            .get(format!("{}/.well-known/jwks.json", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let jwk = jwks
            .find(header.kid.as_deref().unwrap())
            .expect("kid in the JWKS");
        let mut v = Validation::new(Algorithm::EdDSA);
        v.set_issuer(&[&self.base]);
        v.set_audience(&[aud]);
        v.set_required_spec_claims(&["iss", "aud"]);
        v.validate_exp = false;
        let claims = jsonwebtoken::decode::<Value>(set, &DecodingKey::from_jwk(jwk).unwrap(), &v)
            .unwrap_or_else(|e| panic!("the SET does not verify: {e}"))
            .claims;
        for absent in ["scope", "client_id", "exp", "sub"] {
            assert!(
                claims.get(absent).is_none(),
                "a SET has no {absent}: {claims}"
            );
        }
        assert!(claims["jti"].is_string() && claims["iat"].is_i64());
        let verification = claims["events"]
            .get("https://schemas.openid.net/secevent/ssf/event-type/verification")
            .is_some();
        assert!(verification || claims["txn"].is_string(), "{claims}");
        claims
    }
}

fn assertion(agent: &(String, SigningKey), aud: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut b = [0u8; 12];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut b);
    let claims = json!({"iss": agent.0, "sub": agent.0, "aud": aud, "iat": now, "exp": now + 60, "jti": B64.encode(b)});
    let der = agent.1.to_pkcs8_der().unwrap();
    jsonwebtoken::encode(
        &Header::new(Algorithm::EdDSA),
        &claims,
        &EncodingKey::from_ed_der(der.as_bytes()),
    )
    .unwrap()
}

fn event(claims: &Value) -> (&str, &Value) {
    let events = claims["events"].as_object().unwrap();
    assert_eq!(events.len(), 1, "one event per SET");
    let (k, v) = events.iter().next().unwrap();
    (k.as_str(), v)
}

fn agent_of(claims: &Value) -> Option<String> {
    let s = &claims["sub_id"];
    let app = if s["format"] == "complex" {
        &s["application"]
    } else {
        s
    };
    (app["format"] == "iss_sub").then(|| app["sub"].as_str().unwrap().to_string())
}

/// Every path that ends access reaches an admin's push receiver as a verified SET: agent revoke
/// (the whole subtree under one `txn`), token revoke (RFC 7009, with the session named),
/// decommission, a person leaving, a delegation removed (session-revoked), a grant removed
/// (token-claims-change, the scope named) and a credential disabled (credential-change).
#[tokio::test]
async fn every_path_that_ends_access_reaches_a_push_receiver() {
    let r = Registry::start(fast_retries()).await;
    let rx = receiver().await;
    let aud = "admin:admin@example.com";
    r.push_stream(&r.admin_auth(), &rx.url).await;

    // Agent revoke over a tree: one SET per agent, one txn.
    let parent = r.agent("parent", &["crm:read"], None).await;
    let child = r.agent("child", &["crm:read"], Some(&parent.0)).await;
    // (credential.add of the two agents are credential-change SETs: 2)
    let base = rx.wait_for(2).await.len();
    let revoked = r
        .ok(
            "POST",
            &format!("/v1/agents/{}/revoke", parent.0),
            json!({"reason": "incident 7"}),
        )
        .await;
    assert!(revoked["audit_seq"].as_i64().unwrap() > 0);
    let sets = rx.wait_for(base + 2).await;
    let mut txns = Vec::new();
    let mut agents = Vec::new();
    for s in &sets[base..] {
        let c = r.verify(s, aud).await;
        let (ty, ev) = event(&c);
        assert_eq!(ty, SESSION_REVOKED);
        assert_eq!(ev["initiating_entity"], "admin");
        assert_eq!(ev["reason_admin"]["en"], "incident 7");
        assert!(ev["event_timestamp"].is_i64());
        txns.push(c["txn"].clone());
        agents.push(agent_of(&c).unwrap());
    }
    assert_eq!(txns[0], txns[1], "the events of one action share a txn");
    assert_eq!(agents, vec![parent.0.clone(), child.0.clone()]);
    assert!(rx.bad_requests.lock().unwrap().is_empty());

    // Token revoke (RFC 7009) names the session, the agent and the person.
    let alice = r.person("alice@example.com").await;
    let worker = r.agent("worker", &["crm:read", "erp:read"], None).await;
    let token = r
        .exchanged(&alice, &worker, "crm:read", "https://crm.example.com")
        .await;
    let base = rx.wait_for(1).await.len();
    let jti = jsonwebtoken::dangerous::insecure_decode::<Value>(&token)
        .unwrap()
        .claims["jti"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, _) = r
        .form("/oauth/revoke", Some(&r.admin_auth()), &[("token", &token)])
        .await;
    assert_eq!(s, 200);
    let sets = rx.wait_for(base + 1).await;
    let c = r.verify(sets.last().unwrap(), aud).await;
    assert_eq!(event(&c).0, SESSION_REVOKED);
    assert_eq!(c["sub_id"]["format"], "complex");
    assert_eq!(
        c["sub_id"]["session"],
        json!({"format": "opaque", "id": jti})
    );
    assert_eq!(
        c["sub_id"]["user"],
        json!({"format": "email", "email": "alice@example.com"})
    );
    assert_eq!(c["sub_id"]["application"]["sub"], json!(worker.0));

    // Grant removed: token-claims-change naming the scope.
    let base = rx.count();
    r.ok(
        "DELETE",
        &format!("/v1/agents/{}/grants/erp:read", worker.0),
        json!({}),
    )
    .await;
    let sets = rx.wait_for(base + 1).await;
    let c = r.verify(sets.last().unwrap(), aud).await;
    let (ty, ev) = event(&c);
    assert_eq!(ty, TOKEN_CLAIMS_CHANGE);
    assert_eq!(ev["claims"]["scope_removed"], "erp:read");
    assert_eq!(ev["claims"]["scope"], "crm:read");

    // Delegation removed.
    let (_, list) = r
        .call(
            "GET",
            "/v1/me/delegations",
            &format!("Bearer {alice}"),
            None,
        )
        .await;
    let delegation = list
        .as_array()
        .or_else(|| list["delegations"].as_array())
        .unwrap()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let base = rx.count();
    let (s, v) = r
        .call(
            "DELETE",
            &format!("/v1/me/delegations/{delegation}"),
            &format!("Bearer {alice}"),
            None,
        )
        .await;
    assert!(s < 300, "{v}");
    let sets = rx.wait_for(base + 1).await;
    let c = r.verify(sets.last().unwrap(), aud).await;
    assert_eq!(event(&c).0, SESSION_REVOKED);
    assert_eq!(agent_of(&c), Some(worker.0.clone()));
    assert_eq!(c["sub_id"]["user"]["email"], "alice@example.com");

    // A person leaves.
    let base = rx.count();
    r.ok(
        "PATCH",
        "/v1/people/alice@example.com",
        json!({"active": false}),
    )
    .await;
    let sets = rx.wait_for(base + 1).await;
    let c = r.verify(sets.last().unwrap(), aud).await;
    assert_eq!(event(&c).0, SESSION_REVOKED);
    assert_eq!(
        c["sub_id"],
        json!({"format": "email", "email": "alice@example.com"})
    );

    // A credential disabled.
    let detail = r
        .ok("GET", &format!("/v1/agents/{}", worker.0), Value::Null)
        .await;
    let cred = detail["credentials"][0]["id"].as_str().unwrap().to_string();
    let base = rx.count();
    r.ok(
        "POST",
        &format!("/v1/agents/{}/credentials/{cred}/disable", worker.0),
        json!({}),
    )
    .await;
    let sets = rx.wait_for(base + 1).await;
    let c = r.verify(sets.last().unwrap(), aud).await;
    let (ty, ev) = event(&c);
    assert_eq!(ty, CREDENTIAL_CHANGE);
    assert_eq!(ev["change_type"], "revoke");
    assert_eq!(ev["credential_type"], "x509");

    // Decommission.
    let base = rx.count();
    r.ok(
        "POST",
        &format!("/v1/agents/{}/decommission", worker.0),
        json!({}),
    )
    .await;
    let sets = rx.wait_for(base + 1).await;
    let c = r.verify(sets.last().unwrap(), aud).await;
    assert_eq!(event(&c).0, SESSION_REVOKED);
    assert_eq!(agent_of(&c), Some(worker.0.clone()));

    // The admin's view: the stream delivered everything, nothing pending.
    // (The registry counts a push once the receiver's 202 is in: wait for it.)
    let deadline = tokio::time::Instant::now() + WAIT;
    let list = loop {
        let list = r.ok("GET", "/v1/streams", Value::Null).await;
        if list["streams"][0]["delivered"].as_u64().unwrap() as usize == rx.count() {
            break list;
        }
        assert!(tokio::time::Instant::now() < deadline, "{list}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let s = &list["streams"][0];
    assert_eq!(s["status"], "enabled");
    assert_eq!(s["pending"], 0);
    // And the revoke's fan-out line.
    let seq = revoked["audit_seq"].as_i64().unwrap();
    let f = r
        .ok("GET", &format!("/v1/signals/{seq}"), Value::Null)
        .await;
    assert_eq!(
        f,
        json!({"audit_seq": seq, "fanned_out": true, "notified": 1, "pending": 0, "failed": 0})
    );
}

/// A grant whose time is up is removed by the sweeper through the ordinary removal path: a
/// `token-claims-change` naming the scope reaches the push receiver, signed like every SET.
#[tokio::test]
async fn an_expired_grant_reaches_a_push_receiver_as_token_claims_change() {
    let r = Registry::start(fast_retries()).await;
    let rx = receiver().await;
    r.push_stream(&r.admin_auth(), &rx.url).await;
    r.person("bob@example.com").await;
    let v = r
        .ok(
            "POST",
            "/v1/agents",
            json!({"name": "temp", "owner": "bob@example.com", "scopes": ["crm:read"]}),
        )
        .await;
    let id = v["id"].as_str().unwrap().to_string();
    let until = chrono::Utc::now() + chrono::Duration::hours(1);
    r.ok(
        "POST",
        &format!("/v1/agents/{id}/grants"),
        json!({"scope": "erp:read", "expires_at": until, "justification": "for an hour"}),
    )
    .await;
    // The sweeper, an hour later (a second store over the same file, as a restart would).
    let store = registry::open_store(&r.served.db, OpenMode::MustExist).unwrap();
    let out = steward::registry::service::approvals::sweep(
        store.as_ref(),
        until + chrono::Duration::minutes(1),
    )
    .unwrap();
    assert_eq!(
        out.grants_removed,
        vec![(id.clone(), "erp:read".to_string())]
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    let claims = loop {
        let mut found = None;
        for s in rx.got.lock().unwrap().clone() {
            let c = jsonwebtoken::dangerous::insecure_decode::<Value>(&s)
                .unwrap()
                .claims;
            if event(&c).0 == TOKEN_CLAIMS_CHANGE {
                found = Some(s);
            }
        }
        if let Some(s) = found {
            break r.verify(&s, "admin:admin@example.com").await;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no token-claims-change arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (_, ev) = event(&claims);
    assert_eq!(ev["claims"]["scope_removed"], "erp:read");
    assert_eq!(ev["claims"]["scope"], "crm:read");
    assert_eq!(agent_of(&claims), Some(id));
}

/// A receiver that is down for a while gets every event after it returns, in order; the stream
/// shows its failures meanwhile; a receiver that never returns is paused after N failures.
#[tokio::test]
async fn a_receiver_down_for_a_while_gets_every_event_in_order() {
    let r = Registry::start(fast_retries()).await;
    let rx = receiver().await;
    let stream = r.push_stream(&r.admin_auth(), &rx.url).await;
    rx.up.store(false, Ordering::SeqCst);
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(r.agent(&format!("a{i}"), &["crm:read"], None).await.0);
    }
    for id in &ids {
        r.ok("POST", &format!("/v1/agents/{id}/revoke"), json!({}))
            .await;
    }
    // Failures are visible while it is down.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let s = r
            .ok("GET", &format!("/v1/streams/{stream}"), Value::Null)
            .await;
        if s["consecutive_failures"].as_u64().unwrap_or(0) >= 2 {
            assert!(s["last_error"].as_str().unwrap().contains("503"), "{s}");
            assert!(s["pending"].as_u64().unwrap() >= 1, "{s}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no failure recorded: {s}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(rx.count(), 0);
    rx.up.store(true, Ordering::SeqCst);
    // 5 credential-change (create) then 5 session-revoked, in that order.
    let sets = rx.wait_for(10).await;
    let aud = "admin:admin@example.com";
    let mut seen = Vec::new();
    for s in &sets[..10] {
        let c = r.verify(s, aud).await;
        seen.push((event(&c).0.to_string(), agent_of(&c).unwrap()));
    }
    let mut want: Vec<(String, String)> = ids
        .iter()
        .map(|i| (CREDENTIAL_CHANGE.to_string(), i.clone()))
        .collect();
    want.extend(ids.iter().map(|i| (SESSION_REVOKED.to_string(), i.clone())));
    assert_eq!(seen, want, "every event, once, in order");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.count(), 10, "nothing delivered twice");
    let s = r
        .ok("GET", &format!("/v1/streams/{stream}"), Value::Null)
        .await;
    assert_eq!(s["consecutive_failures"], 0);
    assert_eq!(s["pending"], 0);

    // A receiver that never comes back: paused after N failures and shown as such.
    let r2 = Registry::start(SignalSettings {
        pause_after: 3,
        ..fast_retries()
    })
    .await;
    let dead = r2
        .push_stream(&r2.admin_auth(), "http://127.0.0.1:9/events")
        .await;
    r2.agent("x", &["crm:read"], None).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let s = r2
            .ok("GET", &format!("/v1/streams/{dead}"), Value::Null)
            .await;
        if s["status"] == "paused" {
            assert!(
                s["reason"].as_str().unwrap().contains("3 consecutive"),
                "{s}"
            );
            assert_eq!(s["pending"], 1);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never paused: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The admin resumes it; it stays pending (still unreachable), visible, never lost.
    let s = r2
        .ok("POST", &format!("/v1/streams/{dead}/resume"), json!({}))
        .await;
    assert_eq!(s["status"], "enabled");
}

/// A resource's stream carries only events about its own subjects, a receiver sees only its
/// own streams, may not add subjects it may not see, and nobody but admins and resources are
/// receivers.
#[tokio::test]
async fn receivers_see_only_their_own_streams_and_subjects() {
    let r = Registry::start(fast_retries()).await;
    let crm = r.resource_auth("crm").await;
    let erp = r.resource_auth("erp").await;
    let rx = receiver().await;
    let crm_stream = r.push_stream(&crm, &rx.url).await;
    let admin_stream = r.push_stream(&r.admin_auth(), &receiver().await.url).await;

    // Another receiver's stream reads as missing, for every verb.
    for (method, path, body) in [
        ("GET", format!("/ssf/streams?stream_id={crm_stream}"), None),
        ("GET", format!("/ssf/status?stream_id={crm_stream}"), None),
        (
            "DELETE",
            format!("/ssf/streams?stream_id={crm_stream}"),
            None,
        ),
        (
            "PATCH",
            "/ssf/streams".to_string(),
            Some(json!({"stream_id": crm_stream, "description": "mine now"})),
        ),
        (
            "POST",
            "/ssf/status".to_string(),
            Some(json!({"stream_id": crm_stream, "status": "disabled"})),
        ),
        (
            "POST",
            "/ssf/verify".to_string(),
            Some(json!({"stream_id": crm_stream})),
        ),
    ] {
        let (s, v) = r.call(method, &path, &erp, body).await;
        assert_eq!(s, 404, "{method} {path}: {v}");
    }
    let (s, _) = r
        .call(
            "GET",
            &format!("/ssf/streams?stream_id={admin_stream}"),
            &crm,
            None,
        )
        .await;
    assert_eq!(s, 404);
    let (s, v) = r.call("GET", "/ssf/streams", &erp, None).await;
    assert_eq!((s, v), (200, json!([])));

    // A person without the admin role is no receiver; no credentials at all is 401.
    let bob = r.person("bob@example.com").await;
    let (s, _) = r
        .call("GET", "/ssf/streams", &format!("Bearer {bob}"), None)
        .await;
    assert_eq!(s, 403);
    let (s, _) = r
        .call("GET", "/ssf/streams", "Basic Y3JtOndyb25n", None)
        .await;
    assert_eq!(s, 401);
    let (s, _) = r
        .call("GET", "/v1/streams", &format!("Bearer {bob}"), None)
        .await;
    assert_eq!(s, 403);

    // Only events about crm's subjects reach crm.
    let mine = r.agent("crm-reader", &["crm:read"], None).await;
    let theirs = r.agent("erp-reader", &["erp:read"], None).await;
    let (s, v) = r
        .call(
            "POST",
            "/ssf/subjects/add",
            &crm,
            Some(json!({"stream_id": crm_stream, "subject": {"format": "opaque", "id": theirs.0}})),
        )
        .await;
    assert_eq!(s, 403, "a subject it may not see: {v}");
    let (s, _) = r.call("POST", "/ssf/subjects/add", &crm,
        Some(json!({"stream_id": crm_stream, "subject": {"format": "opaque", "id": "ag_nonexistent"}}))).await;
    assert_eq!(s, 403, "an unknown subject reads the same");
    let (s, v) = r.call("POST", "/ssf/subjects/add", &crm,
        Some(json!({"stream_id": crm_stream, "subject": {"format": "phone_number", "phone_number": "+1"}}))).await;
    assert_eq!((s, v["error"].as_str()), (400, Some("invalid_subject")));
    let (s, _) = r
        .call(
            "POST",
            "/ssf/subjects/add",
            &crm,
            Some(json!({"stream_id": crm_stream, "subject": {"format": "opaque", "id": mine.0}})),
        )
        .await;
    assert_eq!(s, 200);
    r.ok(
        "POST",
        &format!("/v1/agents/{}/revoke", theirs.0),
        json!({}),
    )
    .await;
    r.ok("POST", &format!("/v1/agents/{}/revoke", mine.0), json!({}))
        .await;
    // crm hears: its agent's credential added, then its revoke; never the erp agent.
    let sets = rx.wait_for(2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.count(), 2);
    for s in &sets {
        let c = r.verify(s, "crm").await;
        assert_eq!(agent_of(&c), Some(mine.0.clone()));
    }

    // Removing a subject stops its events.
    let (s, _) = r
        .call(
            "POST",
            "/ssf/subjects/remove",
            &crm,
            Some(json!({"stream_id": crm_stream, "subject": {"format": "opaque", "id": mine.0}})),
        )
        .await;
    assert_eq!(s, 204);
    r.ok(
        "DELETE",
        &format!("/v1/agents/{}/grants/crm:read", mine.0),
        json!({}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.count(), 2);
}

/// Malformed configurations each get a precise error, and push endpoints must be https unless
/// loopback, never internal addresses.
#[tokio::test]
async fn bad_stream_configurations_are_refused_precisely() {
    let r = Registry::start(fast_retries()).await;
    let a = r.admin_auth();
    for (body, code) in [
        (json!({}), "invalid_delivery"),
        (
            json!({"delivery": {"method": "urn:example:carrier-pigeon"}}),
            "invalid_delivery",
        ),
        (json!({"delivery": {"method": PUSH}}), "invalid_delivery"),
        (
            json!({"delivery": {"method": PUSH, "endpoint_url": "http://example.com/x"}}),
            "invalid_endpoint",
        ),
        (
            json!({"delivery": {"method": PUSH, "endpoint_url": "https://169.254.169.254/x"}}),
            "invalid_endpoint",
        ),
        (
            json!({"delivery": {"method": PUSH, "endpoint_url": "https://10.0.0.5/x"}}),
            "invalid_endpoint",
        ),
        (
            json!({"delivery": {"method": POLL, "endpoint_url": "https://x.example/"}}),
            "invalid_delivery",
        ),
        (
            json!({"delivery": {"method": POLL}, "events_requested": ["https://example.com/not-an-event"]}),
            "unknown_event_type",
        ),
    ] {
        let (s, v) = r.call("POST", "/ssf/streams", &a, Some(body.clone())).await;
        assert_eq!((s, v["error"].as_str()), (400, Some(code)), "{body}: {v}");
    }
    let (s, v) = r
        .call(
            "POST",
            "/ssf/streams",
            &a,
            Some(json!({"delivery": {"method": POLL}, "bogus": 1})),
        )
        .await;
    assert!(s == 400 || s == 422, "{s} {v}");
    let (s, _) = r
        .call(
            "PATCH",
            "/ssf/streams",
            &a,
            Some(json!({"description": "x"})),
        )
        .await;
    assert_eq!(s, 400, "stream_id is required");
    // A create that names a stream (here one that exists) is refused, not silently renamed:
    // the receiver would otherwise PATCH an id it never got.
    let existing = r
        .ok(
            "POST",
            "/ssf/streams",
            json!({"delivery": {"method": POLL}}),
        )
        .await["stream_id"]
        .clone();
    let before = r.call("GET", "/ssf/streams", &a, None).await.1;
    let (s, v) = r
        .call(
            "POST",
            "/ssf/streams",
            &a,
            Some(json!({"stream_id": existing, "delivery": {"method": POLL}})),
        )
        .await;
    assert_eq!(
        (s, v["error"].as_str()),
        (400, Some("invalid_request")),
        "{v}"
    );
    assert!(v["message"].as_str().unwrap().contains("stream_id"), "{v}");
    let after = r.call("GET", "/ssf/streams", &a, None).await.1;
    assert_eq!(before, after, "nothing was created");

    // With the network allowed by an admin, the same internal address is accepted.
    let allowed = Registry::start(SignalSettings {
        networks: steward::registry::signals::network::ReceiverNetworks {
            allowed: vec!["10.0.0.0/24".parse().unwrap()],
        },
        ..fast_retries()
    })
    .await;
    let (s, v) = allowed
        .call(
            "POST",
            "/ssf/streams",
            &allowed.admin_auth(),
            Some(json!({"delivery": {"method": PUSH, "endpoint_url": "https://10.0.0.5/x"}})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
}

/// Poll delivery (RFC 8936): SETs in order, re-delivered until acknowledged, never after;
/// acknowledgements for unknown jtis are refused whole; setErrs are recorded; a verification
/// event arrives on demand. A SET is never accepted as an access token.
#[tokio::test]
async fn poll_acknowledges_and_a_set_is_never_an_access_token() {
    let r = Registry::start(fast_retries()).await;
    let a = r.admin_auth();
    let (s, v) = r
        .call(
            "POST",
            "/ssf/streams",
            &a,
            Some(json!({"delivery": {"method": POLL}})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let id = v["stream_id"].as_str().unwrap().to_string();
    let poll_url = v["delivery"]["endpoint_url"].as_str().unwrap().to_string();
    assert_eq!(poll_url, format!("{}/ssf/poll/{id}", r.base));
    let path = format!("/ssf/poll/{id}");
    let meta: Value = r
        .http
        .get(format!("{}/.well-known/ssf-configuration", r.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["spec_version"], "1_0");
    assert_eq!(meta["delivery_methods_supported"], json!([PUSH, POLL]));
    assert_eq!(
        meta["configuration_endpoint"],
        format!("{}/ssf/streams", r.base)
    );

    let (s, _) = r
        .call(
            "POST",
            "/ssf/verify",
            &a,
            Some(json!({"stream_id": id, "state": "abc"})),
        )
        .await;
    assert_eq!(s, 204);
    let agent = r.agent("p", &["crm:read"], None).await;
    r.ok("POST", &format!("/v1/agents/{}/revoke", agent.0), json!({}))
        .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while r.ok("GET", &format!("/v1/streams/{id}"), Value::Null).await["pending"] != 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "three SETs never queued"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (s, v) = r
        .call(
            "POST",
            &path,
            &a,
            Some(json!({"maxEvents": 2, "returnImmediately": false})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let first: Vec<String> = v["sets"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(first.len(), 2);
    assert_eq!(v["moreAvailable"], true);
    let c = r
        .verify(
            v["sets"][&first[0]].as_str().unwrap(),
            "admin:admin@example.com",
        )
        .await;
    // Not acknowledged: the same SETs come again.
    let (_, again) = r
        .call(
            "POST",
            &path,
            &a,
            Some(json!({"maxEvents": 2, "returnImmediately": true})),
        )
        .await;
    assert_eq!(again["sets"], v["sets"]);
    // An unknown jti fails the whole acknowledgement; nothing was acknowledged.
    let (s, e) = r
        .call(
            "POST",
            &path,
            &a,
            Some(json!({"ack": [first[0], "no-such-jti"], "returnImmediately": true})),
        )
        .await;
    assert_eq!(
        (s, e["err"].as_str()),
        (400, Some("invalid_request")),
        "{e}"
    );
    assert!(e["description"].as_str().unwrap().contains("no-such-jti"));
    let (_, again) = r
        .call(
            "POST",
            &path,
            &a,
            Some(json!({"maxEvents": 2, "returnImmediately": true})),
        )
        .await;
    assert_eq!(again["sets"], v["sets"]);
    // Acknowledge one, refuse the other: the third comes next; re-acknowledging is harmless.
    let (s, next) = r.call("POST", &path, &a, Some(json!({
        "ack": [first[0]], "setErrs": {(first[1].clone()): {"err": "invalid_key", "description": "test"}},
        "returnImmediately": true}))).await;
    assert_eq!(s, 200, "{next}");
    let rest: Vec<String> = next["sets"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(rest.len(), 1);
    assert!(!first.contains(&rest[0]));
    assert_eq!(next["moreAvailable"], false);
    let (s, done) = r
        .call(
            "POST",
            &path,
            &a,
            Some(json!({"ack": [first[0], rest[0]], "returnImmediately": true})),
        )
        .await;
    assert_eq!((s, done["sets"].clone()), (200, json!({})));
    let summary = r.ok("GET", &format!("/v1/streams/{id}"), Value::Null).await;
    assert_eq!(
        (
            summary["delivered"].clone(),
            summary["failed"].clone(),
            summary["pending"].clone()
        ),
        (json!(2), json!(1), json!(0))
    );
    assert!(
        summary["last_error"]
            .as_str()
            .unwrap()
            .contains("invalid_key")
    );

    // A SET replayed as an access token: inactive at introspection, refused by exchange.
    let set = v["sets"][&first[0]].as_str().unwrap().to_string();
    assert!(c["events"].is_object());
    let (s, i) = r
        .form("/oauth/introspect", Some(&a), &[("token", &set)])
        .await;
    assert_eq!((s, i), (200, json!({"active": false})));
    let worker = r.agent("w", &["crm:read"], None).await;
    let (s, e) = r
        .form(
            "/oauth/token",
            None,
            &[
                ("grant_type", GRANT_TOKEN_EXCHANGE),
                ("subject_token", &set),
                ("subject_token_type", TOKEN_TYPE_ACCESS),
                (
                    "actor_token",
                    &assertion(&worker, &format!("{}/oauth/token", r.base)),
                ),
                ("actor_token_type", TOKEN_TYPE_JWT),
                ("scope", "crm:read"),
                ("audience", "https://crm.example.com"),
            ],
        )
        .await;
    assert!(s == 400 || s == 401, "{s} {e}");
    assert!(e["access_token"].is_null(), "{e}");
}

/// The real binary killed with SIGKILL right after a revoke, while its receiver is down: the
/// outbox row (or the queued SET) is in the database, and a restarted registry delivers the
/// SET once the receiver is back.
#[tokio::test]
async fn a_sigkill_between_revoke_and_delivery_delivers_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("steward.db");
    let admin = {
        let store = registry::open_store(&db, OpenMode::CreateIfMissing).unwrap();
        let (_, admin) =
            registry::bootstrap_admin(store.as_ref(), "admin@example.com", "Admin", "t").unwrap();
        store
            .import_catalogue(&Actor::system("test"), &support::test_catalogue())
            .unwrap();
        admin.token
    };
    let rx = receiver().await;
    rx.up.store(false, Ordering::SeqCst);
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let auth = format!("Bearer {admin}");
    let server = support::Binary::start(&db);
    let call = |base: String, method: &'static str, path: String, body: Value| {
        let (http, auth) = (http.clone(), auth.clone());
        async move {
            let resp = http
                .request(method.parse().unwrap(), format!("{base}{path}"))
                .header("authorization", auth)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (s, v) = call(
        server.url.clone(),
        "POST",
        "/ssf/streams".into(),
        json!({"delivery": {"method": PUSH, "endpoint_url": rx.url}}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = call(
        server.url.clone(),
        "POST",
        "/v1/agents".into(),
        json!({"name": "doomed", "owner": "admin@example.com", "scopes": ["crm:read"]}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let agent = v["id"].as_str().unwrap().to_string();
    let (s, v) = call(
        server.url.clone(),
        "POST",
        format!("/v1/agents/{agent}/revoke"),
        json!({}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    server.kill();
    // The revoke committed its outbox row with it.
    let sql = support::open_sql(&db);
    let rows: i64 = sql
        .query_row(
            "SELECT count(*) FROM ssf_outbox o JOIN audit_events a ON a.seq = o.audit_seq
             WHERE a.action = 'agent.revoke' AND a.target = ?1",
            [&agent],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, 1);
    drop(sql);
    assert_eq!(rx.count(), 0);
    rx.up.store(true, Ordering::SeqCst);
    let _server = support::Binary::start(&db);
    let sets = rx.wait_for(1).await;
    let claims = jsonwebtoken::dangerous::insecure_decode::<Value>(&sets[0])
        .unwrap()
        .claims;
    assert_eq!(event(&claims).0, SESSION_REVOKED);
    assert_eq!(agent_of(&claims), Some(agent));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.count(), 1, "delivered once");
}

/// A failed authentication at `/ssf/` counts against the failed-authentication limits like at
/// every other route: beyond the budget for one credential, 429 with `Retry-After` instead of
/// 401, and one `auth.failure_burst` audit event; the right credential still works.
#[tokio::test]
async fn ssf_authentication_failures_are_limited_like_every_route() {
    let r = Registry::start_guarded(
        fast_retries(),
        Some(steward::registry::http::guards::GuardSettings {
            source_failures_per_minute: 1000,
            credential_failures_per_minute: 3,
            ..Default::default()
        }),
    )
    .await;
    let good = r.resource_auth("crm").await;
    let wrong = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("crm:sts_wrong")
    );
    for _ in 0..3 {
        let (s, v) = r.call("GET", "/ssf/streams", &wrong, None).await;
        assert_eq!(
            (s, v["error"].as_str()),
            (401, Some("unauthenticated")),
            "{v}"
        );
    }
    let refused = r
        .http
        .get(format!("{}/ssf/streams", r.base))
        .header("authorization", &wrong)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 429);
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    let v: Value = refused.json().await.unwrap();
    assert_eq!(v["error"], "too_many_failures", "{v}");
    // The body is never read before the caller is authenticated: a POST is limited the same.
    let (s, _) = r
        .call(
            "POST",
            "/ssf/streams",
            &wrong,
            Some(json!({"delivery": {"method": POLL}})),
        )
        .await;
    assert_eq!(s, 429);
    // A success is never refused.
    let (s, v) = r.call("GET", "/ssf/streams", &good, None).await;
    assert_eq!(s, 200, "{v}");
    // One audit event names the burst (written in the background).
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let n: i64 = r
            .sql()
            .query_row(
                "SELECT count(*) FROM audit_events WHERE action = 'auth.failure_burst'
                   AND details LIKE '%resource:crm%'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        if n == 1 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{n} burst events");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A resource server authenticates to `/ssf/` with an assertion it signed (private_key_jwt:
/// iss = sub = the resource, aud = the configuration endpoint or the issuer, spent once);
/// a wrong audience, another key and a replayed assertion are refused.
#[tokio::test]
async fn a_resource_authenticates_to_ssf_with_a_signed_assertion() {
    let r = Registry::start(fast_retries()).await;
    let mut seed = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut seed);
    let key = SigningKey::from_bytes(&seed);
    let jwk =
        json!({"kty": "OKP", "crv": "Ed25519", "x": B64.encode(key.verifying_key().as_bytes())});
    r.ok(
        "POST",
        "/v1/resources/crm/credentials",
        json!({"kind": "public-key", "public_key": jwk.to_string()}),
    )
    .await;
    let crm = ("crm".to_string(), key);
    let endpoint = format!("{}/ssf/streams", r.base);
    let first = assertion(&crm, &endpoint);
    let (s, v) = r
        .call(
            "POST",
            "/ssf/streams",
            &format!("Bearer {first}"),
            Some(json!({"delivery": {"method": POLL}, "description": "crm by key"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["aud"], "crm");
    let id = v["stream_id"].as_str().unwrap().to_string();
    // The issuer is an accepted audience too; the stream is crm's whichever way it signs in.
    let (s, v) = r
        .call(
            "GET",
            &format!("/ssf/streams?stream_id={id}"),
            &format!("Bearer {}", assertion(&crm, &r.base)),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let secret = r.resource_auth("crm").await;
    let (s, _) = r
        .call("GET", &format!("/ssf/status?stream_id={id}"), &secret, None)
        .await;
    assert_eq!(s, 200);
    // Refused: the same assertion again, another audience, a key crm does not hold.
    let mut other_seed = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut other_seed);
    let stranger = ("crm".to_string(), SigningKey::from_bytes(&other_seed));
    for (what, bad) in [
        ("replayed", first),
        (
            "another audience",
            assertion(&crm, "https://elsewhere.example.com/ssf/streams"),
        ),
        ("another key", assertion(&stranger, &endpoint)),
    ] {
        let (s, v) = r
            .call("GET", "/ssf/streams", &format!("Bearer {bad}"), None)
            .await;
        assert_eq!(
            (s, v["error"].as_str()),
            (401, Some("unauthenticated")),
            "{what}: {v}"
        );
    }
}

/// Delivered SETs (and their outbox rows) are pruned after `keep_delivered`; SETs a paused
/// stream holds are never pruned, count as pending (not failed) in the action's fan-out, and
/// are delivered when the stream resumes.
#[tokio::test]
async fn delivered_sets_are_pruned_and_a_paused_streams_sets_are_pending() {
    let r = Registry::start(SignalSettings {
        keep_delivered: Duration::ZERO,
        ..fast_retries()
    })
    .await;
    let rx = receiver().await;
    let stream = r.push_stream(&r.admin_auth(), &rx.url).await;
    let a = r.agent("pruned", &["crm:read"], None).await;
    let revoked = r
        .ok("POST", &format!("/v1/agents/{}/revoke", a.0), json!({}))
        .await;
    let seq = revoked["audit_seq"].as_i64().unwrap();
    rx.wait_for(2).await;
    let rows = |r: &Registry| -> (i64, i64, i64) {
        let db = r.sql();
        let q = |sql: &str| db.query_row(sql, [], |row| row.get::<_, i64>(0)).unwrap();
        (
            q("SELECT count(*) FROM ssf_queue WHERE state != 'pending'"),
            q("SELECT count(*) FROM ssf_queue WHERE state = 'pending'"),
            q(&format!(
                "SELECT count(*) FROM ssf_outbox WHERE audit_seq = {seq}"
            )),
        )
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    while rows(&r) != (0, 0, 0) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "delivered SETs are still kept: {:?}",
            rows(&r)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let s = r
        .ok("GET", &format!("/v1/streams/{stream}"), Value::Null)
        .await;
    assert_eq!(s["delivered"], 2, "the counts outlive the pruned rows: {s}");

    // Paused: the next revoke's SET waits, is pending, and survives pruning.
    r.ok("POST", &format!("/v1/streams/{stream}/pause"), json!({}))
        .await;
    let b = r.agent("held", &["crm:read"], None).await;
    let revoked = r
        .ok("POST", &format!("/v1/agents/{}/revoke", b.0), json!({}))
        .await;
    let seq = revoked["audit_seq"].as_i64().unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    let fan_out = loop {
        let f = r
            .ok("GET", &format!("/v1/signals/{seq}"), Value::Null)
            .await;
        if f["fanned_out"] == true {
            break f;
        }
        assert!(tokio::time::Instant::now() < deadline, "never fanned out");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        fan_out,
        json!({"audit_seq": seq, "fanned_out": true, "notified": 0, "pending": 1, "failed": 0})
    );
    // Whatever the pruner's timing, a prune for a day ahead (by the registry's clock) keeps a
    // paused stream's pending SETs: the rule is checked directly instead of sleeping through
    // pruning passes.
    let a_day_ahead = r.served.clock.unix() + 86_400;
    steward::registry::store::StreamStore::prune_delivered(r.served.store.as_ref(), a_day_ahead)
        .unwrap();
    assert_eq!(rows(&r).1, 2, "a paused stream's SETs are kept");
    assert_eq!(rx.count(), 2, "nothing is delivered while paused");
    r.ok("POST", &format!("/v1/streams/{stream}/resume"), json!({}))
        .await;
    let sets = rx.wait_for(4).await;
    let last = r.verify(&sets[3], "admin:admin@example.com").await;
    assert_eq!(agent_of(&last), Some(b.0.clone()));
}

/// `steward receive` (the real binary) registers a push stream as the resource `crm`,
/// verifies the registry's SETs against the JWKS and prints each event; it refuses a push
/// without the stream's authorization, a JWT that is not a SET (`typ`), and a SET signed with
/// a key the registry does not hold.
#[tokio::test]
async fn steward_receive_verifies_and_prints_a_revoke() {
    use std::io::BufRead;
    let r = Registry::start(fast_retries()).await;
    let added = r
        .ok(
            "POST",
            "/v1/resources/crm/credentials",
            json!({"kind": "static-secret", "label": "receiver"}),
        )
        .await;
    let secret = added["secret"].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("stream.toml");
    std::fs::write(
        &config,
        format!(
            "registry = \"{}\"\nresource = \"crm\"\nsecret_env = \"CRM_SECRET\"\n\
             listen = \"127.0.0.1:0\"\npush_authorization = \"Bearer test-push\"\n",
            r.base
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(support::steward_exe())
        .args([
            "receive",
            "--stream-config",
            config.to_str().unwrap(),
            "--json",
        ])
        .env("CRM_SECRET", secret)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<(bool, String)>();
    let (out, err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send((true, l));
        }
    });
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx2.send((false, l));
        }
    });
    async fn next(
        lines: &mut tokio::sync::mpsc::UnboundedReceiver<(bool, String)>,
        want_stdout: bool,
    ) -> String {
        loop {
            let (is_out, l) = tokio::time::timeout(WAIT, lines.recv())
                .await
                .expect("steward receive said nothing in time")
                .expect("steward receive is running");
            if is_out == want_stdout {
                return l;
            }
        }
    }
    let ready = next(&mut lines, false).await;
    let url = ready
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no address in {ready:?}"))
        .trim_end_matches(';')
        .to_string();
    let streams = r.ok("GET", "/v1/streams", Value::Null).await;
    assert_eq!(
        streams["streams"][0]["receiver"], "resource:crm",
        "{streams} {ready}"
    );

    let agent = r.agent("watched", &["crm:read"], None).await;
    let revoked = r
        .ok(
            "POST",
            &format!("/v1/agents/{}/revoke", agent.0),
            json!({"reason": "leaked key"}),
        )
        .await;
    let first: Value = serde_json::from_str(&next(&mut lines, true).await).unwrap();
    assert!(
        first["event"]
            .as_str()
            .unwrap()
            .ends_with("credential-change"),
        "{first}"
    );
    let line: Value = serde_json::from_str(&next(&mut lines, true).await).unwrap();
    assert_eq!(line["event"], SESSION_REVOKED, "{line}");
    assert_eq!(line["agent"], json!(agent.0));
    assert_eq!(line["reason"], "leaked key");
    assert_eq!(line["revoked_agents"], 1);
    // The registry marks the push delivered once the receiver's 202 is in.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let f = r
            .ok(
                "GET",
                &format!("/v1/signals/{}", revoked["audit_seq"]),
                Value::Null,
            )
            .await;
        if f["notified"] == 1 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{f}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Forgeries are refused with RFC 8935 errors and print nothing.
    let mut seed = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut seed);
    let der = SigningKey::from_bytes(&seed).to_pkcs8_der().unwrap();
    let jwks: Value = r
        .http
        .get(format!("{}/.well-known/jwks.json", r.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kid = jwks["keys"][0]["kid"].as_str().unwrap().to_string();
    let forge = |typ: &str| {
        let mut h = Header::new(Algorithm::EdDSA);
        h.typ = Some(typ.into());
        h.kid = Some(kid.clone());
        let claims = json!({"iss": r.base, "aud": "crm", "iat": 1, "jti": "forged",
            "events": {SESSION_REVOKED: {"event_timestamp": 1}},
            "sub_id": {"format": "iss_sub", "iss": r.base, "sub": "ag_victim"}});
        jsonwebtoken::encode(&h, &claims, &EncodingKey::from_ed_der(der.as_bytes())).unwrap()
    };
    for (auth, body, want, err) in [
        (
            "Bearer wrong",
            forge("secevent+jwt"),
            401,
            "authentication_failed",
        ),
        ("Bearer test-push", forge("JWT"), 400, "invalid_request"),
        (
            "Bearer test-push",
            forge("secevent+jwt"),
            400,
            "invalid_key",
        ),
    ] {
        let resp = r
            .http
            .post(&url)
            .header("authorization", auth)
            .header("content-type", "application/secevent+jwt")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), want);
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["err"], err, "{v}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !std::iter::from_fn(|| lines.try_recv().ok()).any(|(is_out, _)| is_out),
        "a refused push prints nothing"
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// The SETs verify with stock Python libraries (joserfc and PyJWT, `tests/python/verify_sets.py`)
/// against the served JWKS, as a relying party written in Python would verify them. Skipped
/// without `STEWARD_PYTHON` (made by `.ci/run`); under CI its absence fails.
#[tokio::test]
async fn sets_verify_with_stock_python_libraries() {
    let python = match std::env::var("STEWARD_PYTHON") {
        Ok(p) if !p.is_empty() => {
            assert!(
                std::path::Path::new(&p).exists(),
                "STEWARD_PYTHON={p} does not exist"
            );
            p
        }
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but STEWARD_PYTHON is not set: .ci/run makes the venv with the stock clients"
            );
            eprintln!("skipped: set STEWARD_PYTHON to a venv's python with the stock clients");
            return;
        }
    };
    let r = Registry::start(fast_retries()).await;
    let a = r.admin_auth();
    let (s, v) = r
        .call(
            "POST",
            "/ssf/streams",
            &a,
            Some(json!({"delivery": {"method": POLL}})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let id = v["stream_id"].as_str().unwrap().to_string();
    let aud = v["aud"].as_str().unwrap().to_string();
    let parent = r.agent("py-parent", &["crm:read"], None).await;
    r.agent("py-child", &["crm:read"], Some(&parent.0)).await;
    r.ok(
        "POST",
        &format!("/v1/agents/{}/revoke", parent.0),
        json!({"reason": "python"}),
    )
    .await;
    // credential-change ×2, session-revoked ×2 (the subtree).
    let deadline = tokio::time::Instant::now() + WAIT;
    let sets: Vec<String> = loop {
        let (s, v) = r
            .call(
                "POST",
                &format!("/ssf/poll/{id}"),
                &a,
                Some(json!({"maxEvents": 50, "returnImmediately": true})),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        let sets = v["sets"].as_object().unwrap();
        if sets.len() >= 4 {
            break sets
                .values()
                .map(|s| s.as_str().unwrap().to_string())
                .collect();
        }
        assert!(tokio::time::Instant::now() < deadline, "{v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sets.json");
    std::fs::write(&file, serde_json::to_vec(&sets).unwrap()).unwrap();
    let script = format!("{}/tests/python/verify_sets.py", env!("CARGO_MANIFEST_DIR"));
    let env = [
        ("REGISTRY", r.base.clone()),
        ("AUDIENCE", aud),
        ("SETS", file.display().to_string()),
        ("AGENT", parent.0.clone()),
    ];
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&python)
            .arg(&script)
            .envs(env)
            .env_remove("HTTP_PROXY")
            .env_remove("http_proxy")
            .env("NO_PROXY", "127.0.0.1,localhost")
            .output()
            .expect("run the Python interpreter")
    })
    .await
    .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "the Python script failed:\n{text}");
    assert!(text.contains("all SETs verified"), "{text}");
}

mod replicas;
