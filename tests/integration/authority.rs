//! Authority is granted, never taken: the resource catalogue, access requests and their tier
//! policy, separation of duties, expiry of requests and grants, per-use approval and the
//! upgrade of a database from before the catalogue. Against a real registry over SQLite.

use crate::support;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};
use steward::registry::service::approvals::sweep;
use steward::registry::store::prelude::*;
use support::{Member, Registry};

/// The approval world of these tests: a payments system owned by `pay@example.com` with one
/// scope per tier, and a second admin.
struct World {
    reg: Registry,
    admin2: Member,
    pay_owner: Member,
}

fn catalogue() -> Value {
    json!({"resources": [
        {"id": "pay", "name": "Payments", "owner": "pay@example.com",
         "audiences": ["https://pay.example.com"],
         "scopes": [
            {"name": "pay.balance:read", "tier": "low", "description": "read balances"},
            {"name": "pay.refunds:write", "tier": "medium"},
            {"name": "pay.payouts:write", "tier": "high"},
            {"name": "pay.ledger:admin", "tier": "critical"},
            {"name": "pay.transfer:execute", "tier": "critical", "approval": "per-use"}
         ]},
        {"id": "vault", "name": "Vault", "owner": null, "audiences": ["https://vault.example.com"],
         "scopes": [{"name": "vault.secrets:read", "tier": "high"}]},
        {"id": "short", "name": "Short-lived", "owner": "pay@example.com", "max_duration": "14d",
         "audiences": [], "scopes": [{"name": "short.ops:run", "tier": "medium"}]}
    ]})
}

async fn world() -> World {
    let reg = Registry::start().await;
    let admin2 = reg.add_person("admin2@example.com", &["admin"]).await;
    let pay_owner = reg.add_person("pay@example.com", &[]).await;
    reg.call(
        "PUT",
        "/v1/resources",
        Some(&reg.admin.token),
        Some(&catalogue()),
    )
    .await
    .expect(200);
    World {
        reg,
        admin2,
        pay_owner,
    }
}

impl World {
    async fn request(
        &self,
        who: &Member,
        agent: &str,
        scope: &str,
        duration: Option<&str>,
    ) -> support::Reply {
        let mut body = json!({"scope": scope, "justification": "month-end close"});
        if let Some(d) = duration {
            body["duration"] = json!(d);
        }
        self.reg
            .post(&format!("/v1/agents/{agent}/requests"), who, body)
            .await
    }

    async fn approve(&self, who: &Member, id: &str) -> support::Reply {
        self.reg
            .post(
                &format!("/v1/approvals/{id}/approve"),
                who,
                json!({"reason": "ok"}),
            )
            .await
    }

    async fn grant_of(&self, agent: &str, scope: &str) -> Option<Value> {
        let a = self.reg.agent(agent).await;
        a["grants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["scope"] == json!(scope))
            .cloned()
    }
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .unwrap_or_else(|| panic!("not a time: {v}"))
        .parse()
        .unwrap()
}

/// `t` is `days` days from now, give or take a generous hour (no timing assertion).
fn about_days_from_now(t: DateTime<Utc>, days: i64) -> bool {
    (t - (Utc::now() + Duration::days(days)))
        .num_minutes()
        .abs()
        < 60
}

#[tokio::test]
async fn the_catalogue_is_read_by_everyone_imported_by_admins_and_import_is_idempotent() {
    let w = world().await;
    let r = &w.reg;
    let list = r.get("/v1/resources", &r.other).await;
    let pay = list.expect(200)["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == json!("pay"))
        .cloned()
        .unwrap();
    assert_eq!(pay["owner"], json!("pay@example.com"));
    assert_eq!(pay["audiences"], json!(["https://pay.example.com"]));
    let transfer = pay["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == json!("pay.transfer:execute"))
        .unwrap();
    assert_eq!(transfer["tier"], json!("critical"));
    assert_eq!(transfer["approval"], json!("per-use"));
    r.get("/v1/resources/pay", &r.owner).await.expect(200);
    assert_eq!(r.get("/v1/resources/nope", &r.owner).await.status, 404);

    // The same import again changes nothing, not even the audit log.
    let before = r.snapshot();
    let again = r
        .call(
            "PUT",
            "/v1/resources",
            Some(&r.admin.token),
            Some(&catalogue()),
        )
        .await;
    assert_eq!(again.expect(200)["created"], json!([]));
    assert_eq!(again.body["updated"], json!([]));
    assert_eq!(r.snapshot(), before);

    // Not an admin: 403, nothing written. A bad entry refuses the whole import.
    let refused = r
        .call(
            "PUT",
            "/v1/resources",
            Some(&r.owner.token),
            Some(&catalogue()),
        )
        .await;
    assert_eq!(refused.status, 403);
    let bad_tier = json!({"resources": [
        {"id": "new1", "name": "New", "owner": null, "scopes": []},
        {"id": "new2", "name": "New", "owner": null, "scopes": [{"name": "n:x", "tier": "severe"}]}
    ]});
    let reply = r
        .call(
            "PUT",
            "/v1/resources",
            Some(&r.admin.token),
            Some(&bad_tier),
        )
        .await;
    assert_eq!(reply.status, 422, "{reply:?}");
    let taken = json!({"resources": [
        {"id": "new1", "name": "New", "owner": null, "scopes": []},
        {"id": "new2", "name": "New", "owner": null, "scopes": [{"name": "pay.ledger:admin", "tier": "low"}]}
    ]});
    let reply = r
        .call("PUT", "/v1/resources", Some(&r.admin.token), Some(&taken))
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (422, "scope_taken"),
        "{reply:?}"
    );
    let unknown_owner = json!({"resources": [
        {"id": "new1", "name": "New", "owner": "ghost@example.com", "scopes": []}
    ]});
    let reply = r
        .call(
            "PUT",
            "/v1/resources",
            Some(&r.admin.token),
            Some(&unknown_owner),
        )
        .await;
    assert_eq!(
        (reply.status, reply.code()),
        (422, "unknown_owner"),
        "{reply:?}"
    );
    assert_eq!(r.snapshot(), before, "refused imports wrote nothing");
}

#[tokio::test]
async fn low_is_granted_at_once_by_policy_and_audited() {
    let w = world().await;
    let agent = w.reg.register("bot", Some(&w.reg.owner.email), &[]).await;
    let reply = w
        .request(&w.reg.owner, &agent, "pay.balance:read", None)
        .await;
    let req = reply.expect(201);
    assert_eq!(req["kind"], json!("grant"));
    assert_eq!(req["status"], json!("approved"));
    assert_eq!(req["approvals"][0]["by"], json!("policy"));
    let grant = w.grant_of(&agent, "pay.balance:read").await.unwrap();
    assert!(
        about_days_from_now(time(&grant["expires_at"]), 365),
        "{grant}"
    );
    let audit = w
        .reg
        .get(&format!("/v1/agents/{agent}/audit"), &w.reg.admin)
        .await;
    let actions: Vec<&str> = audit.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in ["request.create", "request.approve", "grant.add"] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
}

#[tokio::test]
async fn medium_is_decided_by_the_resource_owner_or_an_admin_never_by_the_requester() {
    let w = world().await;
    let r = &w.reg;
    let agent = r.register("bot", Some(&r.owner.email), &[]).await;
    let first = w.request(&r.owner, &agent, "pay.refunds:write", None).await;
    let id = first.expect(201)["id"].as_str().unwrap().to_string();
    assert_eq!(first.body["status"], json!("pending"));
    assert!(w.grant_of(&agent, "pay.refunds:write").await.is_none());
    // The requester (also the agent's owner), and someone with no part in it, are refused.
    let own = w.approve(&r.owner, &id).await;
    assert_eq!((own.status, own.code()), (403, "self_approval"), "{own:?}");
    let stranger = w.approve(&r.other, &id).await;
    assert_eq!((stranger.status, stranger.code()), (403, "not_an_approver"));
    // It waits in the queues of the resource owner and the admins, not the requester's.
    let queue = |m: &Member| {
        let m = m.clone();
        async move {
            r.get("/v1/approvals", &m).await.expect(200)["requests"]
                .as_array()
                .unwrap()
                .iter()
                .map(|q| q["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert!(queue(&w.pay_owner).await.contains(&id));
    assert!(queue(&r.admin).await.contains(&id));
    // The resource owner may not read the owner's agent, yet decides with its grants in view.
    let listed = r.get("/v1/approvals", &w.pay_owner).await;
    let mine = listed.expect(200)["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["id"] == json!(id))
        .cloned()
        .unwrap();
    assert!(mine["agent_grants"].is_array(), "{mine}");
    let direct = r.get(&format!("/v1/agents/{agent}"), &w.pay_owner).await;
    assert_eq!(direct.status, 404, "the agent itself stays hidden");
    assert!(!queue(&r.owner).await.contains(&id));
    let done = w.approve(&r.admin, &id).await;
    assert_eq!(done.expect(200)["status"], json!("approved"));
    assert!(w.grant_of(&agent, "pay.refunds:write").await.is_some());
    // Deciding again: already decided.
    let again = w.approve(&w.pay_owner, &id).await;
    assert_eq!((again.status, again.code()), (409, "already_decided"));
    let deny = r
        .post(
            &format!("/v1/approvals/{id}/deny"),
            &w.pay_owner,
            json!({"reason": "no"}),
        )
        .await;
    assert_eq!((deny.status, deny.code()), (409, "already_decided"));

    // The resource owner approves alone too; a denial needs a reason and ends it.
    let agent2 = r.register("bot2", Some(&r.owner.email), &[]).await;
    let id2 = w
        .request(&r.owner, &agent2, "pay.refunds:write", None)
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let no_reason = r
        .post(
            &format!("/v1/approvals/{id2}/deny"),
            &w.pay_owner,
            json!({}),
        )
        .await;
    assert_eq!(
        (no_reason.status, no_reason.code()),
        (422, "reason_required")
    );
    let denied = r
        .post(
            &format!("/v1/approvals/{id2}/deny"),
            &w.pay_owner,
            json!({"reason": "not this quarter"}),
        )
        .await;
    assert_eq!(denied.expect(200)["status"], json!("denied"));
    assert!(w.grant_of(&agent2, "pay.refunds:write").await.is_none());
    let late = w.approve(&r.admin, &id2).await;
    assert_eq!((late.status, late.code()), (409, "already_decided"));
}

#[tokio::test]
async fn high_is_the_resource_owners_alone_and_lasts_at_most_90_days() {
    let w = world().await;
    let r = &w.reg;
    let agent = r.register("bot", Some(&r.owner.email), &[]).await;
    let long = w
        .request(&r.owner, &agent, "pay.payouts:write", Some("120d"))
        .await;
    assert_eq!(
        (long.status, long.code()),
        (422, "duration_too_long"),
        "{long:?}"
    );
    let bad = w
        .request(&r.owner, &agent, "pay.payouts:write", Some("3w"))
        .await;
    assert_eq!((bad.status, bad.code()), (422, "invalid_duration"));
    let id = w
        .request(&r.owner, &agent, "pay.payouts:write", Some("30d"))
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let dup = w.request(&r.owner, &agent, "pay.payouts:write", None).await;
    assert_eq!((dup.status, dup.code()), (409, "request_pending"));
    let admin = w.approve(&r.admin, &id).await;
    assert_eq!(
        (admin.status, admin.code()),
        (403, "not_an_approver"),
        "{admin:?}"
    );
    let done = w.approve(&w.pay_owner, &id).await;
    assert_eq!(done.expect(200)["status"], json!("approved"));
    let grant = w.grant_of(&agent, "pay.payouts:write").await.unwrap();
    assert!(
        about_days_from_now(time(&grant["expires_at"]), 30),
        "{grant}"
    );

    // No owner (or unclassified): admins approve, default 90 days.
    let id = w
        .request(&r.owner, &agent, "vault.secrets:read", None)
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    w.approve(&r.admin, &id).await.expect(200);
    let grant = w.grant_of(&agent, "vault.secrets:read").await.unwrap();
    assert!(
        about_days_from_now(time(&grant["expires_at"]), 90),
        "{grant}"
    );

    // A resource's max_duration override shortens its tier's maximum.
    let over = w
        .request(&r.owner, &agent, "short.ops:run", Some("15d"))
        .await;
    assert_eq!((over.status, over.code()), (422, "duration_too_long"));
}

#[tokio::test]
async fn critical_needs_the_resource_owner_and_a_distinct_admin() {
    let w = world().await;
    let r = &w.reg;
    let agent = r.register("bot", Some(&r.owner.email), &[]).await;
    let too_long = w
        .request(&r.owner, &agent, "pay.ledger:admin", Some("31d"))
        .await;
    assert_eq!(too_long.code(), "duration_too_long");
    let id = w
        .request(&r.owner, &agent, "pay.ledger:admin", None)
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let first = w.approve(&r.admin, &id).await;
    assert_eq!(first.expect(200)["status"], json!("pending"));
    assert_eq!(first.body["approvals"].as_array().unwrap().len(), 1);
    assert!(w.grant_of(&agent, "pay.ledger:admin").await.is_none());
    // The same admin twice counts once.
    let twice = w.approve(&r.admin, &id).await;
    assert_eq!((twice.status, twice.code()), (409, "already_decided"));
    // A second admin cannot stand in for the resource owner who may decide.
    let second_admin = w.approve(&w.admin2, &id).await;
    assert_eq!(
        (second_admin.status, second_admin.code()),
        (403, "not_an_approver")
    );
    let done = w.approve(&w.pay_owner, &id).await;
    assert_eq!(done.expect(200)["status"], json!("approved"));
    let grant = w.grant_of(&agent, "pay.ledger:admin").await.unwrap();
    assert!(
        about_days_from_now(time(&grant["expires_at"]), 30),
        "{grant}"
    );
    let audit = r.get(&format!("/v1/agents/{agent}/audit"), &r.admin).await;
    let approved = audit.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == json!("grant.add"))
        .cloned()
        .unwrap();
    assert_eq!(
        approved["details"]["approvers"],
        json!(["admin@example.com", "pay@example.com"])
    );
    assert_eq!(approved["details"]["requester"], json!("owner@example.com"));
    assert_eq!(approved["details"]["tier"], json!("critical"));

    // The resource owner asks (for an agent they own): two distinct admins decide.
    let theirs = r.register("pay-bot", Some(&w.pay_owner.email), &[]).await;
    let id = w
        .request(&w.pay_owner, &theirs, "pay.ledger:admin", Some("7d"))
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let own = w.approve(&w.pay_owner, &id).await;
    assert_eq!(own.code(), "self_approval");
    assert_eq!(
        w.approve(&r.admin, &id).await.expect(200)["status"],
        json!("pending")
    );
    assert_eq!(
        w.approve(&w.admin2, &id).await.expect(200)["status"],
        json!("approved")
    );
}

#[tokio::test]
async fn nobody_approves_for_an_agent_they_own_and_admins_grant_directly_only_low_and_medium() {
    let w = world().await;
    let r = &w.reg;
    // An admin's own agent: their own request, and another admin's for it, are not theirs to decide.
    let admins = r.register("admin-bot", Some(&r.admin.email), &[]).await;
    let id = w
        .request(&w.admin2, &admins, "pay.refunds:write", None)
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let owner_decides = w.approve(&r.admin, &id).await;
    assert_eq!(owner_decides.code(), "self_approval", "{owner_decides:?}");
    let requester_decides = w.approve(&w.admin2, &id).await;
    assert_eq!(requester_decides.code(), "self_approval");
    w.approve(&w.pay_owner, &id).await.expect(200);

    // Direct grants: not for owners, not above medium, never to one's own agent.
    let owners = r.register("bot", Some(&r.owner.email), &[]).await;
    let path = format!("/v1/agents/{owners}/grants");
    let owner_try = r
        .post(&path, &r.owner, json!({"scope": "pay.refunds:write"}))
        .await;
    assert_eq!(owner_try.status, 403);
    let high = r
        .post(&path, &r.admin, json!({"scope": "pay.payouts:write"}))
        .await;
    assert_eq!(high.status, 403, "{high:?}");
    let unknown = r.post(&path, &r.admin, json!({"scope": "nope:read"})).await;
    assert_eq!((unknown.status, unknown.code()), (422, "unknown_scope"));
    let own = r
        .post(
            &format!("/v1/agents/{admins}/grants"),
            &r.admin,
            json!({"scope": "pay.balance:read"}),
        )
        .await;
    assert_eq!((own.status, own.code()), (403, "self_approval"));
    let ok = r
        .post(&path, &r.admin, json!({"scope": "pay.refunds:write"}))
        .await;
    ok.expect(201);
    let grant = w.grant_of(&owners, "pay.refunds:write").await.unwrap();
    assert!(
        about_days_from_now(time(&grant["expires_at"]), 365),
        "{grant}"
    );
}

#[tokio::test]
async fn scopes_outside_the_catalogue_are_never_granted_or_registered() {
    let w = world().await;
    let r = &w.reg;
    let agent = r.register("bot", Some(&r.owner.email), &[]).await;
    let reply = w.request(&r.owner, &agent, "hr.db:admin", None).await;
    assert_eq!((reply.status, reply.code()), (422, "unknown_scope"));
    assert!(
        reply.body["message"]
            .as_str()
            .unwrap()
            .contains("hr.db:admin")
    );
    let before = r.snapshot();
    let reg = r
        .post(
            "/v1/agents",
            &r.owner,
            json!({"name": "greedy", "owner": r.owner.email, "scopes": ["pay.balance:read", "iam:admin"]}),
        )
        .await;
    assert_eq!((reg.status, reg.code()), (422, "unknown_scope"), "{reg:?}");
    assert!(reg.body["message"].as_str().unwrap().contains("iam:admin"));
    assert_eq!(
        r.snapshot(),
        before,
        "nothing of the registration was written"
    );

    // Registering with catalogued scopes files one request per scope; low ones are granted.
    let created = r
        .post(
            "/v1/agents",
            &r.owner,
            json!({"name": "modest", "owner": r.owner.email,
                   "scopes": ["pay.balance:read", "pay.payouts:write"]}),
        )
        .await;
    let id = created.expect(201)["id"].as_str().unwrap().to_string();
    let scopes: Vec<&str> = created.body["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["scope"].as_str().unwrap())
        .collect();
    assert_eq!(scopes, ["pay.balance:read"]);
    let detail = r.agent(&id).await;
    let pending = detail["requests"].as_array().unwrap();
    assert_eq!(pending.len(), 1, "{detail}");
    assert_eq!(pending[0]["scope"], json!("pay.payouts:write"));
    assert_eq!(pending[0]["status"], json!("pending"));
    let listed = r.get(&format!("/v1/agents/{id}/requests"), &r.owner).await;
    assert_eq!(listed.expect(200)["requests"].as_array().unwrap().len(), 2);
    // Someone who may not read the agent is told it does not exist.
    let not_yours = r.get(&format!("/v1/agents/{id}/requests"), &r.other).await;
    assert_eq!(not_yours.status, 404);
}

#[tokio::test]
async fn undecided_requests_expire_and_expired_grants_are_removed_by_the_sweep() {
    let w = world().await;
    let r = &w.reg;
    let agent = r.register("bot", Some(&r.owner.email), &[]).await;
    let id = w
        .request(&r.owner, &agent, "pay.payouts:write", None)
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Thirteen days on, nothing happens; fifteen, it has expired.
    let store: &dyn Store = r.store.as_ref();
    let quiet = sweep(store, Utc::now() + Duration::days(13)).unwrap();
    assert_eq!(quiet.requests_expired, 0);
    let swept = sweep(store, Utc::now() + Duration::days(15)).unwrap();
    assert_eq!(swept.requests_expired, 1);
    let late = w.approve(&w.pay_owner, &id).await;
    assert_eq!(
        (late.status, late.code()),
        (409, "request_expired"),
        "{late:?}"
    );
    assert!(
        w.approve(&w.pay_owner, &id).await.body["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );

    // A 12-hour grant is removed by the first sweep after its end, audited, and only it.
    let id = w
        .request(&r.owner, &agent, "pay.refunds:write", Some("12h"))
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    w.approve(&r.admin, &id).await.expect(200);
    w.request(&r.owner, &agent, "pay.balance:read", None)
        .await
        .expect(201);
    assert!(w.grant_of(&agent, "pay.refunds:write").await.is_some());
    let early = sweep(store, Utc::now() + Duration::hours(11)).unwrap();
    assert!(early.grants_removed.is_empty());
    let swept = sweep(store, Utc::now() + Duration::hours(13)).unwrap();
    assert_eq!(
        swept.grants_removed,
        vec![(agent.clone(), "pay.refunds:write".to_string())]
    );
    assert!(w.grant_of(&agent, "pay.refunds:write").await.is_none());
    assert!(w.grant_of(&agent, "pay.balance:read").await.is_some());
    let audit = r.get(&format!("/v1/agents/{agent}/audit"), &r.admin).await;
    let removal = audit.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == json!("grant.remove"))
        .cloned()
        .unwrap();
    assert_eq!(removal["actor"]["kind"], json!("system"));
    assert_eq!(removal["details"]["scope"], json!("pay.refunds:write"));
    assert_eq!(removal["reason"], json!("the grant's time is up"));
}

/// An agent that authenticates with a static secret (the simplest client for these tests).
struct Client {
    id: String,
    secret: String,
}

impl World {
    /// Registers an agent owned by the standard owner holding `scopes`, each requested by the
    /// owner and approved by whoever its tier needs, and gives it a secret.
    async fn agent_with(&self, name: &str, scopes: &[&str], parent: Option<&str>) -> Client {
        let r = &self.reg;
        let mut body = json!({"name": name, "owner": r.owner.email});
        if let Some(p) = parent {
            body["kind"] = json!("sub-agent");
            body["parent_id"] = json!(p);
        }
        let id = r.register_with(body).await;
        for scope in scopes {
            let filed = self.request(&r.owner, &id, scope, None).await;
            let rid = filed.expect(201)["id"].as_str().unwrap().to_string();
            if filed.body["status"] == json!("pending") {
                self.approve(&r.admin, &rid).await.expect(200);
            }
            if self
                .reg
                .get(
                    &format!("/v1/agents/{id}/requests?status=pending"),
                    &r.admin,
                )
                .await
                .body["requests"]
                .as_array()
                .unwrap()
                .iter()
                .any(|q| q["id"] == json!(rid))
            {
                self.approve(&self.pay_owner, &rid).await.expect(200);
            }
        }
        let added = r
            .post(
                &format!("/v1/agents/{id}/credentials"),
                &r.admin,
                json!({"kind": "static-secret"}),
            )
            .await;
        let secret = added.expect(201)["secret"].as_str().unwrap().to_string();
        Client { id, secret }
    }

    /// A person access token of `who` that names `agent` in `may_act`.
    async fn person_token(&self, who: &Member, agent: &str) -> String {
        let minted = self
            .reg
            .post(
                "/v1/me/access-token",
                who,
                json!({"ttl_seconds": 600, "may_act": agent}),
            )
            .await;
        minted.expect(201)["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn exchange(
        &self,
        client: &Client,
        subject: &str,
        scope: &str,
        approval_id: Option<&str>,
    ) -> support::Reply {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair(
            "grant_type",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        )
        .append_pair("subject_token", subject)
        .append_pair(
            "subject_token_type",
            "urn:ietf:params:oauth:token-type:access_token",
        )
        .append_pair("scope", scope)
        .append_pair("audience", "https://pay.example.com")
        .append_pair("client_id", &client.id)
        .append_pair("client_secret", &client.secret);
        if let Some(id) = approval_id {
            form.append_pair("approval_id", id);
        }
        self.reg
            .call_raw(
                "POST",
                "/oauth/token",
                None,
                Some("application/x-www-form-urlencoded"),
                Some(form.finish().into_bytes()),
            )
            .await
    }
}

#[tokio::test]
async fn per_use_approval_round_trip_reuse_mismatch_denial_and_merge() {
    let w = world().await;
    let r = &w.reg;
    let runner = w
        .agent_with(
            "runner",
            &["pay.balance:read", "pay.transfer:execute"],
            None,
        )
        .await;
    let subject = w.person_token(&r.other, &runner.id).await;

    // Without per-use scopes nothing changes.
    w.exchange(&runner, &subject, "pay.balance:read", None)
        .await
        .expect(200);

    // The per-use scope: approval_required, with an id and how long it stays valid.
    let asked = w
        .exchange(&runner, &subject, "pay.transfer:execute", None)
        .await;
    assert_eq!(
        (asked.status, asked.body["error"].as_str()),
        (400, Some("approval_required")),
        "{asked:?}"
    );
    let id = asked.body["approval_id"].as_str().unwrap().to_string();
    let expires_in = asked.body["expires_in"].as_u64().unwrap();
    assert!(expires_in > 0 && expires_in <= 600, "{expires_in}");
    // Asking again merges into the same pending approval.
    let again = w
        .exchange(&runner, &subject, "pay.transfer:execute", None)
        .await;
    assert_eq!(again.body["approval_id"], json!(id));
    let pending = w
        .exchange(&runner, &subject, "pay.transfer:execute", Some(&id))
        .await;
    assert_eq!(
        (pending.status, pending.body["error"].as_str()),
        (400, Some("authorization_pending"))
    );

    // It waits for the subject and the resource owner, never the agent's owner; admins are not
    // asked while the subject or resource owner may decide.
    let queue = r.get("/v1/approvals?kind=use", &r.other).await;
    let listed = queue.expect(200)["requests"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["kind"], json!("use"));
    assert_eq!(listed[0]["subject"], json!("other@example.com"));
    assert_eq!(listed[0]["audience"], json!(["https://pay.example.com"]));
    assert_eq!(listed[0]["chain"], json!([runner.id]));
    let in_owners = r.get("/v1/approvals?kind=use", &w.pay_owner).await;
    assert_eq!(in_owners.body["requests"].as_array().unwrap().len(), 1);
    let by_agent_owner = w.approve(&r.owner, &id).await;
    assert_eq!(by_agent_owner.code(), "self_approval");
    let by_admin = w.approve(&r.admin, &id).await;
    assert_eq!(by_admin.code(), "not_an_approver");
    assert_eq!(
        w.approve(&r.other, &id).await.expect(200)["status"],
        json!("approved")
    );

    // Bound to its scope set: another set is refused and does not spend it.
    let other_set = w
        .exchange(
            &runner,
            &subject,
            "pay.transfer:execute pay.balance:read",
            Some(&id),
        )
        .await;
    assert_eq!(
        other_set.body["error"],
        json!("invalid_grant"),
        "{other_set:?}"
    );
    // Bound to its subject: another person's token is refused.
    let admins_subject = w.person_token(&r.admin, &runner.id).await;
    let other_subject = w
        .exchange(&runner, &admins_subject, "pay.transfer:execute", Some(&id))
        .await;
    assert_eq!(
        other_subject.body["error"],
        json!("invalid_grant"),
        "{other_subject:?}"
    );
    // The exchange it was asked for succeeds once.
    let ok = w
        .exchange(&runner, &subject, "pay.transfer:execute", Some(&id))
        .await;
    assert_eq!(ok.expect(200)["scope"], json!("pay.transfer:execute"));
    let reused = w
        .exchange(&runner, &subject, "pay.transfer:execute", Some(&id))
        .await;
    assert_eq!(reused.body["error"], json!("invalid_grant"));
    assert!(
        reused.body["error_description"]
            .as_str()
            .unwrap()
            .contains("already been used")
    );

    // Denied: access_denied.
    let asked = w
        .exchange(&runner, &subject, "pay.transfer:execute", None)
        .await;
    let id2 = asked.body["approval_id"].as_str().unwrap().to_string();
    assert_ne!(id2, id);
    r.post(
        &format!("/v1/approvals/{id2}/deny"),
        &w.pay_owner,
        json!({"reason": "not now"}),
    )
    .await
    .expect(200);
    let denied = w
        .exchange(&runner, &subject, "pay.transfer:execute", Some(&id2))
        .await;
    assert_eq!(denied.body["error"], json!("access_denied"));

    // Every step is audited.
    let audit = r
        .get(&format!("/v1/agents/{}/audit", runner.id), &r.admin)
        .await;
    let steps: Vec<(String, String)> = audit.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["action"].as_str().unwrap().starts_with("approval.")
                || e["details"]["kind"] == json!("use")
        })
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for want in [
        ("approval.request", "pending"),
        ("approval.request", "merged"),
        ("request.approve", "success"),
        ("approval.use", "refused"),
        ("approval.use", "success"),
        ("request.deny", "success"),
        ("approval.use", "denied"),
    ] {
        assert!(
            steps.iter().any(|(a, o)| a == want.0 && o == want.1),
            "{want:?} missing from {steps:?}"
        );
    }
}

#[tokio::test]
async fn per_use_approvals_expire_are_capped_and_never_pass_a_sub_agent_hop() {
    use steward::registry::store::ApprovalStore;
    use steward::registry::store::approvals::{UseBinding, UseRedemption};
    let w = world().await;
    let r = &w.reg;
    let runner = w
        .agent_with(
            "runner",
            &["pay.balance:read", "pay.transfer:execute"],
            None,
        )
        .await;
    let subject = w.person_token(&r.other, &runner.id).await;

    // Approved but not used within ten minutes: invalid_grant.
    let asked = w
        .exchange(&runner, &subject, "pay.transfer:execute", None)
        .await;
    let id = asked.body["approval_id"].as_str().unwrap().to_string();
    w.approve(&r.other, &id).await.expect(200);
    let binding = UseBinding {
        agent_id: runner.id.clone(),
        subject: "other@example.com".into(),
        scopes: vec!["pay.transfer:execute".into()],
        audience: vec!["https://pay.example.com".into()],
        chain: vec![runner.id.clone()],
    };
    let late = r
        .store
        .redeem_use_approval(&id, &binding, Utc::now() + Duration::minutes(11))
        .unwrap();
    assert!(
        matches!(late, UseRedemption::Invalid(ref m) if m.contains("expired")),
        "{late:?}"
    );
    // Bound to its agent.
    let mut elsewhere = binding.clone();
    elsewhere.agent_id = "ag_other".into();
    assert!(matches!(
        r.store
            .redeem_use_approval(&id, &elsewhere, Utc::now())
            .unwrap(),
        UseRedemption::Invalid(_)
    ));
    // Still unspent in time and bound right: the exchange succeeds.
    w.exchange(&runner, &subject, "pay.transfer:execute", Some(&id))
        .await
        .expect(200);

    // A sub-agent hop needs its own approval, even with a token that carries the scope.
    let parent_token = w
        .exchange(&runner, &subject, "pay.transfer:execute", None)
        .await
        .body["approval_id"]
        .as_str()
        .unwrap()
        .to_string();
    w.approve(&w.pay_owner, &parent_token).await.expect(200);
    let carried = w
        .exchange(
            &runner,
            &subject,
            "pay.transfer:execute",
            Some(&parent_token),
        )
        .await;
    let carried = carried.expect(200)["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let worker = w
        .agent_with("worker", &["pay.transfer:execute"], Some(&runner.id))
        .await;
    let hop = w
        .exchange(&worker, &carried, "pay.transfer:execute", None)
        .await;
    assert_eq!(hop.body["error"], json!("approval_required"), "{hop:?}");
    let hop_id = hop.body["approval_id"].as_str().unwrap().to_string();
    let hop_request = r.get("/v1/approvals?kind=use", &r.other).await.body["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["id"] == json!(hop_id))
        .cloned()
        .unwrap();
    assert_eq!(hop_request["chain"], json!([worker.id, runner.id]));
    w.approve(&r.other, &hop_id).await.expect(200);
    w.exchange(&worker, &carried, "pay.transfer:execute", Some(&hop_id))
        .await
        .expect(200);

    // At most 20 pending per agent: the 21st is refused with 429 and nothing is filed.
    for n in 0..19 {
        let mut b = binding.clone();
        b.audience = vec![format!("https://pay{n}.example.com")];
        r.store.request_use_approval(&b, Utc::now()).unwrap();
    }
    let twentieth = w
        .exchange(&runner, &subject, "pay.transfer:execute", None)
        .await;
    assert_eq!(twentieth.body["error"], json!("approval_required"));
    let mut b = binding.clone();
    b.audience = vec!["https://pay-extra.example.com".into()];
    let before = r.snapshot();
    let capped = r.store.request_use_approval(&b, Utc::now()).unwrap_err();
    assert!(capped.to_string().contains("at most 20"), "{capped}");
    assert_eq!(r.snapshot(), before);
    // Over HTTP the cap is a 429; the identical pending one still merges.
    let merged = w
        .exchange(&runner, &subject, "pay.transfer:execute", None)
        .await;
    assert_eq!(merged.body["error"], json!("approval_required"));
    let admin_subject = w.person_token(&r.admin, &runner.id).await;
    let over = w
        .exchange(&runner, &admin_subject, "pay.transfer:execute", None)
        .await;
    assert_eq!(
        (over.status, over.body["error"].as_str()),
        (429, Some("too_many_pending")),
        "{over:?}"
    );
}

#[tokio::test]
async fn a_schema_4_database_is_upgraded_without_losing_grants() {
    use steward::registry::store::CatalogueStore;
    use steward::registry::store::sqlite::{OpenMode, create_at_version};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.db");
    create_at_version(&db, 4).unwrap();
    let now = Utc::now();
    let at = |d: Duration| (now + d).to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(&format!(
            "INSERT INTO people (id, email, display_name, roles, active, created_at, change_seq)
                 VALUES ('p1', 'ada@example.com', 'Ada', 'admin', 1, '{t}', 1),
                        ('p2', 'bob@example.com', 'Bob', '', 1, '{t}', 2);
             INSERT INTO agents (id, name, kind, owner_id, team, environment, status, source, created_at, change_seq)
                 VALUES ('ag_1', 'invoicer', 'agent', 'p2', 'fin', 'prod', 'active', 'registered', '{t}', 3);
             INSERT INTO grants (agent_id, scope, granted_by, granted_at, expires_at) VALUES
                 ('ag_1', 'crm.orders:read', 'bob@example.com', '{t}', NULL),
                 ('ag_1', 'hr.db:admin', 'bob@example.com', '{t}', '{soon}'),
                 ('ag_1', 'payments:write', 'bob@example.com', '{t}', '{late}');
             INSERT INTO issued_tokens (jti, kind, digest, kid, subject, client_id, actors, scopes,
                     audience, subject_source, issued_at, expires_at) VALUES
                 ('j1', 'exchange', 'd1', 'k', 'bob@example.com', 'ag_1', '[\"ag_1\"]',
                  '[\"crm.orders:read\"]', '[\"https://crm.example.com\"]', 'person-token', 1, 2),
                 ('j2', 'exchange', 'd2', 'k', 'bob@example.com', 'ag_1', '[\"ag_1\"]',
                  '[\"crm.orders:read\",\"payments:write\"]', '[\"https://api.example.com\"]', 'person-token', 1, 2);
             UPDATE counters SET value = 3 WHERE name = 'change_seq';",
            t = at(Duration::days(-400)),
            soon = at(Duration::days(10)),
            late = at(Duration::days(200)),
        ))
        .unwrap();
    }
    let store = steward::registry::open_store(&db, OpenMode::MustExist).unwrap();
    assert_eq!(
        store.schema_version().unwrap(),
        steward::registry::SCHEMA_VERSION
    );

    // Every granted scope is catalogued under its prefix, unclassified, without an owner, with
    // the audiences its past exchanges named.
    let resources = store.list_resources().unwrap();
    let ids: Vec<&str> = resources.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["crm", "hr", "payments"]);
    let crm = &resources[0];
    assert_eq!(crm.owner, None);
    assert_eq!(
        crm.audiences,
        ["https://api.example.com", "https://crm.example.com"]
    );
    assert_eq!(resources[2].audiences, ["https://api.example.com"]);
    assert_eq!(resources[1].audiences, Vec::<String>::new());
    let infos = store
        .scope_catalogue(&[
            "hr.db:admin".into(),
            "crm.orders:read".into(),
            "nope:x".into(),
        ])
        .unwrap();
    assert_eq!(infos.len(), 2);
    assert_eq!(infos[0].resource_id, "hr");
    assert!(
        infos
            .iter()
            .all(|i| i.tier == steward::model::catalogue::Tier::Unclassified)
    );

    // Nothing granted is lost, but nothing stays longer than 90 days unless it ended sooner.
    let (url, shutdown, server) = support::serve(store.clone()).await;
    let token = steward::registry::bootstrap_admin(store.as_ref(), "ada@example.com", "Ada", "t")
        .unwrap()
        .1
        .token;
    let http = support::http_client();
    let agent = support::call(&http, &url, "GET", "/v1/agents/ag_1", Some(&token), None).await;
    let grants = agent.expect(200)["grants"].as_array().unwrap().clone();
    assert_eq!(grants.len(), 3);
    let expiry = |scope: &str| {
        time(&grants.iter().find(|g| g["scope"] == json!(scope)).unwrap()["expires_at"])
    };
    assert!(about_days_from_now(expiry("crm.orders:read"), 90));
    assert!(about_days_from_now(expiry("payments:write"), 90));
    assert!(about_days_from_now(expiry("hr.db:admin"), 10));
    // Shown as unclassified in JSON.
    let hr = support::call(&http, &url, "GET", "/v1/resources/hr", Some(&token), None).await;
    assert_eq!(hr.expect(200)["scopes"][0]["tier"], json!("unclassified"));

    // A review that certifies such a grant gives it back the expiry it had; one left undecided
    // keeps the upgrade's deadline.
    let bob = steward::registry::service::api_tokens::issue_token_for(
        store.as_ref(),
        &steward::model::Actor::system("test"),
        "bob@example.com",
        &Default::default(),
    )
    .unwrap()
    .token;
    let due = (Utc::now() + Duration::days(14)).to_rfc3339();
    support::call(
        &http,
        &url,
        "POST",
        "/v1/campaigns",
        Some(&token),
        Some(&json!({"name": "after the upgrade", "due_at": due, "no_response": "keep"})),
    )
    .await
    .expect(201);
    let queue = support::call(&http, &url, "GET", "/v1/reviews/mine", Some(&bob), None).await;
    let items = queue.expect(200)["agents"][0]["items"]
        .as_array()
        .unwrap()
        .clone();
    let item = items
        .iter()
        .find(|i| i["scope"] == json!("crm.orders:read"))
        .expect("the upgraded grant is under review");
    let decided = support::call(
        &http,
        &url,
        "POST",
        &format!("/v1/review-items/{}/decision", item["id"]),
        Some(&bob),
        Some(&json!({"decision": "certify", "justification": "still needed for invoices"})),
    )
    .await;
    decided.expect(200);
    let agent = support::call(&http, &url, "GET", "/v1/agents/ag_1", Some(&token), None).await;
    let grants = agent.expect(200)["grants"].as_array().unwrap().clone();
    let crm = grants
        .iter()
        .find(|g| g["scope"] == json!("crm.orders:read"))
        .unwrap();
    assert_eq!(
        crm["expires_at"],
        Value::Null,
        "certified: the old (no) expiry is back"
    );
    let payments = grants
        .iter()
        .find(|g| g["scope"] == json!("payments:write"))
        .unwrap();
    assert!(about_days_from_now(time(&payments["expires_at"]), 90));
    let _ = shutdown.send(());
    let _ = server.await;
}
