//! Who may act for whom, and how long tokens live, against a real registry: delegation
//! consent (owner, `may_act`, delegation, none), scope bounds, delegation expiry and revocation,
//! sub-agent hops, invitations, API-token lineage, leavers and removed grants.

use crate::support;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};
use support::{Member, Registry};

use steward::model::tokens::{GRANT_TOKEN_EXCHANGE, TOKEN_TYPE_ACCESS, TOKEN_TYPE_JWT};

use support::exchange::*;

#[tokio::test]
async fn an_agent_acts_for_its_owner_for_a_token_naming_it_and_for_a_delegator_only() {
    let reg = Registry::start().await;
    let bot = agent(&reg, &reg.owner.email, &["crm.orders:read"], None).await;

    // 1. The person owns the agent.
    let own = person_token(&reg, &reg.owner).await;
    exchanged(&reg, &own, &bot, "crm.orders:read").await;

    // 2. The token names the agent in may_act.
    let named = mint(&reg, &reg.other, json!({"may_act": bot.id})).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let token = exchanged(&reg, &named, &bot, "crm.orders:read").await;
    assert!(active(&reg, &token).await);

    // 4. None of these: the attack of the issue. An admin mints a person token without
    // may_act; the owner's agent exchanges it. Refused, naming the rule.
    let admins = person_token(&reg, &reg.admin).await;
    let (status, error, description) =
        error_of(&exchange(&reg, &admins, &bot, "crm.orders:read").await);
    assert_eq!(
        (status, error.as_str()),
        (400, "invalid_grant"),
        "{description}"
    );
    assert!(
        description.contains("may not act for admin@example.com"),
        "{description}"
    );
    assert!(description.contains("delegat"), "{description}");
    // The same for a plain person.
    let others = person_token(&reg, &reg.other).await;
    assert_eq!(
        error_of(&exchange(&reg, &others, &bot, "crm.orders:read").await).1,
        "invalid_grant"
    );

    // 3. The person delegates to the agent: now it may act for them.
    delegate(&reg, &reg.other, &bot.id, &["crm.orders:read"], 3600)
        .await
        .expect(201);
    let token = exchanged(&reg, &others, &bot, "crm.orders:read").await;
    let claims: Value =
        serde_json::from_slice(&B64.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap();
    assert_eq!(claims["sub"], "other@example.com");
    assert_eq!(claims["act"]["sub"], json!(bot.id));
    // The admin still did not consent.
    assert_eq!(
        error_of(&exchange(&reg, &admins, &bot, "crm.orders:read").await).1,
        "invalid_grant"
    );
}

#[tokio::test]
async fn the_exchanged_scope_is_bounded_by_grants_token_scope_and_delegation() {
    let reg = Registry::start().await;
    let bot = agent(
        &reg,
        &reg.owner.email,
        &["crm.orders:read", "crm.orders:write", "crm:read"],
        None,
    )
    .await;

    // The token's scope claim bounds the exchange, even for the owner.
    let minted = mint(
        &reg,
        &reg.owner,
        json!({"scope": "crm.orders:read crm.orders:write"}),
    )
    .await;
    let narrow = minted["access_token"].as_str().unwrap();
    exchanged(&reg, narrow, &bot, "crm.orders:read crm.orders:write").await;
    let (status, error, description) = error_of(&exchange(&reg, narrow, &bot, "crm:read").await);
    assert_eq!(
        (status, error.as_str()),
        (400, "invalid_scope"),
        "{description}"
    );
    assert!(
        description.contains("subject token's scopes"),
        "{description}"
    );
    // Introspection shows the person token's scope.
    let info = form(
        &reg,
        "/oauth/introspect",
        Some(&reg.owner.token),
        &[("token", narrow)],
    )
    .await;
    assert_eq!(
        info.expect(200)["scope"],
        "crm.orders:read crm.orders:write"
    );

    // The agent's grants bound it.
    let own = person_token(&reg, &reg.owner).await;
    let (_, error, description) = error_of(&exchange(&reg, &own, &bot, "crm:write").await);
    assert_eq!(error, "invalid_scope");
    assert!(
        description.contains("not granted crm:write"),
        "{description}"
    );

    // The delegation's scopes bound it, and so does the delegator's token scope on top.
    delegate(
        &reg,
        &reg.other,
        &bot.id,
        &["crm.orders:read", "crm.orders:write"],
        3600,
    )
    .await
    .expect(201);
    let others = person_token(&reg, &reg.other).await;
    exchanged(&reg, &others, &bot, "crm.orders:read crm.orders:write").await;
    let (_, error, description) =
        error_of(&exchange(&reg, &others, &bot, "crm.orders:read crm:read").await);
    assert_eq!(error, "invalid_scope");
    assert!(description.contains("delegation"), "{description}");
    let scoped = mint(&reg, &reg.other, json!({"scope": "crm.orders:write"})).await;
    let scoped = scoped["access_token"].as_str().unwrap();
    exchanged(&reg, scoped, &bot, "crm.orders:write").await;
    assert_eq!(
        error_of(&exchange(&reg, scoped, &bot, "crm.orders:read").await).1,
        "invalid_scope"
    );

    // A malformed scope claim is refused when minting.
    let bad = reg
        .post(
            "/v1/me/access-token",
            &reg.owner,
            json!({"scope": "bad\u{7}scope"}),
        )
        .await;
    assert_eq!((bad.status, bad.code()), (422, "invalid_scope"));
}

#[tokio::test]
async fn a_delegation_expires_and_its_tokens_never_outlive_it() {
    let reg = Registry::start().await;
    let bot = agent(&reg, &reg.owner.email, &["crm.orders:read"], None).await;
    let created = delegate(&reg, &reg.other, &bot.id, &["crm.orders:read"], 3).await;
    let expires_at =
        chrono::DateTime::parse_from_rfc3339(created.expect(201)["expires_at"].as_str().unwrap())
            .unwrap()
            .timestamp();
    let subject = person_token(&reg, &reg.other).await;
    let reply = exchange(&reg, &subject, &bot, "crm.orders:read").await;
    let expires_in = reply.expect(200)["expires_in"].as_i64().unwrap();
    assert!(
        now() + expires_in <= expires_at + 1,
        "the token outlives the delegation"
    );
    // Past its end the delegation no longer counts: the registry's clock moves past it (no
    // sleep; see registry/clock.rs).
    reg.clock.advance(chrono::Duration::milliseconds(
        ((expires_at - reg.clock.unix()).max(0) + 1) * 1000 + 200,
    ));
    let (_, error, description) =
        error_of(&exchange(&reg, &subject, &bot, "crm.orders:read").await);
    assert_eq!(error, "invalid_grant");
    // Refused for want of consent (not only by the cap on the new token's lifetime).
    assert!(description.contains("may not act for"), "{description}");
    let list = reg.get("/v1/me/delegations", &reg.other).await;
    assert_eq!(list.expect(200)["delegations"][0]["active"], false);
}

#[tokio::test]
async fn revoking_a_delegation_kills_the_tokens_exchanged_under_it() {
    let reg = Registry::start().await;
    let planner = agent(
        &reg,
        &reg.owner.email,
        &["crm.orders:read", "crm.orders:write"],
        None,
    )
    .await;
    let worker = agent(
        &reg,
        &reg.owner.email,
        &["crm.orders:read", "crm.orders:write"],
        Some(&planner.id),
    )
    .await;
    let created = delegate(
        &reg,
        &reg.other,
        &planner.id,
        &["crm.orders:read", "crm.orders:write"],
        3600,
    )
    .await;
    let id = created.expect(201)["id"].as_str().unwrap().to_string();
    assert_eq!(created.body["person"], "other@example.com");
    // One active delegation per agent.
    let twice = delegate(&reg, &reg.other, &planner.id, &["crm.orders:read"], 3600).await;
    assert_eq!(twice.status, 409);
    // Bad input: precise refusals, nothing written.
    let before = reg.snapshot();
    let soon = chrono::Utc::now() + chrono::Duration::days(1);
    for (body, code) in [
        (
            json!({"agent_id": planner.id, "scopes": ["nowhere:read"], "expires_at": soon}),
            "unknown_scope",
        ),
        (
            json!({"agent_id": planner.id, "scopes": [], "expires_at": soon}),
            "invalid_scopes",
        ),
        (
            json!({"agent_id": planner.id, "scopes": ["crm:read"], "expires_at": "2001-01-01T00:00:00Z"}),
            "invalid_expiry",
        ),
        (
            json!({"agent_id": planner.id, "scopes": ["crm:read"], "expires_at": "2099-01-01T00:00:00Z"}),
            "invalid_expiry",
        ),
        (
            json!({"agent_id": "ag_missing", "scopes": ["crm:read"], "expires_at": soon}),
            "not_found",
        ),
    ] {
        let reply = reg.post("/v1/me/delegations", &reg.admin, body).await;
        assert_eq!(reply.code(), code, "{reply:?}");
        assert!(reply.status == 422 || reply.status == 404, "{reply:?}");
    }
    assert_eq!(before, reg.snapshot());

    let subject = person_token(&reg, &reg.other).await;
    let first = exchanged(&reg, &subject, &planner, "crm.orders:read crm.orders:write").await;
    let second = exchanged(&reg, &subject, &planner, "crm.orders:read").await;
    let hop = exchanged(&reg, &first, &worker, "crm.orders:read").await;
    // The owner's own exchanges through the same agent are not under the delegation.
    let owners = person_token(&reg, &reg.owner).await;
    let unrelated = exchanged(&reg, &owners, &planner, "crm.orders:read").await;

    // Nobody else can withdraw it: not the agent's owner, not an admin.
    for who in [&reg.owner, &reg.admin] {
        let refused = reg
            .call(
                "DELETE",
                &format!("/v1/me/delegations/{id}"),
                Some(&who.token),
                None,
            )
            .await;
        assert_eq!(refused.status, 404, "{refused:?}");
    }
    assert!(active(&reg, &first).await);

    let revoked = reg
        .call(
            "DELETE",
            &format!("/v1/me/delegations/{id}"),
            Some(&reg.other.token),
            None,
        )
        .await;
    let body = revoked.expect(200);
    assert_eq!(body["tokens_revoked"], 3);
    assert_eq!(body["delegation"]["active"], false);
    for token in [&first, &second, &hop] {
        assert!(!active(&reg, token).await);
    }
    assert!(active(&reg, &unrelated).await);
    assert_eq!(
        error_of(&exchange(&reg, &subject, &planner, "crm.orders:read").await).1,
        "invalid_grant"
    );
    // Idempotent, and audited once.
    reg.call(
        "DELETE",
        &format!("/v1/me/delegations/{id}"),
        Some(&reg.other.token),
        None,
    )
    .await
    .expect(200);
    let events = reg.get("/v1/audit?action=delegation.", &reg.admin).await;
    let actions: Vec<&str> = events.expect(200)["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == "delegation.revoke")
            .count(),
        1,
        "{actions:?}"
    );
    assert!(actions.contains(&"delegation.create"));
    // Dead after a restart too.
    let stopped = reg.stop().await;
    let store = steward::registry::open_store(
        &stopped.db,
        steward::registry::store::sqlite::OpenMode::MustExist,
    )
    .unwrap();
    let live = steward::registry::store::TokenStore::live_tokens(store.as_ref());
    for token in [&first, &hop] {
        let digest = steward::registry::tokens::token_digest(token);
        assert_eq!(live.with_digest(&digest, |v| v.revoked), Some(true));
    }
}

#[tokio::test]
async fn a_sub_agent_hop_only_narrows() {
    let reg = Registry::start().await;
    let planner = agent(
        &reg,
        &reg.owner.email,
        &["crm.orders:read", "crm.orders:write"],
        None,
    )
    .await;
    let worker = agent(
        &reg,
        &reg.owner.email,
        &["crm.orders:read", "crm.orders:write"],
        Some(&planner.id),
    )
    .await;
    let outsider = agent(&reg, &reg.owner.email, &["crm.orders:read"], None).await;
    let subject = person_token(&reg, &reg.owner).await;
    let first = exchanged(&reg, &subject, &planner, "crm.orders:read").await;
    exchanged(&reg, &first, &worker, "crm.orders:read").await;
    // Wider than the token it comes from: refused though the worker holds the grant.
    let (_, error, description) =
        error_of(&exchange(&reg, &first, &worker, "crm.orders:write").await);
    assert_eq!(error, "invalid_scope", "{description}");
    // An agent outside the chain may not act on it at all, even one the person owns.
    assert_eq!(
        error_of(&exchange(&reg, &first, &outsider, "crm.orders:read").await).1,
        "invalid_grant"
    );
}

#[tokio::test]
async fn an_invitation_is_single_use_short_lived_and_good_only_for_redeeming() {
    let reg = Registry::start().await;
    reg.post(
        "/v1/people",
        &reg.admin,
        json!({"email": "new@example.com", "display_name": "New"}),
    )
    .await
    .expect(201);
    let issued = reg
        .post("/v1/people/new@example.com/tokens", &reg.admin, json!({}))
        .await;
    let body = issued.expect(201).clone();
    assert_eq!(body["kind"], "invitation");
    let expires_at = chrono::DateTime::parse_from_rfc3339(body["expires_at"].as_str().unwrap())
        .unwrap()
        .timestamp();
    assert!(
        (expires_at - now() - 24 * 3600).abs() < 120,
        "valid 24 hours"
    );
    let invitation = body["token"].as_str().unwrap().to_string();
    let invited = Member {
        email: "new@example.com".into(),
        token: invitation.clone(),
    };
    // The admin (or anyone holding it) cannot act as the person with it.
    for (method, path, payload) in [
        ("GET", "/v1/me", None),
        ("GET", "/v1/agents", None),
        ("POST", "/v1/me/access-token", Some(json!({}))),
        (
            "POST",
            "/v1/me/delegations",
            Some(
                json!({"agent_id": "x", "scopes": ["crm.orders:read"], "expires_at": "2099-01-01T00:00:00Z"}),
            ),
        ),
        ("GET", "/v1/me/tokens", None),
    ] {
        let before = reg.snapshot();
        let reply = reg
            .call(method, path, Some(&invitation), payload.as_ref())
            .await;
        assert_eq!(
            (reply.status, reply.code()),
            (401, "invitation_only"),
            "{path}: {reply:?}"
        );
        assert!(
            reply.body["message"]
                .as_str()
                .unwrap()
                .contains("invitation")
        );
        assert_eq!(before, reg.snapshot(), "{path} changed something");
    }
    let introspect = form(
        &reg,
        "/oauth/introspect",
        Some(&invitation),
        &[("token", "x")],
    )
    .await;
    assert_eq!(
        (introspect.status, introspect.body["error"].as_str()),
        (401, Some("invalid_client"))
    );

    // Redeemed once for the person's own token, which works.
    let own = reg.redeem(&invitation).await;
    let me = reg
        .get(
            "/v1/me",
            &Member {
                email: invited.email.clone(),
                token: own.clone(),
            },
        )
        .await;
    assert_eq!(me.expect(200)["person"]["email"], "new@example.com");
    let again = reg
        .call("POST", "/v1/me/tokens", Some(&invitation), Some(&json!({})))
        .await;
    assert_eq!((again.status, again.code()), (401, "invitation_redeemed"));
    // Both steps audited.
    let events = reg
        .get("/v1/audit?target=new@example.com", &reg.admin)
        .await;
    let actions: Vec<String> = events.expect(200)["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    assert!(
        actions.contains(&"invitation.issue".to_string()),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"invitation.redeem".to_string()),
        "{actions:?}"
    );

    // An invitation past its 24 hours cannot be redeemed.
    let late = reg.invite("new@example.com").await;
    reg.sql()
        .execute(
            "UPDATE api_tokens SET expires_at = '2020-01-01T00:00:00.000000Z' WHERE kind = 'invitation' AND revoked_at IS NULL",
            [],
        )
        .unwrap();
    let expired = reg
        .call("POST", "/v1/me/tokens", Some(&late), Some(&json!({})))
        .await;
    assert_eq!((expired.status, expired.code()), (401, "token_expired"));
    // An invitation names no lifetime: the person chooses when redeeming.
    let ttl = reg
        .post(
            "/v1/people/new@example.com/tokens",
            &reg.admin,
            json!({"ttl_days": 30}),
        )
        .await;
    assert_eq!((ttl.status, ttl.code()), (422, "invalid_ttl"));
}

#[tokio::test]
async fn a_stolen_api_tokens_descendants_die_with_it_and_never_outlive_it() {
    let reg = Registry::start().await;
    let bot = agent(&reg, &reg.owner.email, &["crm.orders:read"], None).await;
    let me_tokens = reg.get("/v1/me/tokens", &reg.owner).await;
    let root_id = me_tokens.expect(200)["tokens"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The root token now ends in two days: a token it mints cannot end later.
    reg.sql()
        .execute(
            "UPDATE api_tokens SET expires_at = ?1 WHERE id = ?2",
            rusqlite::params![
                (chrono::Utc::now() + chrono::Duration::days(2))
                    .format("%Y-%m-%dT%H:%M:%S%.6fZ")
                    .to_string(),
                root_id
            ],
        )
        .unwrap();
    let child = reg
        .post(
            "/v1/me/tokens",
            &reg.owner,
            json!({"name": "stolen", "ttl_days": 60}),
        )
        .await
        .expect(201)
        .clone();
    let child_expiry =
        chrono::DateTime::parse_from_rfc3339(child["expires_at"].as_str().unwrap()).unwrap();
    assert!(child_expiry <= chrono::Utc::now() + chrono::Duration::days(2));
    let thief = Member {
        email: reg.owner.email.clone(),
        token: child["token"].as_str().unwrap().to_string(),
    };
    let grandchild = reg
        .post("/v1/me/tokens", &thief, json!({}))
        .await
        .expect(201)
        .clone();
    let listed = reg.get("/v1/me/tokens", &reg.owner).await;
    let tokens = listed.expect(200)["tokens"].as_array().unwrap().clone();
    let entry = tokens.iter().find(|t| t["id"] == child["id"]).unwrap();
    assert_eq!(entry["parent"], json!(root_id));
    assert_eq!(entry["label"], "stolen");
    assert!(
        tokens
            .iter()
            .all(|t| t.get("token").is_none() && t.get("token_hash").is_none())
    );
    let text = listed.body.to_string();
    assert!(
        !text.contains(&thief.token) && !text.contains("stw_"),
        "no secret is listed"
    );

    // A person token minted with the stolen token, and an exchange from it.
    let minted = mint(&reg, &thief, json!({"ttl_seconds": 3600})).await;
    let person = minted["access_token"].as_str().unwrap().to_string();
    let exchanged_token = exchanged(&reg, &person, &bot, "crm.orders:read").await;
    assert!(active(&reg, &exchanged_token).await);

    // The owner revokes the root: everything that came from it dies.
    reg.call(
        "DELETE",
        &format!("/v1/me/tokens/{root_id}"),
        Some(&reg.owner.token),
        None,
    )
    .await
    .expect(204);
    for token in [&thief.token, grandchild["token"].as_str().unwrap()] {
        let reply = reg.call("GET", "/v1/me", Some(token), None).await;
        assert_eq!((reply.status, reply.code()), (401, "token_revoked"));
    }
    assert!(!active(&reg, &person).await);
    assert!(!active(&reg, &exchanged_token).await);

    // A person token never outlives the API token that mints it.
    let short = reg.add_person("short@example.com", &[]).await;
    reg.sql()
        .execute(
            "UPDATE api_tokens SET expires_at = ?1 WHERE person_id = (SELECT id FROM people WHERE email = 'short@example.com') AND kind = 'api'",
            [(chrono::Utc::now() + chrono::Duration::seconds(120))
                .format("%Y-%m-%dT%H:%M:%S%.6fZ")
                .to_string()],
        )
        .unwrap();
    let minted = mint(&reg, &short, json!({"ttl_seconds": 3600})).await;
    assert!(minted["expires_in"].as_i64().unwrap() <= 120, "{minted}");
}

#[tokio::test]
async fn api_tokens_are_listed_revoked_together_and_revocable_through_oauth_revoke() {
    let reg = Registry::start().await;
    // Admins list anyone's tokens; nobody else may.
    let theirs = reg
        .get("/v1/people/owner@example.com/tokens", &reg.admin)
        .await;
    let kinds: Vec<&str> = theirs.expect(200)["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"invitation") && kinds.contains(&"api"),
        "{kinds:?}"
    );
    let refused = reg
        .get("/v1/people/owner@example.com/tokens", &reg.other)
        .await;
    assert_eq!(refused.status, 403);

    // The maximum lifetime (90 days by default).
    let long = reg
        .post("/v1/me/tokens", &reg.owner, json!({"ttl_days": 91}))
        .await;
    assert_eq!((long.status, long.code()), (422, "invalid_ttl"));

    // /oauth/revoke with an API token revokes it (today: 200 and nothing happened).
    let spare = reg
        .post("/v1/me/tokens", &reg.owner, json!({}))
        .await
        .expect(201)
        .clone();
    let spare_token = spare["token"].as_str().unwrap();
    let revoked = form(
        &reg,
        "/oauth/revoke",
        Some(&reg.owner.token),
        &[("token", spare_token)],
    )
    .await;
    assert_eq!(revoked.status, 200);
    let reply = reg.call("GET", "/v1/me", Some(spare_token), None).await;
    assert_eq!((reply.status, reply.code()), (401, "token_revoked"));
    // Whoever finds a leaked token may kill it (holding it is the proof)…
    let leaked = reg
        .post("/v1/me/tokens", &reg.owner, json!({}))
        .await
        .expect(201)
        .clone();
    let leaked_token = leaked["token"].as_str().unwrap();
    form(
        &reg,
        "/oauth/revoke",
        Some(&reg.other.token),
        &[("token", leaked_token)],
    )
    .await
    .expect(200);
    assert_eq!(
        reg.call("GET", "/v1/me", Some(leaked_token), None)
            .await
            .status,
        401
    );
    // …and it is audited.
    let events = reg
        .get("/v1/audit?action=api_token.revoke", &reg.admin)
        .await;
    assert!(events.expect(200)["events"].as_array().unwrap().len() >= 2);

    // DELETE /v1/me/tokens: every token of mine, the calling one included, and what came
    // from them.
    let bot = agent(&reg, &reg.owner.email, &["crm.orders:read"], None).await;
    let person = person_token(&reg, &reg.owner).await;
    let token = exchanged(&reg, &person, &bot, "crm.orders:read").await;
    let all = reg
        .call("DELETE", "/v1/me/tokens", Some(&reg.owner.token), None)
        .await;
    let body = all.expect(200);
    assert!(body["api_tokens_revoked"].as_u64().unwrap() >= 1, "{body}");
    assert!(body["tokens_revoked"].as_u64().unwrap() >= 2, "{body}");
    assert_eq!(reg.get("/v1/me", &reg.owner).await.status, 401);
    assert!(!active(&reg, &token).await);
}

#[tokio::test]
async fn a_leavers_tokens_and_those_they_are_subject_of_die() {
    let reg = Registry::start().await;
    let leaver = reg.add_person("leaver@example.com", &[]).await;
    let bot = agent(&reg, &leaver.email, &["crm.orders:read"], None).await;
    let helper = agent(&reg, &reg.owner.email, &["crm.orders:read"], None).await;
    delegate(&reg, &leaver, &helper.id, &["crm.orders:read"], 3600)
        .await
        .expect(201);
    let person = person_token(&reg, &leaver).await;
    let own = exchanged(&reg, &person, &bot, "crm.orders:read").await;
    let delegated = exchanged(&reg, &person, &helper, "crm.orders:read").await;
    let bystander = exchanged(
        &reg,
        &person_token(&reg, &reg.owner).await,
        &helper,
        "crm.orders:read",
    )
    .await;

    reg.call(
        "PATCH",
        "/v1/people/leaver@example.com",
        Some(&reg.admin.token),
        Some(&json!({"active": false})),
    )
    .await
    .expect(200);
    for token in [&person, &own, &delegated] {
        assert!(!active(&reg, token).await);
    }
    assert!(active(&reg, &bystander).await);
    let events = reg
        .get("/v1/audit?action=person.deactivate", &reg.admin)
        .await;
    let details = &events.expect(200)["events"][0]["details"];
    assert_eq!(details["live_tokens_revoked"], 3, "{details}");
}

#[tokio::test]
async fn removing_a_grant_kills_the_live_tokens_carrying_it() {
    let reg = Registry::start().await;
    let bot = agent(
        &reg,
        &reg.owner.email,
        &["crm.orders:read", "crm.orders:write"],
        None,
    )
    .await;
    let other_bot = agent(&reg, &reg.owner.email, &["crm.orders:read"], None).await;
    let person = person_token(&reg, &reg.owner).await;
    let with_a = exchanged(&reg, &person, &bot, "crm.orders:read crm.orders:write").await;
    let only_b = exchanged(&reg, &person, &bot, "crm.orders:write").await;
    let elsewhere = exchanged(&reg, &person, &other_bot, "crm.orders:read").await;
    reg.call(
        "DELETE",
        &format!("/v1/agents/{}/grants/crm.orders:read", bot.id),
        Some(&reg.owner.token),
        None,
    )
    .await
    .expect(200);
    assert!(!active(&reg, &with_a).await);
    assert!(active(&reg, &only_b).await);
    assert!(
        active(&reg, &elsewhere).await,
        "only that agent's tokens die"
    );
    assert_eq!(
        error_of(&exchange(&reg, &person, &bot, "crm.orders:read").await).1,
        "invalid_scope"
    );
    // Granted again, the scope can be exchanged again.
    reg.post(
        &format!("/v1/agents/{}/grants", bot.id),
        &reg.admin,
        json!({"scope": "crm.orders:read"}),
    )
    .await
    .expect(201);
    exchanged(&reg, &person, &bot, "crm.orders:read").await;
}

#[tokio::test]
async fn a_review_that_revokes_a_grant_kills_its_live_tokens() {
    let reg = Registry::start().await;
    let id = reg
        .register_with(
            json!({"name": "reviewed", "owner": reg.owner.email, "team": "reviewed-team",
                              "scopes": ["crm.orders:read", "crm.orders:write"]}),
        )
        .await;
    let bot = with_key(&reg, id).await;
    let person = person_token(&reg, &reg.owner).await;
    let with_a = exchanged(&reg, &person, &bot, "crm.orders:read").await;
    let with_b = exchanged(&reg, &person, &bot, "crm.orders:write").await;
    let due = chrono::Utc::now() + chrono::Duration::days(30);
    let campaign = reg
        .post(
            "/v1/campaigns",
            &reg.admin,
            json!({"name": "review", "filter": {"team": "reviewed-team"}, "due_at": due.to_rfc3339(),
                   "no_response": "keep"}),
        )
        .await
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let items = reg
        .get(&format!("/v1/campaigns/{campaign}/items"), &reg.admin)
        .await;
    let item = items.expect(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["scope"] == "crm.orders:read")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    reg.post(
        &format!("/v1/review-items/{item}/decision"),
        &reg.owner,
        json!({"decision": "revoke", "justification": "not needed"}),
    )
    .await
    .expect(200);
    assert!(!active(&reg, &with_a).await);
    assert!(active(&reg, &with_b).await);
}

#[tokio::test]
async fn an_audience_must_belong_to_the_resource_owning_every_scope() {
    let reg = Registry::start().await;
    let bot = agent(
        &reg,
        &reg.owner.email,
        &["crm.orders:read", "mail:send"],
        None,
    )
    .await;
    let person = person_token(&reg, &reg.owner).await;
    let ask = |scope: &'static str, audiences: Vec<(&'static str, &'static str)>| {
        let reg = &reg;
        let person = person.clone();
        let assertion = bot.assertion(reg);
        async move {
            let mut params = vec![
                ("grant_type", GRANT_TOKEN_EXCHANGE.to_string()),
                ("subject_token", person),
                ("subject_token_type", TOKEN_TYPE_ACCESS.to_string()),
                ("actor_token", assertion),
                ("actor_token_type", TOKEN_TYPE_JWT.to_string()),
                ("scope", scope.to_string()),
            ];
            params.extend(audiences.into_iter().map(|(k, v)| (k, v.to_string())));
            let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
            form(reg, "/oauth/token", None, &params).await
        }
    };
    // The CRM's audiences carry the CRM's scope, as `audience` or `resource`.
    ask(
        "crm.orders:read",
        vec![("audience", "https://crm.example.com")],
    )
    .await
    .expect(200);
    ask(
        "crm.orders:read",
        vec![
            ("resource", "https://crm.example.com/api"),
            ("audience", "https://crm.example.com"),
        ],
    )
    .await
    .expect(200);
    // Another system's audience, or an unknown one, is refused.
    for audiences in [
        vec![("audience", "https://mail.example.com")],
        vec![
            ("audience", "https://crm.example.com"),
            ("audience", "https://evil.example.com"),
        ],
        vec![("resource", "https://mail.example.com/api")],
    ] {
        let reply = ask("crm.orders:read", audiences.clone()).await;
        let (status, error, description) = error_of(&reply);
        assert_eq!(
            (status, error.as_str()),
            (400, "invalid_target"),
            "{audiences:?}: {description}"
        );
        assert!(description.contains("resource crm"), "{description}");
    }
    // One token never spans two systems' scopes.
    let reply = ask(
        "crm.orders:read mail:send",
        vec![("audience", "https://crm.example.com")],
    )
    .await;
    assert_eq!(error_of(&reply).1, "invalid_target");
    ask("mail:send", vec![("audience", "https://mail.example.com")])
        .await
        .expect(200);
}
