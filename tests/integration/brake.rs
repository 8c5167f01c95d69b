//! The brake against a real registry: revoking covers the agent's whole tree (instances and
//! sub-agents stop exchanging at once), reinstating offers the same scope, suspension means
//! suspended (no credential added or re-enabled behind the brake; only admins and responders
//! re-enable), decommission's cascade stops at other people's agents and closes open reviews.

use crate::support;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use steward::model::tokens::{GRANT_TOKEN_EXCHANGE, TOKEN_TYPE_ACCESS, TOKEN_TYPE_JWT};
use support::exchange::form;
use support::{Member, Registry, Reply};

/// An agent with a registered Ed25519 key.
struct KeyedAgent {
    id: String,
    key: SigningKey,
    credential: String,
}

fn new_key() -> SigningKey {
    use rand::RngCore;
    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    SigningKey::from_bytes(&seed)
}

fn random_jti() -> String {
    use rand::RngCore;
    let mut b = [0u8; 12];
    rand::rng().fill_bytes(&mut b);
    B64.encode(b)
}

impl KeyedAgent {
    fn assertion(&self, aud: &str) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = json!({"iss": self.id, "sub": self.id, "aud": aud, "iat": now,
                            "exp": now + 60, "jti": random_jti()});
        let der = self.key.to_pkcs8_der().unwrap();
        jsonwebtoken::encode(
            &Header::new(Algorithm::EdDSA),
            &claims,
            &EncodingKey::from_ed_der(der.as_bytes()),
        )
        .unwrap()
    }
}

/// Registers an agent owned by `owner` (under `parent` as `kind`) with one scope and a key.
async fn keyed(
    reg: &Registry,
    name: &str,
    owner: &str,
    parent: Option<(&str, &str)>,
) -> KeyedAgent {
    let mut body = json!({"name": name, "owner": owner, "scopes": ["crm.orders:read"]});
    if let Some((parent, kind)) = parent {
        body["parent_id"] = json!(parent);
        body["kind"] = json!(kind);
    }
    let id = reg.register_with(body).await;
    let key = new_key();
    let jwk =
        json!({"kty": "OKP", "crv": "Ed25519", "x": B64.encode(key.verifying_key().as_bytes())});
    let added = reg
        .post(
            &format!("/v1/agents/{id}/credentials"),
            &reg.admin,
            json!({"kind": "public-key", "public_key": jwk.to_string()}),
        )
        .await;
    let credential = added.expect(201)["credential"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    KeyedAgent {
        id,
        key,
        credential,
    }
}

async fn person_token(reg: &Registry, who: &Member) -> String {
    let minted = reg
        .post("/v1/me/access-token", who, json!({"ttl_seconds": 600}))
        .await;
    minted.expect(201)["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn exchange(reg: &Registry, subject: &str, agent: &KeyedAgent) -> Reply {
    let aud = format!("{}/oauth/token", reg.url);
    form(
        reg,
        "/oauth/token",
        None,
        &[
            ("grant_type", GRANT_TOKEN_EXCHANGE),
            ("subject_token", subject),
            ("subject_token_type", TOKEN_TYPE_ACCESS),
            ("actor_token", &agent.assertion(&aud)),
            ("actor_token_type", TOKEN_TYPE_JWT),
            ("scope", "crm.orders:read"),
            ("audience", "https://crm.example.com"),
        ],
    )
    .await
}

async fn introspect(reg: &Registry, who: &Member, token: &str) -> Value {
    let reply = form(
        reg,
        "/oauth/introspect",
        Some(&who.token),
        &[("token", token)],
    )
    .await;
    reply.expect(200).clone()
}

fn statuses(reg_agent: &Value) -> Vec<(String, String)> {
    reg_agent
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["agent_id"].as_str().unwrap().to_string(),
                s["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn enabled_credentials(detail: &Value) -> usize {
    detail["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["disabled_at"].is_null())
        .count()
}

async fn audit_actions(reg: &Registry, id: &str) -> Vec<String> {
    let page = reg
        .get(&format!("/v1/agents/{id}/audit?limit=1000"), &reg.admin)
        .await;
    page.expect(200)["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn revoking_an_agent_stops_its_sub_agents_and_instances_and_reports_each() {
    let reg = Registry::start().await;
    let owner = reg.owner.email.clone();
    let planner = keyed(&reg, "planner", &owner, None).await;
    let worker = keyed(&reg, "worker", &owner, Some((&planner.id, "sub-agent"))).await;
    let shard = keyed(&reg, "worker-1", &owner, Some((&worker.id, "instance"))).await;
    let bystander = keyed(&reg, "bystander", &owner, None).await;
    let subject = person_token(&reg, &reg.owner).await;

    // Each of them exchanges before the brake.
    let worker_token = exchange(&reg, &subject, &worker).await;
    let worker_token = worker_token.expect(200)["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let shard_token = exchange(&reg, &subject, &shard).await;
    let shard_token = shard_token.expect(200)["access_token"]
        .as_str()
        .unwrap()
        .to_string();

    let outcome = reg
        .post(
            &format!("/v1/agents/{}/revoke", planner.id),
            &reg.responder,
            json!({"reason": "INC-7 planner compromised"}),
        )
        .await;
    let outcome = outcome.expect(200).clone();
    assert_eq!(
        statuses(&outcome["stopped"]),
        vec![
            (planner.id.clone(), "suspended".into()),
            (worker.id.clone(), "suspended".into()),
            (shard.id.clone(), "suspended".into()),
        ],
        "{outcome}"
    );
    let stopped = outcome["stopped"].as_array().unwrap();
    assert_eq!(stopped[1]["name"], json!("worker"));
    assert_eq!(stopped[1]["tokens_killed"], json!(1));
    assert_eq!(stopped[2]["tokens_killed"], json!(1));
    assert!(
        stopped
            .iter()
            .all(|s| s["credentials_disabled"] == json!(1))
    );
    assert_eq!(outcome["tokens_revoked"], json!(2));

    // Nothing under the planner exchanges any more; their tokens are dead; the bystander lives.
    for agent in [&planner, &worker, &shard] {
        let refused = exchange(&reg, &subject, agent).await;
        assert_eq!(
            refused.status, 401,
            "{} still exchanges: {refused:?}",
            agent.id
        );
        assert_eq!(reg.agent(&agent.id).await["status"], json!("suspended"));
    }
    for token in [&worker_token, &shard_token] {
        assert_eq!(
            introspect(&reg, &reg.admin, token).await,
            json!({"active": false})
        );
    }
    exchange(&reg, &subject, &bystander).await.expect(200);

    // Every agent of the tree has its own audit event, naming where the cascade came from.
    for agent in [&worker, &shard] {
        assert!(
            audit_actions(&reg, &agent.id)
                .await
                .contains(&"agent.revoke".to_string())
        );
    }

    // A repeat changes nothing, records nothing, and points at the revoke that did it.
    let events = reg.audit_count();
    let again = reg
        .post(
            &format!("/v1/agents/{}/revoke", planner.id),
            &reg.owner,
            json!({}),
        )
        .await;
    let again = again.expect(200);
    assert_eq!(again["changed"], json!(false));
    assert_eq!(again["audit_seq"], outcome["audit_seq"]);
    assert_eq!(
        reg.audit_count(),
        events,
        "a no-op revoke adds no audit event"
    );
    assert_eq!(again["stopped"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn reinstating_takes_the_agent_alone_by_default_or_its_tree_when_asked() {
    let reg = Registry::start().await;
    let owner = reg.owner.email.clone();
    let planner = keyed(&reg, "planner", &owner, None).await;
    let worker = keyed(&reg, "worker", &owner, Some((&planner.id, "sub-agent"))).await;
    let shard = keyed(&reg, "worker-1", &owner, Some((&worker.id, "instance"))).await;
    reg.post(
        &format!("/v1/agents/{}/revoke", planner.id),
        &reg.admin,
        json!({}),
    )
    .await
    .expect(200);

    // No child restarts under a stopped parent.
    let early = reg
        .post(
            &format!("/v1/agents/{}/reinstate", worker.id),
            &reg.responder,
            json!({}),
        )
        .await;
    assert_eq!((early.status, early.code()), (409, "conflict"), "{early:?}");
    assert!(
        early.body["message"]
            .as_str()
            .unwrap()
            .contains(&planner.id)
    );

    // Default: the agent alone, and it says what stays suspended.
    let alone = reg
        .post(
            &format!("/v1/agents/{}/reinstate", planner.id),
            &reg.responder,
            json!({"reason": "false alarm"}),
        )
        .await;
    let alone = alone.expect(200).clone();
    assert_eq!(alone["status"], json!("active"), "{alone}");
    assert_eq!(alone["subtree"], json!(false));
    assert_eq!(alone["reinstated"].as_array().unwrap().len(), 1);
    let still: Vec<&str> = alone["still_suspended"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["agent_id"].as_str().unwrap())
        .collect();
    assert_eq!(still, vec![worker.id.as_str(), shard.id.as_str()]);
    assert_eq!(reg.agent(&worker.id).await["status"], json!("suspended"));

    // Again with the tree: the rest comes back; credentials stay disabled everywhere.
    reg.post(
        &format!("/v1/agents/{}/revoke", planner.id),
        &reg.admin,
        json!({}),
    )
    .await
    .expect(200);
    let tree = reg
        .post(
            &format!("/v1/agents/{}/reinstate", planner.id),
            &reg.admin,
            json!({"subtree": true}),
        )
        .await;
    let tree = tree.expect(200).clone();
    assert_eq!(tree["reinstated"].as_array().unwrap().len(), 3, "{tree}");
    assert_eq!(tree["still_suspended"], json!([]));
    for agent in [&planner, &worker, &shard] {
        let detail = reg.agent(&agent.id).await;
        assert_eq!(detail["status"], json!("active"));
        assert_eq!(
            enabled_credentials(&detail),
            0,
            "reinstatement enabled a key: {detail}"
        );
    }
    // The owner may pull the brake but never release it.
    let by_owner = reg
        .post(
            &format!("/v1/agents/{}/reinstate", planner.id),
            &reg.owner,
            json!({"subtree": true}),
        )
        .await;
    assert_eq!(by_owner.status, 403);
}

#[tokio::test]
async fn a_suspended_agent_takes_no_credential_and_only_admins_or_responders_reenable_one() {
    let reg = Registry::start().await;
    let owner = reg.owner.email.clone();
    let agent = keyed(&reg, "leaky", &owner, None).await;
    let subject = person_token(&reg, &reg.owner).await;
    reg.post(
        &format!("/v1/agents/{}/revoke", agent.id),
        &reg.responder,
        json!({"reason": "INC-9"}),
    )
    .await
    .expect(200);

    // No credential can be added behind the brake, by the owner or an admin.
    let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": B64.encode(new_key().verifying_key().as_bytes())});
    for who in [&reg.owner, &reg.admin] {
        let added = reg
            .post(
                &format!("/v1/agents/{}/credentials", agent.id),
                who,
                json!({"kind": "public-key", "public_key": jwk.to_string()}),
            )
            .await;
        assert_eq!((added.status, added.code()), (409, "conflict"), "{added:?}");
        let secret = reg
            .post(
                &format!("/v1/agents/{}/credentials", agent.id),
                who,
                json!({"kind": "static-secret"}),
            )
            .await;
        assert_eq!(secret.status, 409, "{secret:?}");
    }
    let enable = format!(
        "/v1/agents/{}/credentials/{}/enable",
        agent.id, agent.credential
    );
    // Not while suspended, even for a responder.
    let early = reg.post(&enable, &reg.responder, json!({})).await;
    assert_eq!((early.status, early.code()), (409, "conflict"), "{early:?}");

    reg.post(
        &format!("/v1/agents/{}/reinstate", agent.id),
        &reg.responder,
        json!({}),
    )
    .await
    .expect(200);
    assert_eq!(enabled_credentials(&reg.agent(&agent.id).await), 0);
    assert_eq!(exchange(&reg, &subject, &agent).await.status, 401);

    // The owner cannot undo the responder's brake; nor can an auditor or a stranger (refused
    // by role before the agent is looked up, so existence does not leak).
    for (who, status) in [(&reg.owner, 403), (&reg.auditor, 403), (&reg.other, 403)] {
        let refused = reg.post(&enable, who, json!({})).await;
        assert_eq!(refused.status, status, "{}: {refused:?}", who.email);
    }
    let events = reg.audit_count();
    let enabled = reg
        .post(
            &enable,
            &reg.responder,
            json!({"reason": "key verified clean"}),
        )
        .await;
    assert!(enabled.expect(200)["disabled_at"].is_null());
    assert_eq!(reg.audit_count(), events + 1);
    let actions = audit_actions(&reg, &agent.id).await;
    assert_eq!(
        actions.last().map(String::as_str),
        Some("credential.enable")
    );
    // The key works again; enabling it again changes and records nothing.
    exchange(&reg, &subject, &agent).await.expect(200);
    reg.post(&enable, &reg.admin, json!({})).await.expect(200);
    assert_eq!(reg.audit_count(), events + 1);
    // An unknown credential is a 404.
    let missing = reg
        .post(
            &format!("/v1/agents/{}/credentials/cred_nope/enable", agent.id),
            &reg.admin,
            json!({}),
        )
        .await;
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn decommission_stops_at_other_peoples_agents_unless_the_caller_is_an_admin() {
    let reg = Registry::start().await;
    let owner = reg.owner.email.clone();
    let other = reg.other.email.clone();
    let root = reg.register("pipeline", Some(&owner), &[]).await;
    let mine = reg
        .register_with(
            json!({"name": "mine", "owner": owner, "kind": "sub-agent", "parent_id": root}),
        )
        .await;
    let theirs = reg
        .register_with(
            json!({"name": "theirs", "owner": other, "kind": "sub-agent", "parent_id": root}),
        )
        .await;
    let under_theirs = reg
        .register_with(json!({"name": "under-theirs", "owner": owner, "kind": "instance", "parent_id": theirs}))
        .await;

    let plan = reg
        .get(&format!("/v1/agents/{root}/decommission"), &reg.owner)
        .await;
    let plan = plan.expect(200).clone();
    assert_eq!(plan["agents"], json!([root, mine]), "{plan}");
    assert_eq!(plan["skipped"][0]["agent_id"], json!(theirs));
    assert_eq!(plan["skipped"][0]["owner"], json!(other));

    let done = reg
        .post(
            &format!("/v1/agents/{root}/decommission"),
            &reg.owner,
            json!({"reason": "retired"}),
        )
        .await;
    let done = done.expect(200).clone();
    assert_eq!(done["decommissioned"], json!([root, mine]), "{done}");
    assert_eq!(done["skipped"].as_array().unwrap().len(), 1);
    assert!(done["skipped"][0]["why"].as_str().unwrap().contains(&other));
    for untouched in [&theirs, &under_theirs] {
        assert_eq!(reg.agent(untouched).await["status"], json!("active"));
    }

    // An admin's cascade takes the whole tree.
    let top = reg.register("fleet", Some(&owner), &[]).await;
    let foreign = reg
        .register_with(
            json!({"name": "foreign", "owner": other, "kind": "sub-agent", "parent_id": top}),
        )
        .await;
    let done = reg
        .post(
            &format!("/v1/agents/{top}/decommission"),
            &reg.admin,
            json!({}),
        )
        .await;
    let done = done.expect(200).clone();
    assert_eq!(done["decommissioned"], json!([top, foreign]), "{done}");
    assert_eq!(done["skipped"], json!([]));
}

#[tokio::test]
async fn decommission_closes_the_agents_open_review_items() {
    let reg = Registry::start().await;
    let team = "brake-review-team";
    let agent = reg
        .register_with(
            json!({"name": "reviewed", "owner": reg.owner.email, "team": team,
                              "scopes": ["crm.orders:read", "crm.orders:write"]}),
        )
        .await;
    let due = chrono::Utc::now() + chrono::Duration::days(30);
    let campaign = reg
        .post(
            "/v1/campaigns",
            &reg.admin,
            json!({"name": "brake review", "filter": {"team": team},
                   "due_at": due.to_rfc3339(), "no_response": "keep"}),
        )
        .await;
    let campaign = campaign.expect(201)["id"].as_str().unwrap().to_string();
    let items_path = format!("/v1/campaigns/{campaign}/items");
    let items = reg.get(&items_path, &reg.admin).await;
    let items = items.expect(200)["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2);
    let first = items[0]["id"].as_i64().unwrap();

    let done = reg
        .post(
            &format!("/v1/agents/{agent}/decommission"),
            &reg.owner,
            json!({}),
        )
        .await;
    assert_eq!(done.expect(200)["review_items_closed"], json!(2));

    let items = reg.get(&items_path, &reg.admin).await;
    for item in items.expect(200)["items"].as_array().unwrap() {
        assert_eq!(item["decision"], json!("revoke"), "{item}");
        let history = item["history"].as_array().unwrap();
        assert_eq!(
            history.last().unwrap()["action"],
            json!("closed_by_decommission")
        );
    }
    assert!(
        audit_actions(&reg, &agent)
            .await
            .contains(&"review.close_by_decommission".to_string())
    );
    let detail = reg
        .get(&format!("/v1/campaigns/{campaign}"), &reg.admin)
        .await;
    assert_eq!(
        detail.expect(200)["progress"]["pending"],
        json!(0),
        "{detail:?}"
    );

    // Certifying afterwards says why it cannot.
    let late = reg
        .post(
            &format!("/v1/review-items/{first}/decision"),
            &reg.owner,
            json!({"decision": "certify"}),
        )
        .await;
    assert_eq!((late.status, late.code()), (409, "conflict"), "{late:?}");
    assert!(
        late.body["message"]
            .as_str()
            .unwrap()
            .contains("was decommissioned"),
        "{late:?}"
    );
}
