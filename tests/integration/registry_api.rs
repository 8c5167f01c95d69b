//! The governance API's behaviour against a real registry: the change feed, list filters,
//! registering sub-agents and instances, decommission, revocation, reinstatement and the audit
//! log (events, chain verification, notes).

use crate::support;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use steward::model::AuditEvent;
use steward::model::audit::ChainVerifier;
use support::{Member, Registry};

/// How many pages any paging loop may read before the test fails (a bound, not a figure).
const MAX_PAGES: usize = 500;

fn ids(list: &Value) -> BTreeSet<String> {
    list.as_array()
        .expect("a JSON array")
        .iter()
        .map(|a| a["id"].as_str().expect("an id").to_string())
        .collect()
}

fn strings(list: &Value) -> BTreeSet<String> {
    list.as_array()
        .expect("a JSON array")
        .iter()
        .map(|s| s.as_str().expect("a string").to_string())
        .collect()
}

async fn feed(reg: &Registry, who: &Member, after: i64, limit: u32) -> Value {
    reg.get(&format!("/v1/changes?after={after}&limit={limit}"), who)
        .await
        .expect(200)
        .clone()
}

/// Everything a caller receives from the feed after `after`, read in pages of `limit`.
struct Walked {
    /// (agent id, change_seq) in the order received.
    agents: Vec<(String, i64)>,
    people: Vec<(String, i64)>,
    removed: Vec<String>,
    cursor: i64,
    pages: usize,
}

async fn walk_feed(reg: &Registry, who: &Member, after: i64, limit: u32) -> Walked {
    let mut walked = Walked {
        agents: Vec::new(),
        people: Vec::new(),
        removed: Vec::new(),
        cursor: after,
        pages: 0,
    };
    loop {
        assert!(walked.pages < MAX_PAGES, "the feed never ended");
        let page = feed(reg, who, walked.cursor, limit).await;
        walked.pages += 1;
        let cursor = page["cursor"].as_i64().unwrap();
        assert!(cursor >= walked.cursor, "the cursor went back: {page}");
        for (list, out) in [
            ("agents", &mut walked.agents),
            ("people", &mut walked.people),
        ] {
            for item in page[list].as_array().unwrap() {
                let seq = item["change_seq"].as_i64().unwrap();
                assert!(
                    seq > walked.cursor && seq <= cursor,
                    "{list} item {} has change_seq {seq} outside ({}, {cursor}]",
                    item["id"],
                    walked.cursor
                );
                let key = if list == "agents" { "id" } else { "email" };
                out.push((item[key].as_str().unwrap().to_string(), seq));
            }
        }
        walked.removed.extend(
            page["removed"]
                .as_array()
                .unwrap()
                .iter()
                .map(|id| id.as_str().unwrap().to_string()),
        );
        let progressed = cursor > walked.cursor;
        walked.cursor = cursor;
        if page["more"] == json!(false) {
            return walked;
        }
        assert!(
            progressed,
            "a page with more=true did not move the cursor: {page}"
        );
    }
}

#[tokio::test]
async fn change_feed_cursor_advances_and_returns_only_later_changes() {
    let reg = Registry::start().await;
    let start = feed(&reg, &reg.admin, 0, 1000).await;
    assert_eq!(start["more"], json!(false));
    let c0 = start["cursor"].as_i64().unwrap();
    assert!(c0 > 0, "making five people moved the cursor: {start}");
    assert_eq!(
        start["people"].as_array().unwrap().len(),
        5,
        "the five standard people: {start}"
    );

    let old = reg.register("before-cursor", None, &[]).await;
    let c1 = feed(&reg, &reg.admin, c0, 1000).await["cursor"]
        .as_i64()
        .unwrap();
    assert!(c1 > c0);

    let a = reg
        .register("after-cursor", Some(&reg.owner.email), &[])
        .await;
    let page = feed(&reg, &reg.admin, c1, 1000).await;
    assert_eq!(ids(&page["agents"]), BTreeSet::from([a.clone()]), "{page}");
    assert!(page["people"].as_array().unwrap().is_empty(), "{page}");
    let c2 = page["cursor"].as_i64().unwrap();
    assert!(c2 > c1);

    // Nothing new: the same cursor comes back with nothing.
    let idle = feed(&reg, &reg.admin, c2, 1000).await;
    assert_eq!(idle["cursor"].as_i64().unwrap(), c2);
    assert!(idle["agents"].as_array().unwrap().is_empty(), "{idle}");
    assert!(idle["people"].as_array().unwrap().is_empty(), "{idle}");

    // A grant moves the agent past the cursor again, with its new grant.
    reg.post(
        &format!("/v1/agents/{a}/grants"),
        &reg.admin,
        json!({"scope": "crm.orders:read"}),
    )
    .await
    .expect(201);
    reg.add_person("newcomer@example.com", &[]).await;
    let page = feed(&reg, &reg.admin, c2, 1000).await;
    assert_eq!(ids(&page["agents"]), BTreeSet::from([a.clone()]), "{page}");
    assert_eq!(
        page["agents"][0]["grants"][0]["scope"],
        json!("crm.orders:read")
    );
    let people: Vec<_> = page["people"].as_array().unwrap().iter().collect();
    assert_eq!(people.len(), 1, "{page}");
    assert_eq!(people[0]["email"], json!("newcomer@example.com"));
    assert!(!ids(&page["agents"]).contains(&old));
    assert!(page["cursor"].as_i64().unwrap() > c2);
}

#[tokio::test]
async fn change_feed_pages_never_skip_or_repeat() {
    let reg = Registry::start().await;
    // Interleave agent and person changes, and move some agents forward again, so that pages
    // end in the middle of both lists.
    let mut agents = Vec::new();
    for i in 0..9 {
        agents.push(reg.register(&format!("paged-{i}"), None, &[]).await);
        if i % 2 == 0 {
            reg.add_person(&format!("paged-{i}@example.com"), &[]).await;
        }
        if i % 3 == 2 {
            reg.post(
                &format!("/v1/agents/{}/grants", agents[i / 2]),
                &reg.admin,
                json!({"scope": format!("jira.p{i}:read")}),
            )
            .await
            .expect(201);
        }
    }
    let whole = feed(&reg, &reg.admin, 0, 5000).await;
    assert_eq!(whole["more"], json!(false));
    let whole_agents: BTreeMap<String, i64> = whole["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap().into(),
                a["change_seq"].as_i64().unwrap(),
            )
        })
        .collect();
    let whole_people: BTreeMap<String, i64> = whole["people"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["email"].as_str().unwrap().into(),
                p["change_seq"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(whole_agents.len(), 9);
    assert_eq!(whole_people.len(), 5 + 5);

    for limit in [1, 2, 3, 5] {
        let walked = walk_feed(&reg, &reg.admin, 0, limit).await;
        let agents: BTreeMap<String, i64> = walked.agents.iter().cloned().collect();
        let people: BTreeMap<String, i64> = walked.people.iter().cloned().collect();
        assert_eq!(
            agents.len(),
            walked.agents.len(),
            "limit {limit}: an agent came twice"
        );
        assert_eq!(
            people.len(),
            walked.people.len(),
            "limit {limit}: a person came twice"
        );
        assert_eq!(
            agents, whole_agents,
            "limit {limit}: agents differ from one big page"
        );
        assert_eq!(
            people, whole_people,
            "limit {limit}: people differ from one big page"
        );
        assert_eq!(walked.cursor, whole["cursor"].as_i64().unwrap());
        assert!(walked.pages > 1, "limit {limit} needed several pages");
    }
}

#[tokio::test]
async fn owner_feed_holds_only_their_agents_and_names_those_taken_away() {
    let reg = Registry::start().await;
    let mine1 = reg.register("mine-1", Some(&reg.owner.email), &[]).await;
    let mine2 = reg.register("mine-2", Some(&reg.owner.email), &[]).await;
    let theirs = reg.register("theirs", Some(&reg.other.email), &[]).await;
    let nobodys = reg.register("nobodys", None, &[]).await;

    let first = feed(&reg, &reg.owner, 0, 1000).await;
    assert_eq!(
        ids(&first["agents"]),
        BTreeSet::from([mine1.clone(), mine2.clone()])
    );
    assert!(first["removed"].as_array().unwrap().is_empty());
    let cursor = first["cursor"].as_i64().unwrap();

    // The admin gives mine-1 to the other owner.
    reg.call(
        "PUT",
        &format!("/v1/agents/{mine1}/owner"),
        Some(&reg.admin.token),
        Some(&json!({"owner": reg.other.email})),
    )
    .await
    .expect(200);
    let next = feed(&reg, &reg.owner, cursor, 1000).await;
    assert!(ids(&next["agents"]).is_empty(), "{next}");
    assert_eq!(strings(&next["removed"]), BTreeSet::from([mine1.clone()]));

    let others = feed(&reg, &reg.other, 0, 1000).await;
    assert_eq!(
        ids(&others["agents"]),
        BTreeSet::from([theirs.clone(), mine1.clone()])
    );
    assert!(!ids(&others["agents"]).contains(&nobodys));
}

#[tokio::test]
async fn owner_feed_pages_do_not_skip_past_agents_taken_away() {
    let reg = Registry::start().await;
    let mut mine = Vec::new();
    for i in 0..4 {
        mine.push(
            reg.register(&format!("mine-{i}"), Some(&reg.owner.email), &[])
                .await,
        );
    }
    let cursor = feed(&reg, &reg.owner, 0, 1000).await["cursor"]
        .as_i64()
        .unwrap();
    // Three agents leave, then one new agent arrives: a small page holds only departures.
    for id in &mine[..3] {
        reg.call(
            "PUT",
            &format!("/v1/agents/{id}/owner"),
            Some(&reg.admin.token),
            Some(&json!({"owner": reg.other.email})),
        )
        .await
        .expect(200);
    }
    let arrived = reg.register("arrived", Some(&reg.owner.email), &[]).await;
    for limit in [1, 2, 3] {
        let walked = walk_feed(&reg, &reg.owner, cursor, limit).await;
        let removed: BTreeSet<String> = walked.removed.iter().cloned().collect();
        assert_eq!(
            removed,
            mine[..3].iter().cloned().collect(),
            "limit {limit}"
        );
        assert_eq!(
            walked.removed.len(),
            3,
            "limit {limit}: a removal came twice"
        );
        let agents: Vec<&String> = walked.agents.iter().map(|(id, _)| id).collect();
        assert_eq!(
            agents,
            vec![&arrived],
            "limit {limit}: the new agent was skipped"
        );
    }
}

#[tokio::test]
async fn owner_feed_names_an_agent_reassigned_twice_while_they_were_away() {
    let reg = Registry::start().await;
    let third = reg.add_person("third@example.com", &[]).await;
    let id = reg.register("wanderer", Some(&reg.owner.email), &[]).await;
    let cursor = feed(&reg, &reg.owner, 0, 1000).await["cursor"]
        .as_i64()
        .unwrap();
    for to in [&reg.other.email, &third.email] {
        reg.call(
            "PUT",
            &format!("/v1/agents/{id}/owner"),
            Some(&reg.admin.token),
            Some(&json!({"owner": to})),
        )
        .await
        .expect(200);
    }
    let next = feed(&reg, &reg.owner, cursor, 1000).await;
    assert_eq!(
        strings(&next["removed"]),
        BTreeSet::from([id.clone()]),
        "the first owner's console still holds the agent: {next}"
    );
    // The middle owner learns of it too.
    let middle = feed(&reg, &reg.other, cursor, 1000).await;
    assert!(strings(&middle["removed"]).contains(&id), "{middle}");
}

#[tokio::test]
async fn list_filters_search_and_pages() {
    let reg = Registry::start().await;
    let o = reg.owner.email.clone();
    let pay = reg
        .register_with(
            json!({"name": "Invoice-Bot", "owner": o, "team": "payments",
                              "environment": "staging"}),
        )
        .await;
    let pay2 = reg
        .register_with(
            json!({"name": "refund agent", "owner": o, "team": "payments",
                              "description": "handles INVOICE disputes"}),
        )
        .await;
    let growth = reg
        .register_with(json!({"name": "growth 100% bot", "owner": reg.other.email,
                              "team": "growth"}))
        .await;
    let orphan = reg
        .register_with(json!({"name": "orphan_scanner", "team": "growth"}))
        .await;
    // Double quotes are plain characters too (the trigram index takes the text as a phrase).
    let quoted = reg
        .register_with(json!({"name": "the \"quoted\" one", "team": "growth"}))
        .await;
    // "n-s" would match the search "n_s" if `_` were a wildcard.
    let suspended = reg.register("scan-s bot", Some(&o), &[]).await;
    reg.post(
        &format!("/v1/agents/{suspended}/revoke"),
        &reg.admin,
        json!({}),
    )
    .await
    .expect(200);
    let all = BTreeSet::from([
        pay.clone(),
        pay2.clone(),
        growth.clone(),
        orphan.clone(),
        quoted.clone(),
        suspended.clone(),
    ]);

    let list = |query: &'static str, who: Member| {
        let reg = &reg;
        async move {
            let reply = reg.get(&format!("/v1/agents{query}"), &who).await;
            let body = reply.expect(200);
            assert!(body["next"].is_null(), "{query}: one page");
            ids(&body["agents"])
        }
    };
    let admin = reg.admin.clone();
    assert_eq!(list("", admin.clone()).await, all);
    assert_eq!(
        list("?unowned=true", admin.clone()).await,
        BTreeSet::from([orphan.clone(), quoted.clone()])
    );
    assert_eq!(
        list("?owner=OWNER@example.com", admin.clone()).await,
        BTreeSet::from([pay.clone(), pay2.clone(), suspended.clone()])
    );
    assert_eq!(
        list("?status=suspended", admin.clone()).await,
        BTreeSet::from([suspended.clone()])
    );
    assert_eq!(
        list("?team=payments", admin.clone()).await,
        BTreeSet::from([pay.clone(), pay2.clone()])
    );
    assert_eq!(
        list("?environment=staging", admin.clone()).await,
        BTreeSet::from([pay.clone()])
    );
    assert_eq!(
        list("?team=growth&unowned=true", admin.clone()).await,
        BTreeSet::from([orphan.clone(), quoted.clone()])
    );
    // Text search: case-insensitive over name and description; % and _ are plain characters.
    assert_eq!(
        list("?q=invoice", admin.clone()).await,
        BTreeSet::from([pay.clone(), pay2.clone()])
    );
    assert_eq!(
        list("?q=100%25", admin.clone()).await,
        BTreeSet::from([growth.clone()])
    );
    assert_eq!(
        list("?q=%25", admin.clone()).await,
        BTreeSet::from([growth.clone()])
    );
    assert_eq!(
        list("?q=n_s", admin.clone()).await,
        BTreeSet::from([orphan.clone()])
    );
    // Three characters and more go through the trigram index: same answers, any case, any
    // quotes, and nothing for text that is nowhere.
    assert_eq!(
        list("?q=INVOICE-B", admin.clone()).await,
        BTreeSet::from([pay.clone()])
    );
    assert_eq!(
        list("?q=%22quoted%22", admin.clone()).await,
        BTreeSet::from([quoted.clone()])
    );
    assert_eq!(
        list("?q=%22quo", admin.clone()).await,
        BTreeSet::from([quoted.clone()])
    );
    assert!(list("?q=zqxjv", admin.clone()).await.is_empty());
    assert_eq!(
        list("?q=disputes&owner=owner@example.com", admin.clone()).await,
        BTreeSet::from([pay2.clone()])
    );
    assert!(
        list("?q=disputes&owner=other@example.com", admin.clone())
            .await
            .is_empty()
    );
    assert_eq!(
        list(
            Box::leak(format!("?q={}", &pay[3..]).into_boxed_str()),
            admin.clone()
        )
        .await,
        BTreeSet::from([pay.clone()]),
        "search finds an agent by id"
    );

    // An owner sees only their own agents, whatever they ask for.
    let owner = reg.owner.clone();
    assert_eq!(
        list("", owner.clone()).await,
        BTreeSet::from([pay.clone(), pay2.clone(), suspended.clone()])
    );
    assert!(list("?unowned=true", owner.clone()).await.is_empty());
    assert!(
        list("?owner=other@example.com", owner.clone())
            .await
            .is_empty()
    );

    // Pages: follow `next` until it is null; every agent once, in id order.
    for limit in [1, 2, 3] {
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let query = match &after {
                Some(a) => format!("/v1/agents?limit={limit}&after={a}"),
                None => format!("/v1/agents?limit={limit}"),
            };
            let page = reg.get(&query, &reg.admin).await.expect(200).clone();
            let got: Vec<String> = page["agents"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["id"].as_str().unwrap().to_string())
                .collect();
            assert!(got.len() <= limit, "a page larger than its limit");
            seen.extend(got);
            match page["next"].as_str() {
                Some(next) => after = Some(next.to_string()),
                None => {
                    after = None;
                    break;
                }
            }
        }
        assert!(after.is_none(), "paging did not end");
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(
            seen, sorted,
            "limit {limit}: pages repeat or are out of order"
        );
        assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), all);
    }

    let bad = reg.get("/v1/agents?status=sleeping", &reg.admin).await;
    assert_eq!((bad.status, bad.code()), (400, "invalid_query"), "{bad:?}");
}

#[tokio::test]
async fn sub_agents_and_instances_need_a_valid_parent() {
    let reg = Registry::start().await;
    let o = reg.owner.email.clone();
    let parent = reg
        .register_with(json!({"name": "planner", "owner": o, "team": "ops",
                              "environment": "staging"}))
        .await;
    let before = reg.snapshot();
    let refusals = [
        (
            json!({"name": "x", "kind": "sub-agent", "owner": o}),
            422,
            "invalid_parent",
        ),
        (
            json!({"name": "x", "kind": "instance", "owner": o}),
            422,
            "invalid_parent",
        ),
        (
            json!({"name": "x", "kind": "agent", "parent_id": parent, "owner": o}),
            422,
            "invalid_parent",
        ),
        (
            json!({"name": "x", "kind": "sub-agent", "parent_id": "ag_nope", "owner": o}),
            422,
            "unknown_parent",
        ),
        (
            json!({"name": "x", "kind": "robot", "owner": o}),
            422,
            "invalid_body",
        ),
        (
            json!({"name": "x", "owner": "nobody@example.com"}),
            422,
            "unknown_owner",
        ),
    ];
    for (body, status, code) in refusals {
        let reply = reg.post("/v1/agents", &reg.admin, body.clone()).await;
        assert_eq!(
            (reply.status, reply.code()),
            (status, code),
            "{body}: {reply:?}"
        );
    }
    assert_eq!(
        reg.snapshot(),
        before,
        "a refused registration wrote something"
    );

    // A valid sub-agent inherits team and environment; an instance hangs below it.
    let child = reg
        .post(
            "/v1/agents",
            &reg.owner,
            json!({"name": "planner-worker", "kind": "sub-agent", "parent_id": parent, "owner": o}),
        )
        .await;
    let child = child.expect(201).clone();
    assert_eq!(child["team"], json!("ops"));
    assert_eq!(child["environment"], json!("staging"));
    assert_eq!(child["parent_id"], json!(parent));
    let child_id = child["id"].as_str().unwrap().to_string();
    let instance = reg
        .post(
            "/v1/agents",
            &reg.owner,
            json!({"name": "planner-worker#1", "kind": "instance", "parent_id": child_id,
                   "owner": o}),
        )
        .await;
    let instance_id = instance.expect(201)["id"].as_str().unwrap().to_string();
    let parent_detail = reg.agent(&parent).await;
    assert_eq!(
        ids(&parent_detail["children"]),
        BTreeSet::from([child_id.clone()])
    );
    let child_detail = reg.agent(&child_id).await;
    assert_eq!(child_detail["parent"]["id"], json!(parent));
    assert_eq!(
        ids(&child_detail["children"]),
        BTreeSet::from([instance_id])
    );

    // A person who has left cannot own a new agent.
    reg.add_person("gone@example.com", &[]).await;
    reg.call(
        "PATCH",
        "/v1/people/gone@example.com",
        Some(&reg.admin.token),
        Some(&json!({"active": false})),
    )
    .await
    .expect(200);
    let reply = reg
        .post(
            "/v1/agents",
            &reg.admin,
            json!({"name": "x", "owner": "gone@example.com"}),
        )
        .await;
    assert_eq!((reply.status, reply.code()), (422, "owner_inactive"));

    // Nothing can be registered under a decommissioned parent.
    reg.post(
        &format!("/v1/agents/{parent}/decommission"),
        &reg.owner,
        json!({}),
    )
    .await
    .expect(200);
    let reply = reg
        .post(
            "/v1/agents",
            &reg.owner,
            json!({"name": "late", "kind": "sub-agent", "parent_id": parent, "owner": o}),
        )
        .await;
    assert_eq!((reply.status, reply.code()), (409, "conflict"), "{reply:?}");
}

async fn audit_of(reg: &Registry, id: &str) -> Vec<AuditEvent> {
    let page = reg.get(&format!("/v1/agents/{id}/audit"), &reg.admin).await;
    serde_json::from_value(page.expect(200)["events"].clone()).unwrap()
}

#[tokio::test]
async fn decommission_cascades_to_children_and_grandchildren_and_keeps_the_records() {
    let reg = Registry::start().await;
    let o = reg.owner.email.clone();
    let root = reg.seed_agent_with_credentials("root", Some(&o), None);
    let child = reg.seed_agent_with_credentials("child", Some(&o), Some(&root));
    let grandchild = reg
        .register_with(
            json!({"name": "grandchild", "kind": "instance", "parent_id": child,
                              "owner": o, "scopes": ["s3.reports:read", "jira.x:read"]}),
        )
        .await;
    let bystander = reg.seed_agent_with_credentials("bystander", Some(&o), None);

    let plan = reg
        .get(&format!("/v1/agents/{root}/decommission"), &reg.owner)
        .await;
    let plan = plan.expect(200);
    assert_eq!(
        plan["agents"],
        json!([root, child, grandchild]),
        "the plan lists the subtree, target first"
    );
    assert_eq!(plan["grants"], json!(4));
    assert_eq!(plan["credentials"], json!(4));
    assert_eq!(
        reg.agent(&root).await["status"],
        json!("active"),
        "a plan changes nothing"
    );

    let done = reg
        .post(
            &format!("/v1/agents/{root}/decommission"),
            &reg.owner,
            json!({"reason": "retired with the Q3 platform"}),
        )
        .await;
    let done = done.expect(200);
    assert_eq!(done["decommissioned"], json!([root, child, grandchild]));
    assert_eq!(done["grants_removed"], json!(4));
    assert_eq!(done["credentials_disabled"], json!(4));

    for id in [&root, &child, &grandchild] {
        let agent = reg.agent(id).await;
        assert_eq!(agent["status"], json!("decommissioned"), "{agent}");
        assert_eq!(agent["grants"], json!([]), "{agent}");
        assert_eq!(agent["static_secret"], json!(false));
        assert!(
            agent["credentials"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| !c["disabled_at"].is_null()),
            "every credential disabled: {agent}"
        );
        let events = audit_of(&reg, id).await;
        let last = events.last().unwrap();
        assert_eq!(last.action, "agent.decommission");
        assert_eq!(last.actor.id, o);
        assert_eq!(last.reason.as_deref(), Some("retired with the Q3 platform"));
        let cascade = if id == &root {
            json!(null)
        } else {
            json!(root)
        };
        assert_eq!(last.details["cascade_from"], cascade);
    }
    // The records stay listed; the agent outside the subtree is untouched.
    let listed = reg
        .get("/v1/agents?status=decommissioned", &reg.admin)
        .await;
    assert_eq!(
        ids(&listed.expect(200)["agents"]),
        BTreeSet::from([root.clone(), child.clone(), grandchild.clone()])
    );
    let untouched = reg.agent(&bystander).await;
    assert_eq!(untouched["status"], json!("active"));
    assert_eq!(untouched["static_secret"], json!(true));

    // Again: nothing left to do, said so, and recorded.
    let audit_before = reg.audit_count();
    let again = reg
        .post(
            &format!("/v1/agents/{root}/decommission"),
            &reg.owner,
            json!({}),
        )
        .await;
    let again = again.expect(200);
    assert_eq!(again["decommissioned"], json!([]));
    assert_eq!(again["grants_removed"], json!(0));
    assert_eq!(reg.audit_count(), audit_before + 1);

    // A decommissioned agent takes no grants and cannot be reinstated.
    let grant = reg
        .post(
            &format!("/v1/agents/{child}/grants"),
            &reg.admin,
            json!({"scope": "crm.orders:read"}),
        )
        .await;
    assert_eq!((grant.status, grant.code()), (409, "conflict"));
    let reinstate = reg
        .post(
            &format!("/v1/agents/{root}/reinstate"),
            &reg.admin,
            json!({}),
        )
        .await;
    assert_eq!((reinstate.status, reinstate.code()), (409, "conflict"));
    let owner = reg
        .call(
            "PUT",
            &format!("/v1/agents/{root}/owner"),
            Some(&reg.admin.token),
            Some(&json!({"owner": reg.other.email})),
        )
        .await;
    assert_eq!((owner.status, owner.code()), (409, "conflict"));
}

#[tokio::test]
async fn revoke_is_idempotent_and_reinstate_keeps_credentials_disabled() {
    let reg = Registry::start().await;
    let id = reg.seed_agent_with_credentials("leaky", Some(&reg.owner.email), None);
    assert_eq!(reg.agent(&id).await["static_secret"], json!(true));

    let first = reg
        .post(
            &format!("/v1/agents/{id}/revoke"),
            &reg.responder,
            json!({"reason": "INC-4821 prompt injection"}),
        )
        .await;
    let first = first.expect(200).clone();
    assert_eq!(first["changed"], json!(true));
    assert_eq!(first["previous_status"], json!("active"));
    assert_eq!(first["status"], json!("suspended"));
    assert_eq!(first["credentials_disabled"], json!(2));
    assert_eq!(first["agent"]["static_secret"], json!(false));
    let detail = reg.agent(&id).await;
    let disabled_at: Vec<Value> = detail["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["disabled_at"].clone())
        .collect();
    assert_eq!(disabled_at.len(), 2);
    assert!(disabled_at.iter().all(|d| !d.is_null()), "{detail}");
    assert_eq!(
        detail["grants"].as_array().unwrap().len(),
        1,
        "revoke keeps grants"
    );

    let events = audit_of(&reg, &id).await;
    let event = events
        .iter()
        .find(|e| e.seq == first["audit_seq"].as_i64().unwrap())
        .expect("the revoke's audit event");
    assert_eq!(event.action, "agent.revoke");
    assert_eq!(event.actor.id, reg.responder.email);
    assert_eq!(event.reason.as_deref(), Some("INC-4821 prompt injection"));

    // Again: nothing changes, and it says so; a no-op adds no audit event.
    let events_before = reg.audit_count();
    let second = reg
        .call(
            "POST",
            &format!("/v1/agents/{id}/revoke"),
            Some(&reg.owner.token),
            None,
        )
        .await;
    let second = second.expect(200);
    assert_eq!(second["changed"], json!(false));
    assert_eq!(second["previous_status"], json!("suspended"));
    assert_eq!(second["credentials_disabled"], json!(0));
    assert_eq!(second["audit_seq"], first["audit_seq"]);
    assert_eq!(reg.audit_count(), events_before);

    // Reinstating makes the agent active but leaves its credentials disabled as they were.
    let back = reg
        .post(
            &format!("/v1/agents/{id}/reinstate"),
            &reg.responder,
            json!({"reason": "false alarm"}),
        )
        .await;
    assert_eq!(back.expect(200)["status"], json!("active"));
    let detail = reg.agent(&id).await;
    let after: Vec<Value> = detail["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["disabled_at"].clone())
        .collect();
    assert_eq!(
        after, disabled_at,
        "reinstating must not re-enable credentials"
    );
    assert_eq!(detail["static_secret"], json!(false));
    let last = audit_of(&reg, &id).await.pop().unwrap();
    assert_eq!(
        (last.action.as_str(), last.reason.as_deref()),
        ("agent.reinstate", Some("false alarm"))
    );

    // Reinstating an active agent changes nothing and writes nothing.
    let before = reg.snapshot();
    reg.post(&format!("/v1/agents/{id}/reinstate"), &reg.admin, json!({}))
        .await
        .expect(200);
    assert_eq!(reg.snapshot(), before);
}

#[tokio::test]
async fn every_change_writes_an_audit_event_with_actor_and_reason() {
    let reg = Registry::start().await;
    let id = reg.register("audited", Some(&reg.owner.email), &[]).await;
    let scope = "s3.finance-reports/2026:write";
    let steps: Vec<(&str, String, Option<Value>, &Member)> = vec![
        (
            "POST",
            format!("/v1/agents/{id}/grants"),
            // Owners now request scopes; an admin who does not own the agent grants low ones.
            Some(json!({"scope": scope, "justification": "quarter close"})),
            &reg.admin,
        ),
        (
            "PUT",
            format!("/v1/agents/{id}/owner"),
            Some(json!({"owner": reg.other.email, "reason": "team move"})),
            &reg.admin,
        ),
        (
            "POST",
            format!("/v1/agents/{id}/revoke"),
            Some(json!({"reason": "INC-1"})),
            &reg.responder,
        ),
        (
            "POST",
            format!("/v1/agents/{id}/reinstate"),
            Some(json!({"reason": "fixed"})),
            &reg.admin,
        ),
        (
            "DELETE",
            // A scope with a slash travels percent-encoded in the path.
            format!("/v1/agents/{id}/grants/s3.finance-reports%2F2026:write"),
            None,
            &reg.other,
        ),
        (
            "POST",
            format!("/v1/agents/{id}/decommission"),
            Some(json!({"reason": "retired"})),
            &reg.other,
        ),
    ];
    for (method, path, body, who) in &steps {
        let reply = reg
            .call(method, path, Some(&who.token), body.as_ref())
            .await;
        assert!(
            (200..300).contains(&reply.status),
            "{method} {path}: {reply:?}"
        );
    }
    let events = audit_of(&reg, &id).await;
    let seen: Vec<(&str, &str, Option<&str>)> = events
        .iter()
        .map(|e| (e.action.as_str(), e.actor.id.as_str(), e.reason.as_deref()))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("agent.register", "admin@example.com", None),
            ("grant.add", "admin@example.com", Some("quarter close")),
            ("agent.owner.set", "admin@example.com", Some("team move")),
            ("agent.revoke", "responder@example.com", Some("INC-1")),
            ("agent.reinstate", "admin@example.com", Some("fixed")),
            ("grant.remove", "other@example.com", None),
            ("agent.decommission", "other@example.com", Some("retired")),
        ]
    );
    assert!(events.iter().all(|e| e.actor.kind.as_str() == "human"));
    assert_eq!(events[1].details["scope"], json!(scope));
    assert_eq!(events[5].details["scope"], json!(scope));
    assert_eq!(
        events[2].details,
        json!({"before": "owner@example.com", "after": "other@example.com"})
    );

    // People and tokens are audited too.
    let people = reg
        .get(
            "/v1/audit?action=person.&actor=admin@example.com",
            &reg.auditor,
        )
        .await;
    let people: Vec<AuditEvent> =
        serde_json::from_value(people.expect(200)["events"].clone()).unwrap();
    assert_eq!(people.len(), 4, "four people created through the API");
    assert!(people.iter().all(|e| e.action == "person.create"));
    let tokens = reg
        .get(
            "/v1/audit?action=invitation.issue&actor=admin@example.com",
            &reg.auditor,
        )
        .await;
    let tokens = tokens.expect(200)["events"].as_array().unwrap().len();
    assert_eq!(
        tokens, 4,
        "one invitation issued for each person made through the API"
    );
}

#[tokio::test]
async fn the_audit_chain_verifies_on_the_server_and_from_its_pages() {
    let reg = Registry::start().await;
    for i in 0..5 {
        let id = reg
            .register(&format!("chain-{i}"), None, &["crm.orders:read"])
            .await;
        reg.post(&format!("/v1/agents/{id}/revoke"), &reg.admin, json!({}))
            .await
            .expect(200);
    }
    let verified = reg.get("/v1/audit/verify", &reg.auditor).await;
    let verified = verified.expect(200).clone();
    let count = reg.audit_count();
    assert_eq!(verified["ok"], json!(true), "{verified}");
    assert_eq!(verified["events_checked"], json!(count));
    assert_eq!(verified["head_seq"], json!(count));
    assert!(verified["first_broken"].is_null());

    // A client can check the same chain itself from the pages it reads.
    let mut verifier = ChainVerifier::default();
    let mut after = 0;
    for _ in 0..MAX_PAGES {
        let page = reg
            .get(&format!("/v1/audit?after={after}&limit=7"), &reg.auditor)
            .await;
        let page = page.expect(200).clone();
        let events: Vec<AuditEvent> = serde_json::from_value(page["events"].clone()).unwrap();
        for e in &events {
            verifier.check(e).expect("every link holds");
        }
        match page["next"].as_i64() {
            Some(n) => after = n,
            None => break,
        }
    }
    assert_eq!(verifier.checked as i64, count);
    assert_eq!(json!(verifier.last_hash), verified["head_hash"]);
}

#[tokio::test]
async fn notes_are_appended_to_the_audit_log() {
    let reg = Registry::start().await;
    let id = reg.register("noted", Some(&reg.owner.email), &[]).await;
    let revoked = reg
        .post(&format!("/v1/agents/{id}/revoke"), &reg.owner, json!({}))
        .await;
    let seq = revoked.expect(200)["audit_seq"].as_i64().unwrap();

    let note = reg
        .post(
            &format!("/v1/audit/{seq}/notes"),
            &reg.owner,
            json!({"text": "INC-4821"}),
        )
        .await;
    let note_seq = note
        .expect(201)
        .as_i64()
        .expect("the note's sequence number");
    assert_eq!(note_seq, seq + 1);
    let events = audit_of(&reg, &id).await;
    let note = events
        .iter()
        .find(|e| e.seq == note_seq)
        .expect("the note event");
    assert_eq!(note.action, "audit.note");
    assert_eq!(note.actor.id, reg.owner.email);
    assert_eq!(note.reason.as_deref(), Some("INC-4821"));
    assert_eq!(note.details, json!({"note_on": seq}));

    let before = reg.snapshot();
    for (path, body, who, status, code) in [
        (
            format!("/v1/audit/{seq}/notes"),
            json!({"text": ""}),
            &reg.owner,
            422,
            "invalid_text",
        ),
        (
            format!("/v1/audit/{seq}/notes"),
            json!({"text": "   "}),
            &reg.admin,
            422,
            "invalid_text",
        ),
        (
            format!("/v1/audit/{seq}/notes"),
            json!({"text": "a\u{1b}[2Jb"}),
            &reg.admin,
            422,
            "invalid_text",
        ),
        (
            format!("/v1/audit/{seq}/notes"),
            json!({"text": "x".repeat(1001)}),
            &reg.admin,
            422,
            "invalid_text",
        ),
        (
            "/v1/audit/999999/notes".to_string(),
            json!({"text": "x"}),
            &reg.admin,
            404,
            "not_found",
        ),
        (
            "/v1/audit/999999/notes".to_string(),
            json!({"text": "x"}),
            &reg.owner,
            404,
            "not_found",
        ),
        (
            "/v1/audit/0/notes".to_string(),
            json!({"text": "x"}),
            &reg.admin,
            404,
            "not_found",
        ),
        (
            "/v1/audit/-1/notes".to_string(),
            json!({"text": "x"}),
            &reg.owner,
            404,
            "not_found",
        ),
    ] {
        let reply = reg.post(&path, who, body.clone()).await;
        assert_eq!(
            (reply.status, reply.code()),
            (status, code),
            "{path} {body}: {reply:?}"
        );
    }
    assert_eq!(reg.snapshot(), before, "a refused note wrote something");
}

#[tokio::test]
async fn a_person_who_leaves_loses_their_tokens_for_good() {
    let reg = Registry::start().await;
    let leaver = reg.add_person("leaver@example.com", &["responder"]).await;
    reg.get("/v1/me", &leaver).await.expect(200);
    let patch = |active: bool| {
        let reg = &reg;
        async move {
            let body = json!({"active": active});
            reg.call(
                "PATCH",
                "/v1/people/leaver@example.com",
                Some(&reg.admin.token),
                Some(&body),
            )
            .await
        }
    };
    patch(false).await.expect(200);
    let refused = reg.get("/v1/me", &leaver).await;
    assert_eq!((refused.status, refused.code()), (401, "person_inactive"));
    let event = reg
        .get("/v1/audit?action=person.deactivate", &reg.auditor)
        .await;
    let event = &event.expect(200)["events"][0];
    assert_eq!(event["target"], json!("leaver@example.com"));
    assert_eq!(event["details"]["tokens_revoked"], json!(1));
    // A token cannot be issued to someone who has left.
    let issue = reg
        .post(
            "/v1/people/leaver@example.com/tokens",
            &reg.admin,
            json!({}),
        )
        .await;
    assert_eq!((issue.status, issue.code()), (409, "conflict"));

    // Coming back does not revive the old token; a new one works.
    patch(true).await.expect(200);
    let old = reg.get("/v1/me", &leaver).await;
    assert_eq!((old.status, old.code()), (401, "token_revoked"));
    let issued = reg
        .post(
            "/v1/people/leaver@example.com/tokens",
            &reg.admin,
            json!({}),
        )
        .await;
    let invitation = issued.expect(201)["token"].as_str().unwrap().to_string();
    let fresh = Member {
        email: leaver.email.clone(),
        token: reg.redeem(&invitation).await,
    };
    let me = reg.get("/v1/me", &fresh).await;
    assert_eq!(me.expect(200)["person"]["roles"], json!(["responder"]));
}

/// `/v1/me` says what the caller may do and an agent's detail what they may do to it now; each
/// answer agrees with what the registry then does (the console reads these, never its own rules).
#[tokio::test]
async fn me_and_the_detail_say_what_the_caller_may_do_and_the_registry_agrees() {
    let reg = Registry::start().await;
    let may = |reply: &Value| reply["may"].clone();
    let me = |who: &Member| {
        let reg = &reg;
        let who = who.clone();
        async move { may(reg.get("/v1/me", &who).await.expect(200)) }
    };
    let admin = me(&reg.admin).await;
    assert_eq!(admin["set_owner"], json!("all"));
    assert_eq!(admin["reinstate"], json!("all"));
    assert_eq!(admin["administer_campaigns"], json!(true));
    let responder = me(&reg.responder).await;
    assert_eq!(responder["revoke"], json!("all"));
    assert_eq!(responder["reinstate"], json!("all"));
    assert_eq!(responder["set_owner"], json!("none"));
    assert_eq!(responder["decommission"], json!("owned"));
    let auditor = me(&reg.auditor).await;
    assert_eq!(auditor["revoke"], json!("owned"));
    assert_eq!(auditor["read_all_reviews"], json!(true));
    assert_eq!(auditor["administer_campaigns"], json!(false));
    let owner = me(&reg.owner).await;
    assert_eq!(owner["revoke"], json!("owned"));
    assert_eq!(owner["reinstate"], json!("none"));
    assert_eq!(owner["set_owner"], json!("none"));
    assert_eq!(owner["read_audit"], json!(false));

    // The owner's own agent, suspended: they may revoke and decommission it, not reinstate it
    // (undoing a brake someone else may have pulled is a responder's call).
    let mine = reg.register("owned-bot", Some(&reg.owner.email), &[]).await;
    reg.post(&format!("/v1/agents/{mine}/revoke"), &reg.admin, json!({}))
        .await
        .expect(200);
    let detail = reg.get(&format!("/v1/agents/{mine}"), &reg.owner).await;
    let d = may(detail.expect(200));
    assert_eq!(
        d,
        json!({"revoke": true, "reinstate": false, "decommission": true, "set_owner": false})
    );
    let refused = reg
        .post(
            &format!("/v1/agents/{mine}/reinstate"),
            &reg.owner,
            json!({}),
        )
        .await;
    assert_eq!(refused.status, 403, "the detail said no: so does the route");
    // A responder may reinstate it: it is suspended.
    let d = may(reg
        .get(&format!("/v1/agents/{mine}"), &reg.responder)
        .await
        .expect(200));
    assert_eq!(d["reinstate"], json!(true));
    assert_eq!(d["set_owner"], json!(false));
    reg.post(
        &format!("/v1/agents/{mine}/reinstate"),
        &reg.responder,
        json!({}),
    )
    .await
    .expect(200);
    // Active again: nothing to reinstate.
    let d = may(reg
        .get(&format!("/v1/agents/{mine}"), &reg.responder)
        .await
        .expect(200));
    assert_eq!(d["reinstate"], json!(false));

    // Someone else's agent: the auditor reads it, may do nothing to it, and is refused.
    let theirs = reg.register("their-bot", Some(&reg.other.email), &[]).await;
    let d = may(reg
        .get(&format!("/v1/agents/{theirs}"), &reg.auditor)
        .await
        .expect(200));
    assert_eq!(
        d,
        json!({"revoke": false, "reinstate": false, "decommission": false, "set_owner": false})
    );
    let refused = reg
        .post(
            &format!("/v1/agents/{theirs}/revoke"),
            &reg.auditor,
            json!({}),
        )
        .await;
    assert_eq!(refused.status, 403);
    // The owner cannot even read it (no `may` to leak, nor that it exists).
    let hidden = reg.get(&format!("/v1/agents/{theirs}"), &reg.owner).await;
    assert_eq!(hidden.status, 404);

    // Decommissioned: nothing, even for the admin.
    reg.post(
        &format!("/v1/agents/{theirs}/decommission"),
        &reg.admin,
        json!({}),
    )
    .await
    .expect(200);
    let d = may(reg
        .get(&format!("/v1/agents/{theirs}"), &reg.admin)
        .await
        .expect(200));
    assert_eq!(
        d,
        json!({"revoke": false, "reinstate": false, "decommission": false, "set_owner": false})
    );
}
