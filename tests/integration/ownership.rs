//! Leavers and owners against a real registry: a leave hands each agent to the leaver's manager
//! (audited, with a reminder to the manager) or leaves it orphaned (unowned work, listed by
//! `unowned=true`); the owner picker's ranking; clearing an owner (the undo of a first owner).
//! Each permission is tried by someone it must refuse, and the refusal changes nothing.

use crate::support;

use serde_json::{Value, json};
use support::{Member, Registry};

/// Adds a person through the API with a team and a manager; returns them with a token.
async fn person(reg: &Registry, email: &str, team: &str, manager: Option<&str>) -> Member {
    reg.post(
        "/v1/people",
        &reg.admin,
        json!({"email": email, "display_name": email.split('@').next(), "team": team,
               "manager": manager}),
    )
    .await
    .expect(201);
    let invitation = reg.invite(email).await;
    Member {
        email: email.into(),
        token: reg.redeem(&invitation).await,
    }
}

async fn agent_with_team(reg: &Registry, name: &str, owner: &str, team: &str) -> String {
    reg.register_with(json!({"name": name, "owner": owner, "team": team, "scopes": []}))
        .await
}

fn audit_actions(reg: &Registry, target: &str) -> Vec<String> {
    reg.sql().strings(
        "SELECT action FROM audit_events WHERE target = ?1 ORDER BY seq",
        [target],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leavers_agents_go_to_their_manager_with_a_reminder() {
    let reg = Registry::start().await;
    let boss = person(&reg, "boss@example.com", "payments", None).await;
    let leaver = person(&reg, "leaver@example.com", "payments", Some(&boss.email)).await;
    let a = agent_with_team(&reg, "payroll-bot", &leaver.email, "payments").await;
    let b = agent_with_team(&reg, "invoice-bot", &leaver.email, "payments").await;
    let gone = agent_with_team(&reg, "retired-bot", &leaver.email, "payments").await;
    reg.post(
        &format!("/v1/agents/{gone}/decommission"),
        &reg.admin,
        json!({}),
    )
    .await
    .expect(200);

    // Nobody but an admin marks people as having left; a refusal changes nothing.
    let before = reg.snapshot();
    for who in [&reg.owner, &reg.responder, &reg.auditor, &boss] {
        let reply = reg
            .post(
                &format!("/v1/people/{}/leave", leaver.email),
                who,
                json!({}),
            )
            .await;
        assert_eq!(reply.status, 403, "{} may not mark a leave", who.email);
    }
    assert_eq!(
        reg.snapshot(),
        before,
        "a refused leave changed the database"
    );

    let out = reg
        .post(
            &format!("/v1/people/{}/leave", leaver.email),
            &reg.admin,
            json!({}),
        )
        .await;
    let out = out.expect(200);
    assert_eq!(out["person"]["active"], false);
    assert!(
        out["person"]["left_at"].is_string(),
        "the leave is dated: {out}"
    );
    assert_eq!(out["succession"]["successor"], boss.email);
    assert_eq!(out["succession"]["handed_over"], 2);
    assert_eq!(out["succession"]["orphaned"], 0);

    for id in [&a, &b] {
        let agent = reg.agent(id).await;
        assert_eq!(agent["owner"], boss.email, "{id} went to the manager");
        assert!(agent.get("owner_left_at").is_none() || agent["owner_left_at"].is_null());
        assert!(
            audit_actions(&reg, id).contains(&"agent.owner.succession".to_string()),
            "the handover of {id} is audited"
        );
    }
    assert_eq!(
        reg.agent(&gone).await["owner"],
        leaver.email,
        "a decommissioned agent keeps its last owner"
    );

    // The reminder: the manager sees the handovers, nobody else does; acknowledging ends it.
    let mine = reg.get("/v1/me/handovers", &boss).await;
    let list = mine.expect(200)["handovers"].as_array().unwrap().clone();
    assert_eq!(list.len(), 2, "{list:?}");
    assert!(
        list.iter()
            .all(|h| h["from"] == leaver.email && h["to"] == boss.email)
    );
    let others = reg.get("/v1/me/handovers", &reg.admin).await;
    assert_eq!(others.expect(200)["handovers"], json!([]));
    let ack = reg
        .post("/v1/me/handovers/acknowledge", &boss, json!({}))
        .await;
    assert_eq!(ack.expect(200)["acknowledged"], 2);
    let mine = reg.get("/v1/me/handovers", &boss).await;
    assert_eq!(mine.expect(200)["handovers"], json!([]));
    let all = reg.get("/v1/me/handovers?all=true", &boss).await;
    assert_eq!(all.expect(200)["handovers"].as_array().unwrap().len(), 2);

    // A second leave is a conflict, not a second succession.
    let again = reg
        .post(
            &format!("/v1/people/{}/leave", leaver.email),
            &reg.admin,
            json!({}),
        )
        .await;
    assert_eq!(again.status, 409);
    // Nor may an admin mark themselves as gone.
    let me = reg
        .post(
            &format!("/v1/people/{}/leave", reg.admin.email),
            &reg.admin,
            json!({}),
        )
        .await;
    assert_eq!(me.status, 409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_manager_the_agents_are_orphaned_and_listed_as_unowned() {
    let reg = Registry::start().await;
    let loner = person(&reg, "loner@example.com", "crm", None).await;
    let id = agent_with_team(&reg, "crm-sync", &loner.email, "crm").await;
    let kept = reg.register("owned-bot", Some(&reg.owner.email), &[]).await;

    // The older way of marking a leave (PATCH active=false) applies the same rule.
    reg.call(
        "PATCH",
        &format!("/v1/people/{}", loner.email),
        Some(&reg.admin.token),
        Some(&json!({"active": false})),
    )
    .await
    .expect(200);

    let agent = reg.agent(&id).await;
    assert_eq!(agent["owner"], loner.email, "the leaver's name stays on it");
    assert!(agent["owner_left_at"].is_string(), "orphaned: {agent}");
    assert!(audit_actions(&reg, &id).contains(&"agent.owner.orphaned".to_string()));

    let unowned = reg.get("/v1/agents?unowned=true", &reg.admin).await;
    let ids: Vec<&str> = unowned.expect(200)["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&id.as_str()),
        "orphaned agents are unowned work"
    );
    assert!(!ids.contains(&kept.as_str()), "an owned agent is not");

    // Giving it an owner ends the orphaned state; a leaver can never be given one.
    let refused = reg
        .call(
            "PUT",
            &format!("/v1/agents/{kept}/owner"),
            Some(&reg.admin.token),
            Some(&json!({"owner": loner.email})),
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    reg.call(
        "PUT",
        &format!("/v1/agents/{id}/owner"),
        Some(&reg.admin.token),
        Some(&json!({"owner": reg.owner.email})),
    )
    .await
    .expect(200);
    let agent = reg.agent(&id).await;
    assert!(agent.get("owner_left_at").is_none_or(Value::is_null));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_candidates_are_ranked_by_the_registry() {
    let reg = Registry::start().await;
    let manager = person(&reg, "manager@example.com", "finance", None).await;
    let first = person(&reg, "first@example.com", "finance", Some(&manager.email)).await;
    let mate = person(&reg, "mate@example.com", "payments", None).await;
    let user = person(&reg, "user@example.com", "crm", None).await;
    let gone = person(&reg, "gone@example.com", "payments", None).await;
    let id = agent_with_team(&reg, "ledger-bot", &first.email, "payments").await;
    // The previous owner (first) and their manager: move the agent to `mate`.
    reg.call(
        "PUT",
        &format!("/v1/agents/{id}/owner"),
        Some(&reg.admin.token),
        Some(&json!({"owner": mate.email})),
    )
    .await
    .expect(200);
    // `user` uses the agent: a delegation to it.
    reg.post(
        "/v1/me/delegations",
        &user,
        json!({"agent_id": id, "scopes": ["crm.orders:read"],
               "expires_at": (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339()}),
    )
    .await
    .expect(201);
    reg.post(
        &format!("/v1/people/{}/leave", gone.email),
        &reg.admin,
        json!({}),
    )
    .await
    .expect(200);

    let answer = reg
        .get(
            &format!("/v1/agents/{id}/owner-candidates?limit=500"),
            &reg.admin,
        )
        .await;
    let answer = answer.expect(200).clone();
    assert_eq!(answer["current_owner"], mate.email);
    let list = answer["candidates"].as_array().unwrap();
    let pos = |email: &str| list.iter().position(|c| c["email"] == email);
    assert_eq!(pos(&mate.email), None, "the current owner is not offered");
    assert_eq!(pos(&gone.email), None, "people who left are never offered");
    let reasons: Vec<&str> = list.iter().map(|c| c["reason"].as_str().unwrap()).collect();
    let mut sorted = reasons.clone();
    sorted.sort_by_key(|r| {
        ["team", "previous-owner-manager", "user", "other"]
            .iter()
            .position(|x| x == r)
    });
    assert_eq!(reasons, sorted, "grouped best first: {reasons:?}");
    assert_eq!(
        list[pos(&manager.email).unwrap()]["reason"],
        "previous-owner-manager"
    );
    assert_eq!(list[pos(&user.email).unwrap()]["reason"], "user");
    assert!(pos(&manager.email) < pos(&user.email));
    assert!(pos(&user.email) < pos(&reg.auditor.email));

    // `q` narrows; a bad limit is refused; the owner of the agent may not read who uses it.
    let narrowed = reg
        .get(
            &format!("/v1/agents/{id}/owner-candidates?q=manag"),
            &reg.admin,
        )
        .await;
    assert_eq!(
        narrowed.expect(200)["candidates"].as_array().unwrap().len(),
        1
    );
    let bad = reg
        .get(
            &format!("/v1/agents/{id}/owner-candidates?limit=0"),
            &reg.admin,
        )
        .await;
    assert_eq!(bad.status, 422);
    let as_owner = reg
        .get(&format!("/v1/agents/{id}/owner-candidates"), &mate)
        .await;
    assert_eq!(as_owner.status, 403);
    let as_stranger = reg
        .get(&format!("/v1/agents/{id}/owner-candidates"), &reg.other)
        .await;
    assert_eq!(
        as_stranger.status, 404,
        "an agent they cannot see does not exist for them"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clearing_an_owner_undoes_a_first_owner_and_is_audited() {
    let reg = Registry::start().await;
    let id = reg.register("found-bot", None, &[]).await;
    reg.call(
        "PUT",
        &format!("/v1/agents/{id}/owner"),
        Some(&reg.admin.token),
        Some(&json!({"owner": reg.owner.email})),
    )
    .await
    .expect(200);

    // The owner themself may not drop the agent, nor may a responder.
    let before = reg.snapshot();
    for who in [&reg.owner, &reg.responder] {
        let reply = reg
            .call(
                "DELETE",
                &format!("/v1/agents/{id}/owner"),
                Some(&who.token),
                None,
            )
            .await;
        assert_eq!(reply.status, 403, "{}", who.email);
    }
    assert_eq!(reg.snapshot(), before);

    let cleared = reg
        .call(
            "DELETE",
            &format!("/v1/agents/{id}/owner"),
            Some(&reg.admin.token),
            Some(&json!({"reason": "undo"})),
        )
        .await;
    assert!(cleared.expect(200)["owner"].is_null());
    assert_eq!(
        audit_actions(&reg, &id)
            .iter()
            .filter(|a| a.starts_with("agent.owner."))
            .collect::<Vec<_>>(),
        vec!["agent.owner.set", "agent.owner.clear"]
    );
    // Idempotent: nothing more to clear, nothing more recorded.
    let count = reg.audit_count();
    reg.call(
        "DELETE",
        &format!("/v1/agents/{id}/owner"),
        Some(&reg.admin.token),
        None,
    )
    .await
    .expect(200);
    assert_eq!(reg.audit_count(), count);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_whose_agent_was_cleared_then_given_away_is_told_to_drop_it() {
    let reg = Registry::start().await;
    let id = reg.register("wanderer", Some(&reg.owner.email), &[]).await;
    let feed = |after: i64, who: Member| {
        let reg = &reg;
        async move {
            reg.get(&format!("/v1/changes?after={after}&limit=1000"), &who)
                .await
                .expect(200)
                .clone()
        }
    };
    let cursor = feed(0, reg.owner.clone()).await["cursor"].as_i64().unwrap();
    reg.call(
        "DELETE",
        &format!("/v1/agents/{id}/owner"),
        Some(&reg.admin.token),
        None,
    )
    .await
    .expect(200);
    reg.call(
        "PUT",
        &format!("/v1/agents/{id}/owner"),
        Some(&reg.admin.token),
        Some(&json!({"owner": reg.other.email})),
    )
    .await
    .expect(200);
    let next = feed(cursor, reg.owner.clone()).await;
    assert!(
        next["removed"].as_array().unwrap().contains(&json!(id)),
        "the first owner's console would keep an agent that is no longer theirs: {next}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_sync_says_how_many_agents_will_come() {
    let reg = Registry::start().await;
    for n in 0..3 {
        reg.register(&format!("mine-{n}"), Some(&reg.owner.email), &[])
            .await;
    }
    reg.register("theirs", Some(&reg.other.email), &[]).await;
    let first = reg.get("/v1/changes?after=0&limit=2", &reg.admin).await;
    let first = first.expect(200).clone();
    assert_eq!(first["total"], 4, "{first}");
    let owners = reg.get("/v1/changes?after=0&limit=2", &reg.owner).await;
    assert_eq!(
        owners.expect(200)["total"],
        3,
        "an owner counts only their own"
    );
    let cursor = first["cursor"].as_i64().unwrap();
    let later = reg
        .get(&format!("/v1/changes?after={cursor}&limit=2"), &reg.admin)
        .await;
    assert!(
        later.expect(200).get("total").is_none(),
        "only a first sync counts"
    );
}
