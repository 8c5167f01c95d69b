//! Behaviour: real exchanges against a real registry (loopback port, SQLite file) feed the
//! activity record; the detectors raise flags with evidence (and stay quiet on normal traffic);
//! flags move through their states with audit events under the authority rules; auto-suspend
//! works, is off by default, and never fires from refused requests.
//!
//! Baselines need days of history: each test teaches the agent's past through the engine's
//! own learning path (`learn_hour`/`learn_item`, what the engine also uses to rebuild from the
//! store at start; `history_is_rebuilt_from_the_store_at_start` checks that path end to end),
//! then sends real exchanges now.

use crate::support;

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use steward::model::flag::Severity;
use steward::model::tokens::{GRANT_TOKEN_EXCHANGE, TOKEN_TYPE_ACCESS, TOKEN_TYPE_JWT};
use steward::registry::behaviour::{Behaviour, BehaviourSettings, DetectorSettings};
use steward::registry::store::flags::HourDelta;
use steward::registry::store::{ActivityStore, SqliteStore};

struct Reg {
    base: String,
    http: reqwest::Client,
    admin: String,
    store: Arc<SqliteStore>,
    behaviour: Arc<Behaviour>,
    served: support::Served,
}

struct TestAgent {
    id: String,
    key: SigningKey,
}

fn settings(auto_suspend: Option<Severity>) -> BehaviourSettings {
    BehaviourSettings {
        auto_suspend,
        detectors: DetectorSettings {
            spike_floor: 20,
            ..DetectorSettings::default()
        },
        ..BehaviourSettings::default()
    }
}

fn lifted() -> steward::registry::http::guards::GuardSettings {
    steward::registry::http::guards::GuardSettings {
        source_failures_per_minute: 100_000,
        credential_failures_per_minute: 100_000,
        ..Default::default()
    }
}

async fn start_with(
    behaviour: BehaviourSettings,
    guards: steward::registry::http::guards::GuardSettings,
    dir: Option<tempfile::TempDir>,
) -> Reg {
    let mut launch = support::Launch::new().behaviour(behaviour).guards(guards);
    launch.dir = dir;
    reg_of(launch.serve().await)
}

fn reg_of(served: support::Served) -> Reg {
    Reg {
        base: served.url.clone(),
        http: reqwest::Client::new(),
        admin: served.admin.token.clone(),
        store: served.store.clone(),
        behaviour: served
            .behaviour
            .clone()
            .expect("the behaviour engine started"),
        served,
    }
}

async fn start(auto_suspend: Option<Severity>) -> Reg {
    start_with(settings(auto_suspend), lifted(), None).await
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

fn new_key() -> SigningKey {
    use rand::RngCore;
    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    SigningKey::from_bytes(&seed)
}

impl Reg {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        bearer: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(bearer);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str, bearer: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, bearer, None).await
    }

    async fn post(&self, path: &str, bearer: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, bearer, Some(body))
            .await
    }

    async fn ok(&self, path: &str, bearer: &str, body: Value) -> Value {
        let (s, v) = self.post(path, bearer, body).await;
        assert!((200..300).contains(&s), "POST {path}: {s} {v}");
        v
    }

    /// A person with `roles` and their own API token.
    async fn person(&self, email: &str, roles: &[&str]) -> String {
        self.ok(
            "/v1/people",
            &self.admin,
            json!({"email": email, "display_name": email, "roles": roles}),
        )
        .await;
        let issued = self
            .ok(
                &format!("/v1/people/{email}/tokens"),
                &self.admin,
                json!({}),
            )
            .await;
        let invitation = issued["token"].as_str().unwrap().to_string();
        self.ok("/v1/me/tokens", &invitation, json!({})).await["token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn agent(&self, owner: &str, scopes: &[&str]) -> TestAgent {
        let agent = self
            .ok(
                "/v1/agents",
                &self.admin,
                json!({"name": format!("bot-{}", random_jti()), "owner": owner, "scopes": scopes}),
            )
            .await;
        let id = agent["id"].as_str().unwrap().to_string();
        let key = new_key();
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": B64.encode(key.verifying_key().as_bytes())});
        self.ok(
            &format!("/v1/agents/{id}/credentials"),
            &self.admin,
            json!({"kind": "public-key", "public_key": jwk.to_string()}),
        )
        .await;
        TestAgent { id, key }
    }

    /// A person access token of the admin that `agent` may act with.
    async fn subject(&self, agent: &str) -> String {
        self.ok(
            "/v1/me/access-token",
            &self.admin,
            json!({"ttl_seconds": 3600, "may_act": agent}),
        )
        .await["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn assertion(&self, agent: &TestAgent, key: &SigningKey) -> String {
        let claims = json!({"iss": agent.id, "sub": agent.id, "aud": format!("{}/oauth/token", self.base),
            "iat": now(), "exp": now() + 60, "jti": random_jti()});
        let der = key.to_pkcs8_der().unwrap();
        jsonwebtoken::encode(
            &Header::new(Algorithm::EdDSA),
            &claims,
            &EncodingKey::from_ed_der(der.as_bytes()),
        )
        .unwrap()
    }

    async fn exchange_with(
        &self,
        agent: &TestAgent,
        key: &SigningKey,
        subject: &str,
        scope: &str,
        audience: &str,
    ) -> (u16, Value) {
        let assertion = self.assertion(agent, key);
        let resp = self
            .http
            .post(format!("{}/oauth/token", self.base))
            .form(&[
                ("grant_type", GRANT_TOKEN_EXCHANGE),
                ("subject_token", subject),
                ("subject_token_type", TOKEN_TYPE_ACCESS),
                ("actor_token", assertion.as_str()),
                ("actor_token_type", TOKEN_TYPE_JWT),
                ("scope", scope),
                ("audience", audience),
            ])
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn exchange(&self, agent: &TestAgent, subject: &str, scope: &str, audience: &str) -> u16 {
        let (s, v) = self
            .exchange_with(agent, &agent.key, subject, scope, audience)
            .await;
        assert_eq!(s, 200, "{v}");
        s
    }

    /// Teaches `days` of past: `per_hour` exchanges every hour, with `scope` and `audience`.
    fn teach(&self, agent: &str, days: i64, per_hour: u32, items: &[&str]) {
        let this_hour = now().div_euclid(3600) * 3600;
        self.behaviour.learn(|d| {
            for h in 1..=days * 24 {
                d.learn_hour(agent, this_hour - h * 3600, per_hour, 0);
            }
            for item in items {
                d.learn_item(agent, item, this_hour - days * 86_400);
            }
        });
    }

    async fn flags(&self, query: &str, bearer: &str) -> Vec<Value> {
        self.behaviour.flush();
        let (s, v) = self.get(&format!("/v1/flags{query}"), bearer).await;
        assert_eq!(s, 200, "{v}");
        v["flags"].as_array().unwrap().clone()
    }

    fn audit_actions(&self, target: &str) -> Vec<(String, String, Option<String>)> {
        crate::support::store_sql(&self.store)
            .with(|tx| {
                tx.prepare(
                    "SELECT action, actor_id, reason FROM audit_events WHERE target = ?1 \
                     ORDER BY seq",
                )?
                .query_map([target], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<steward::registry::store::sql::Result<Vec<_>>>()
            })
            .unwrap()
    }
}

const AUD: &str = "https://crm.example.com";

fn kinds(flags: &[Value]) -> Vec<String> {
    let mut k: Vec<String> = flags
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_string())
        .collect();
    k.sort();
    k
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn normal_traffic_is_quiet_and_a_spike_of_real_exchanges_is_flagged_with_evidence() {
    let r = start(None).await;
    let a = r.agent("admin@example.com", &["crm.orders:read"]).await;
    // 28 days of 4 exchanges every hour, always this scope, audience and subject, depth 1.
    r.teach(
        &a.id,
        28,
        4,
        &[
            "s:crm.orders:read",
            &format!("a:{AUD}"),
            "p:admin@example.com",
            "d:1",
        ],
    );
    let subject = r.subject(&a.id).await;
    for _ in 0..4 {
        r.exchange(&a, &subject, "crm.orders:read", AUD).await;
    }
    assert!(
        r.flags("", &r.admin).await.is_empty(),
        "normal traffic stays quiet"
    );
    // Threshold: max(10 × high, floor 20) with high = 4 + 3 × 0.5 → 55. Send 60 in the hour.
    for _ in 0..56 {
        r.exchange(&a, &subject, "crm.orders:read", AUD).await;
    }
    let flags = r.flags("", &r.admin).await;
    assert_eq!(kinds(&flags), vec!["rate-spike"], "{flags:?}");
    let f = &flags[0];
    assert_eq!(f["severity"], "high");
    assert_eq!(f["state"], "open");
    assert_eq!(f["agent_id"], a.id.as_str());
    let observed = f["evidence"]["observed"].as_str().unwrap();
    assert!(
        observed.starts_with("56 exchanges") || observed.starts_with("60 exchanges"),
        "{observed}"
    );
    assert!(
        f["evidence"]["baseline"]
            .as_str()
            .unwrap()
            .contains("median 4"),
        "{}",
        f["evidence"]["baseline"]
    );
    assert_eq!(f["evidence"]["events"][0]["scopes"][0], "crm.orders:read");
    // On the agent (labels and open flags), audited by the system, in the change feed.
    let (_, detail) = r.get(&format!("/v1/agents/{}", a.id), &r.admin).await;
    assert_eq!(detail["flags"], json!(["high:rate-spike"]));
    assert_eq!(detail["open_flags"][0]["id"], f["id"]);
    assert_eq!(detail["status"], "active", "auto-suspend is off by default");
    let audit = r.audit_actions(&a.id);
    assert!(
        audit
            .iter()
            .any(|(act, who, _)| act == "flag.open" && who == "steward-behaviour"),
        "{audit:?}"
    );
    let (_, changes) = r.get("/v1/changes?after=0&limit=1000", &r.admin).await;
    let touched = changes["agents"].as_array().unwrap();
    assert!(
        touched
            .iter()
            .any(|c| c["id"] == a.id.as_str() && c["flags"] == json!(["high:rate-spike"])),
        "{changes}"
    );
    // More of the same hour makes no second flag.
    for _ in 0..5 {
        r.exchange(&a, &subject, "crm.orders:read", AUD).await;
    }
    assert_eq!(r.flags("", &r.admin).await.len(), 1);
    // The activity record: raw events newest first and the hourly series with the band.
    let (s, act) = r
        .get(&format!("/v1/agents/{}/activity?limit=5", a.id), &r.admin)
        .await;
    assert_eq!(s, 200, "{act}");
    assert_eq!(act["events"].as_array().unwrap().len(), 5);
    assert_eq!(act["events"][0]["accepted"], true);
    assert_eq!(act["events"][0]["kind"], "exchange");
    assert_eq!(act["events"][0]["depth"], 1);
    assert_eq!(act["events"][0]["client_auth"], "private_key_jwt");
    let (s, hourly) = r
        .get(
            &format!("/v1/agents/{}/activity/hourly?days=7", a.id),
            &r.admin,
        )
        .await;
    assert_eq!(s, 200, "{hourly}");
    assert_eq!(hourly["points"].as_array().unwrap().len(), 168);
    assert_eq!(hourly["points"][167]["accepted"], 65);
    assert_eq!(hourly["baseline"]["judging"], true);
    assert_eq!(hourly["baseline"]["median"], 4.0);
    assert_eq!(hourly["scopes_24h"][0]["name"], "crm.orders:read");
    assert_eq!(hourly["scopes_24h"][0]["count"], 65);
    let (s, _) = r
        .get(
            &format!("/v1/agents/{}/activity/hourly?days=99", a.id),
            &r.admin,
        )
        .await;
    assert_eq!(s, 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_scope_and_a_new_audience_are_flagged_and_a_new_agent_is_not_judged() {
    let r = start(None).await;
    let a = r
        .agent("admin@example.com", &["crm.orders:read", "payments:refund"])
        .await;
    r.teach(
        &a.id,
        28,
        3,
        &[
            "s:crm.orders:read",
            &format!("a:{AUD}"),
            "p:admin@example.com",
            "d:1",
        ],
    );
    let subject = r.subject(&a.id).await;
    r.exchange(&a, &subject, "crm.orders:read", AUD).await;
    r.exchange(
        &a,
        &subject,
        "payments:refund",
        "https://payments.example.com",
    )
    .await;
    let flags = r.flags("", &r.admin).await;
    assert_eq!(
        kinds(&flags),
        vec!["first-scope", "new-audience"],
        "{flags:?}"
    );
    let first = flags.iter().find(|f| f["kind"] == "first-scope").unwrap();
    assert!(
        first["summary"]
            .as_str()
            .unwrap()
            .contains("payments:refund")
    );
    // The catalogue's tier decides a first use's severity (the test catalogue is all low).
    assert_eq!(first["severity"], "low");
    // Marked as a first use in the last 24 h.
    let (_, hourly) = r
        .get(&format!("/v1/agents/{}/activity/hourly", a.id), &r.admin)
        .await;
    let scopes = hourly["scopes_24h"].as_array().unwrap();
    let refund = scopes
        .iter()
        .find(|s| s["name"] == "payments:refund")
        .unwrap();
    assert_eq!(refund["first_use"], true);
    // A brand-new agent with no history does anything it is granted: nothing is judged.
    let b = r.agent("admin@example.com", &["payments:refund"]).await;
    let subject = r.subject(&b.id).await;
    r.exchange(
        &b,
        &subject,
        "payments:refund",
        "https://payments.example.com",
    )
    .await;
    let flags = r.flags(&format!("?agent={}", b.id), &r.admin).await;
    assert!(flags.is_empty(), "{flags:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_bad_assertions_raise_a_flag_but_never_suspend() {
    // Auto-suspend at the lowest severity: the refused burst (high) still must not suspend,
    // and the perimeter's real failure limits (10 per credential a minute) cut most of them.
    let r = start_with(
        settings(Some(Severity::Low)),
        steward::registry::http::guards::GuardSettings::default(),
        None,
    )
    .await;
    let a = r.agent("admin@example.com", &["crm.orders:read"]).await;
    r.teach(&a.id, 28, 3, &["s:crm.orders:read", &format!("a:{AUD}")]);
    let subject = r.subject(&a.id).await;
    let wrong = new_key();
    let mut limited = 0;
    for _ in 0..60 {
        let (s, _) = r
            .exchange_with(&a, &wrong, &subject, "crm.orders:read", AUD)
            .await;
        assert!(s == 401 || s == 429, "{s}");
        limited += (s == 429) as u32;
    }
    assert!(limited > 0, "the failure limiter cut some of them");
    let flags = r.flags("", &r.admin).await;
    assert_eq!(kinds(&flags), vec!["refused-burst"], "{flags:?}");
    assert_eq!(flags[0]["refused_only"], true);
    assert_eq!(flags[0]["auto_suspended"], false);
    let reasons: Vec<&str> = flags[0]["evidence"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert!(reasons.contains(&"rate_limited"), "{reasons:?}");
    let (_, detail) = r.get(&format!("/v1/agents/{}", a.id), &r.admin).await;
    assert_eq!(
        detail["status"], "active",
        "bad assertions cannot suspend an agent"
    );
    // Refusals naming agents that do not exist are counted, never flagged, never stored as
    // hourly buckets.
    let ghost = TestAgent {
        id: "agt_does_not_exist".into(),
        key: new_key(),
    };
    for _ in 0..60 {
        r.exchange_with(&ghost, &ghost.key, &subject, "crm.orders:read", AUD)
            .await;
    }
    r.behaviour.flush();
    assert_eq!(r.flags("", &r.admin).await.len(), 1);
    let conn = crate::support::store_sql(&r.store);
    let buckets: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM activity_hours WHERE agent_id = 'agt_does_not_exist'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(buckets, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_suspend_revokes_as_the_system_with_the_flag_as_reason() {
    let r = start(Some(Severity::High)).await;
    let a = r.agent("admin@example.com", &["crm.orders:read"]).await;
    r.teach(
        &a.id,
        28,
        4,
        &[
            "s:crm.orders:read",
            &format!("a:{AUD}"),
            "p:admin@example.com",
            "d:1",
        ],
    );
    let subject = r.subject(&a.id).await;
    let mut refused_after = 0;
    for _ in 0..80 {
        let (s, _) = r
            .exchange_with(&a, &a.key, &subject, "crm.orders:read", AUD)
            .await;
        if s != 200 {
            refused_after += 1;
        }
    }
    let flags = r.flags("", &r.admin).await;
    let spike = flags.iter().find(|f| f["kind"] == "rate-spike").unwrap();
    assert_eq!(spike["auto_suspended"], true);
    let (_, detail) = r.get(&format!("/v1/agents/{}", a.id), &r.admin).await;
    assert_eq!(detail["status"], "suspended");
    let audit = r.audit_actions(&a.id);
    let revoke = audit
        .iter()
        .find(|(act, _, _)| act == "agent.revoke")
        .expect("a revoke event");
    assert_eq!(revoke.1, "steward-behaviour");
    assert!(
        revoke
            .2
            .as_deref()
            .unwrap()
            .contains(spike["id"].as_str().unwrap()),
        "{revoke:?}"
    );
    // Once suspended, it obtains nothing more.
    let (s, _) = r
        .exchange_with(&a, &a.key, &subject, "crm.orders:read", AUD)
        .await;
    assert_ne!(s, 200);
    let _ = refused_after;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_move_open_acknowledged_resolved_under_the_authority_rules() {
    let r = start(None).await;
    let owner = r.person("owner@example.com", &[]).await;
    let other = r.person("other@example.com", &[]).await;
    let auditor = r.person("auditor@example.com", &["auditor"]).await;
    let responder = r.person("responder@example.com", &["responder"]).await;
    let a = r
        .agent("owner@example.com", &["crm.orders:read", "payments:refund"])
        .await;
    r.teach(&a.id, 28, 3, &["s:crm.orders:read", &format!("a:{AUD}")]);
    let subject = r.subject(&a.id).await;
    r.exchange(
        &a,
        &subject,
        "payments:refund",
        "https://payments.example.com",
    )
    .await;
    let flags = r.flags("?severity=low&state=open", &r.admin).await;
    assert_eq!(flags.len(), 2, "{flags:?}");
    let id = flags.iter().find(|f| f["kind"] == "first-scope").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Readers: admin, auditor, owner. Someone else sees nothing and learns nothing.
    assert_eq!(r.flags("", &auditor).await.len(), 2);
    assert_eq!(r.flags("", &owner).await.len(), 2);
    assert!(r.flags("", &other).await.is_empty());
    assert_eq!(r.get(&format!("/v1/flags/{id}"), &other).await.0, 404);
    let ack = |who: &str, reason: &str| {
        let who = who.to_string();
        let reason = reason.to_string();
        let path = format!("/v1/flags/{id}/acknowledge");
        let r = &r;
        async move { r.post(&path, &who, json!({"reason": reason})).await }
    };
    assert_eq!(ack(&other, "mine?").await.0, 404, "hidden like the agent");
    assert_eq!(
        ack(&auditor, "looking").await.0,
        403,
        "auditors write nothing"
    );
    assert_eq!(ack(&owner, "  ").await.0, 422, "a reason is required");
    assert_eq!(
        r.post(
            "/v1/flags/flg_nope/acknowledge",
            &r.admin,
            json!({"reason": "x"})
        )
        .await
        .0,
        404
    );
    let (s, v) = ack(&owner, "a planned refund run").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "acknowledged");
    assert_eq!(v["acknowledged_by"], "owner@example.com");
    let (s, v) = ack(&responder, "again").await;
    assert_eq!(s, 409, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("acknowledged"),
        "{v}"
    );
    // The owner is the party under suspicion: they may not resolve.
    let resolve = |who: String| {
        let path = format!("/v1/flags/{id}/resolve");
        let r = &r;
        async move {
            r.post(&path, &who, json!({"reason": "checked with the owner"}))
                .await
        }
    };
    assert_eq!(resolve(owner.clone()).await.0, 403);
    assert_eq!(resolve(auditor.clone()).await.0, 403);
    let (s, v) = resolve(responder.clone()).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "resolved");
    assert_eq!(resolve(r.admin.clone()).await.0, 409);
    // Audited with who and why; the agent's labels lose the resolved flag.
    let audit = r.audit_actions(&a.id);
    assert!(audit.iter().any(|(act, who, why)| act == "flag.acknowledge"
        && who == "owner@example.com"
        && why.as_deref() == Some("a planned refund run")));
    assert!(
        audit
            .iter()
            .any(|(act, who, _)| act == "flag.resolve" && who == "responder@example.com")
    );
    let (_, detail) = r.get(&format!("/v1/agents/{}", a.id), &r.admin).await;
    assert_eq!(detail["flags"], json!(["medium:new-audience"]));
    assert_eq!(r.flags("?state=unresolved", &r.admin).await.len(), 1);
    assert_eq!(r.get("/v1/flags?state=bogus", &r.admin).await.0, 422);
    // The activity API is authorised like the agent.
    assert_eq!(
        r.get(&format!("/v1/agents/{}/activity", a.id), &other)
            .await
            .0,
        404
    );
    assert_eq!(
        r.get(&format!("/v1/agents/{}/activity", a.id), &owner)
            .await
            .0,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_is_rebuilt_from_the_store_at_start_and_future_events_are_clamped() {
    let first = start_with(settings(None), lifted(), None).await;
    let a = first.agent("admin@example.com", &["crm.orders:read"]).await;
    // Write 10 days of stored hourly history, then start a second registry over the file.
    let this_hour = now().div_euclid(3600) * 3600;
    let hours: Vec<HourDelta> = (1..=240)
        .map(|h| HourDelta {
            agent_id: a.id.clone(),
            hour: this_hour - h * 3600,
            accepted: 6,
            refused: 0,
            items: vec![("s:crm.orders:read".into(), 6)],
        })
        .collect();
    first.store.record_activity(&[], &hours).unwrap();
    let Reg {
        served,
        store,
        admin,
        ..
    } = first;
    drop(store);
    let mut second = reg_of(
        served
            .restart_with(
                support::Launch::new()
                    .behaviour(settings(None))
                    .guards(lifted()),
            )
            .await,
    );
    second.admin = admin;
    second.behaviour.flush();
    let band = second.behaviour.band(&a.id, now());
    assert!(band.judging, "{band:?}");
    assert_eq!(band.median, 6.0);
    // An event dated an hour ahead is judged as now and counted as skew.
    let mut e = steward::registry::behaviour::event(
        chrono::Utc::now() + chrono::Duration::hours(1),
        &a.id,
        true,
        None,
        Some("admin@example.com"),
        1,
        &["crm.orders:read".to_string()],
        &[AUD.to_string()],
        Some("private_key_jwt"),
    );
    e.agent_id = a.id.clone();
    second.behaviour.observe(e, None);
    second.behaviour.flush();
    assert_eq!(
        second
            .behaviour
            .stats
            .skewed
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    let (_, act) = second
        .get(&format!("/v1/agents/{}/activity", a.id), &second.admin)
        .await;
    let at =
        chrono::DateTime::parse_from_rfc3339(act["events"][0]["at"].as_str().unwrap()).unwrap();
    assert!(at.timestamp() <= now() + 1);
}

/// Introspections by resource servers and revoke/decommission enter the activity record as raw
/// events (the acting agent's), never in the hourly buckets the baselines learn from; a
/// resource introspecting a token not addressed to it records nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspections_by_resources_and_revocations_are_activity() {
    let r = start(None).await;
    let a = r.agent("admin@example.com", &["crm.orders:read"]).await;
    let subject = r.subject(&a.id).await;
    let (s, v) = r
        .exchange_with(&a, &a.key, &subject, "crm.orders:read", AUD)
        .await;
    assert_eq!(s, 200, "{v}");
    let token = v["access_token"].as_str().unwrap().to_string();
    let reg = &r;
    let secret_of = |resource: &'static str| async move {
        let added = reg
            .ok(
                &format!("/v1/resources/{resource}/credentials"),
                &reg.admin,
                json!({"kind": "static-secret", "label": "introspection"}),
            )
            .await;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{resource}:{}", added["secret"].as_str().unwrap()))
        )
    };
    let crm = secret_of("crm").await;
    let payments = secret_of("payments").await;
    let introspect = |auth: String, token: String| async move {
        let resp = reg
            .http
            .post(format!("{}/oauth/introspect", reg.base))
            .header("authorization", auth)
            .form(&[("token", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        resp.json::<Value>().await.unwrap()
    };
    assert_eq!(introspect(crm.clone(), token.clone()).await["active"], true);
    // Not addressed to payments: it learns nothing, and nothing is recorded.
    assert_eq!(
        introspect(payments.clone(), token.clone()).await["active"],
        false
    );
    r.ok(
        &format!("/v1/agents/{}/revoke", a.id),
        &r.admin,
        json!({"reason": "incident 7"}),
    )
    .await;
    // A revoked token still presented to the resource: recorded as a refused introspection.
    assert_eq!(
        introspect(crm.clone(), token.clone()).await["active"],
        false
    );

    let b = r.agent("admin@example.com", &["crm.orders:read"]).await;
    r.ok(
        &format!("/v1/agents/{}/decommission", b.id),
        &r.admin,
        json!({"reason": "retired"}),
    )
    .await;
    r.behaviour.flush();

    let (s, page) = r
        .get(&format!("/v1/agents/{}/activity?limit=50", a.id), &r.admin)
        .await;
    assert_eq!(s, 200, "{page}");
    let events = page["events"].as_array().unwrap();
    let seen: Vec<(String, bool, Option<String>)> = events
        .iter()
        .rev() // oldest first
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_string(),
                e["accepted"].as_bool().unwrap(),
                e["reason"].as_str().map(str::to_string),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("exchange".to_string(), true, None),
            ("introspection".to_string(), true, None),
            ("revoke".to_string(), true, Some("revoked".to_string())),
            (
                "introspection".to_string(),
                false,
                Some("inactive".to_string())
            ),
        ],
        "{page}"
    );
    let by_crm = events
        .iter()
        .find(|e| e["kind"] == "introspection")
        .unwrap();
    assert_eq!(by_crm["client_auth"], "resource");
    assert!(
        by_crm["audience"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x == AUD),
        "{by_crm}"
    );
    let revoke = events.iter().find(|e| e["kind"] == "revoke").unwrap();
    assert_eq!(revoke["subject"], "admin@example.com");

    // The hourly buckets count the one exchange only.
    let (_, hourly) = r
        .get(
            &format!("/v1/agents/{}/activity/hourly?days=1", a.id),
            &r.admin,
        )
        .await;
    let (accepted, refused) =
        hourly["points"]
            .as_array()
            .unwrap()
            .iter()
            .fold((0, 0), |(a, f), p| {
                (
                    a + p["accepted"].as_u64().unwrap(),
                    f + p["refused"].as_u64().unwrap(),
                )
            });
    assert_eq!((accepted, refused), (1, 0), "{hourly}");

    let (_, page) = r
        .get(&format!("/v1/agents/{}/activity", b.id), &r.admin)
        .await;
    let kinds: Vec<(&str, &str)> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap(),
                e["reason"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(kinds, vec![("revoke", "decommissioned")], "{page}");
    // Recording is not judging: revocations and introspections raise no flag.
    assert!(r.flags("", &r.admin).await.is_empty());
}

impl Reg {
    /// An agent under `parent` (a sub-agent or an instance), without credentials.
    async fn child(&self, parent: &str, kind: &str) -> String {
        self.ok(
            "/v1/agents",
            &self.admin,
            json!({"name": format!("{kind}-{}", random_jti()), "owner": "admin@example.com",
                   "kind": kind, "parent_id": parent, "scopes": ["crm.orders:read"]}),
        )
        .await["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The agent's revoke events as (subject, reason), oldest first.
    async fn revoke_events(&self, agent: &str) -> Vec<(String, String)> {
        self.behaviour.flush();
        let (s, page) = self
            .get(
                &format!("/v1/agents/{agent}/activity?limit=50"),
                &self.admin,
            )
            .await;
        assert_eq!(s, 200, "{page}");
        page["events"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .filter(|e| e["kind"] == "revoke")
            .map(|e| {
                (
                    e["subject"].as_str().unwrap_or("").to_string(),
                    e["reason"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }
}

/// The brake stops a whole tree: the target and each sub-agent and instance it stopped is a
/// revoke event (the cascade names its root); a bulk revoke (the console's, one revoke per
/// marked agent) records each; a repeated revoke that changes nothing records nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_brake_records_every_stopped_agent_and_a_bulk_revoke_each() {
    let r = start(None).await;
    let root = r.agent("admin@example.com", &["crm.orders:read"]).await;
    let sub = r.child(&root.id, "sub-agent").await;
    let inst = r.child(&sub, "instance").await;
    let other = r.agent("admin@example.com", &["crm.orders:read"]).await;
    r.ok(
        &format!("/v1/agents/{}/revoke", root.id),
        &r.admin,
        json!({"reason": "incident 9"}),
    )
    .await;
    let revoked = ("admin@example.com".to_string(), "revoked".to_string());
    let cascade = (
        "admin@example.com".to_string(),
        format!("revoked, with {}", root.id),
    );
    assert_eq!(r.revoke_events(&root.id).await, vec![revoked.clone()]);
    assert_eq!(r.revoke_events(&sub).await, vec![cascade.clone()]);
    assert_eq!(r.revoke_events(&inst).await, vec![cascade]);
    assert!(r.revoke_events(&other.id).await.is_empty());
    // A bulk revoke: the console sends one revoke per marked agent, the root again among them.
    for id in [&other.id, &root.id] {
        r.ok(
            &format!("/v1/agents/{id}/revoke"),
            &r.admin,
            json!({"reason": "bulk revocation in the console"}),
        )
        .await;
    }
    assert_eq!(r.revoke_events(&other.id).await, vec![revoked.clone()]);
    // The root was already stopped: nothing changed, nothing more recorded.
    assert_eq!(r.revoke_events(&root.id).await, vec![revoked]);
}

/// Decommissioning cascades too: each decommissioned agent of the tree is a revoke event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decommissioning_a_tree_records_each_agent() {
    let r = start(None).await;
    let root = r.agent("admin@example.com", &["crm.orders:read"]).await;
    let sub = r.child(&root.id, "sub-agent").await;
    r.ok(
        &format!("/v1/agents/{}/decommission", root.id),
        &r.admin,
        json!({"reason": "retired"}),
    )
    .await;
    let done = vec![(
        "admin@example.com".to_string(),
        "decommissioned".to_string(),
    )];
    assert_eq!(r.revoke_events(&root.id).await, done);
    assert_eq!(r.revoke_events(&sub).await, done);
}

/// An automatic suspension is a revoke event of the agent and of its tree, by the system,
/// naming the flag; it raises no further flag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_automatic_suspension_is_activity_by_the_system_naming_the_flag() {
    let r = start(Some(Severity::High)).await;
    let a = r.agent("admin@example.com", &["crm.orders:read"]).await;
    let sub = r.child(&a.id, "sub-agent").await;
    r.teach(
        &a.id,
        28,
        4,
        &[
            "s:crm.orders:read",
            &format!("a:{AUD}"),
            "p:admin@example.com",
            "d:1",
        ],
    );
    let subject = r.subject(&a.id).await;
    for _ in 0..80 {
        let _ = r
            .exchange_with(&a, &a.key, &subject, "crm.orders:read", AUD)
            .await;
    }
    let flags = r.flags("", &r.admin).await;
    let spike = flags.iter().find(|f| f["kind"] == "rate-spike").unwrap();
    assert_eq!(spike["auto_suspended"], true, "{spike}");
    let id = spike["id"].as_str().unwrap();
    let why = format!("suspended automatically: flag {id}");
    assert_eq!(
        r.revoke_events(&a.id).await,
        vec![("steward-behaviour".to_string(), why.clone())]
    );
    assert_eq!(
        r.revoke_events(&sub).await,
        vec![(
            "steward-behaviour".to_string(),
            format!("{why}, with {}", a.id)
        )]
    );
    // The suspension raised nothing more: the flags are the traffic's own.
    let after = r.flags("", &r.admin).await;
    assert_eq!(after.len(), flags.len(), "{after:?}");
}
