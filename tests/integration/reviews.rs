//! Access reviews against a real registry on 127.0.0.1:0 over a SQLite file in a tempdir:
//! campaigns, decision rights, reassignment, changed minds, justification rules, close with
//! each no-response outcome, reminders to a real local webhook receiver, and the export.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use steward::client::{Client, ClientError, Secret};
use steward::model::api::{AuditQuery, CreatePerson, IssueToken, UpdatePerson};
use steward::model::review::{
    CampaignFilter, CampaignQuery, CampaignStatus, Change, CreateCampaign, DecideItem, Decision,
    ExportFormat, ExportRow, JustificationPolicy, NoResponse, QueueQuery, ReassignItems,
    Recurrence, ReminderMessage, ReminderQuery, ReminderSchedule, ReminderStatus, ReviewItem,
    ReviewItemQuery, ScopeMarker, Usage, Verdict,
};
use steward::model::{Actor, Agent, AgentKind, AgentSource, AgentStatus, Grant, Role};
use steward::registry;
use steward::registry::reviews::{RetryPolicy, ReviewScheduler};
use steward::registry::store::prelude::*;
use steward::registry::store::{SeedAgent, SeedBatch, SqliteStore};

const ADMIN: &str = "admin@example.com";
const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";
const CAROL: &str = "carol@example.com";
const AUDITOR: &str = "audrey@example.com";
const FALLBACK: &str = "sec@example.com";

struct Registry {
    store: Arc<SqliteStore>,
    url: String,
    clients: BTreeMap<&'static str, Client>,
    tokens: BTreeMap<&'static str, String>,
    /// Stops the server when dropped.
    _served: support::Served,
}

impl Registry {
    fn as_(&self, who: &str) -> &Client {
        &self.clients[who]
    }

    fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }
}

fn system() -> Actor {
    Actor::system("test")
}

/// A registry with an admin, three owners (Carol leaves), an auditor and a fallback reviewer.
async fn start() -> Registry {
    let served = support::Launch::new().without_catalogue().serve().await;
    let store = served.store.clone();
    let mut tokens = BTreeMap::new();
    tokens.insert(ADMIN, served.admin.token.clone());
    for (email, roles) in [
        (ALICE, vec![]),
        (BOB, vec![]),
        (CAROL, vec![]),
        (AUDITOR, vec![Role::Auditor]),
        (FALLBACK, vec![]),
    ] {
        store
            .create_person(
                &system(),
                &CreatePerson {
                    email: email.into(),
                    display_name: email.split('@').next().unwrap().into(),
                    roles,
                    manager: None,
                    team: None,
                },
            )
            .unwrap();
        let token = registry::service::api_tokens::issue_token_for(
            store.as_ref(),
            &system(),
            email,
            &IssueToken::default(),
        )
        .unwrap();
        tokens.insert(email, token.token);
    }
    let url = served.url.clone();
    let clients = tokens
        .iter()
        .map(|(who, token)| (*who, Client::new(&url, Some(Secret::new(token))).unwrap()))
        .collect();
    Registry {
        store,
        url,
        clients,
        tokens,
        _served: served,
    }
}

fn days_ago(n: i64) -> DateTime<Utc> {
    Utc::now() - Duration::days(n)
}

/// A grant granted `granted` days ago, last used `used` days ago, last certified `certified`
/// days ago.
fn grant(scope: &str, granted: i64, used: Option<i64>, certified: Option<i64>) -> Grant {
    Grant {
        scope: scope.into(),
        granted_by: "granter@example.com".into(),
        granted_at: days_ago(granted),
        expires_at: None,
        justification: Some("seeded".into()),
        last_used_at: used.map(days_ago),
        last_certified_at: certified.map(days_ago),
    }
}

struct AgentSpec<'a> {
    id: &'a str,
    owner: Option<&'a str>,
    team: &'a str,
    status: AgentStatus,
    flags: &'a [&'a str],
    grants: Vec<Grant>,
}

fn spec<'a>(id: &'a str, owner: Option<&'a str>, grants: Vec<Grant>) -> AgentSpec<'a> {
    AgentSpec {
        id,
        owner,
        team: "payments",
        status: AgentStatus::Active,
        flags: &[],
        grants,
    }
}

fn seed(store: &SqliteStore, specs: Vec<AgentSpec<'_>>) {
    let agents = specs
        .into_iter()
        .map(|s| SeedAgent {
            agent: Agent {
                id: s.id.into(),
                name: format!("{}-bot", s.id),
                description: String::new(),
                kind: AgentKind::Agent,
                parent_id: None,
                owner: s.owner.map(str::to_string),
                owner_name: None,
                team: s.team.into(),
                environment: "production".into(),
                status: s.status,
                source: AgentSource::Registered,
                created_at: days_ago(400),
                last_seen_at: None,
                static_secret: false,
                flags: s.flags.iter().map(|f| f.to_string()).collect(),
                grants: s.grants,
                change_seq: 0,
                owner_left_at: None,
            },
            credentials: Vec::new(),
        })
        .collect();
    store
        .seed(&SeedBatch {
            people: Vec::new(),
            agents,
        })
        .unwrap();
}

fn campaign_request(name: &str, no_response: NoResponse) -> CreateCampaign {
    CreateCampaign {
        name: name.into(),
        filter: CampaignFilter::default(),
        starts_at: None,
        due_at: Utc::now() + Duration::days(30),
        grace_days: None,
        recurrence: Recurrence::None,
        fallback_reviewer: Some(FALLBACK.into()),
        reminders: ReminderSchedule::default(),
        no_response,
        justification: JustificationPolicy::default(),
        lookback_days: None,
    }
}

async fn all_items(r: &Registry, campaign: &str) -> Vec<ReviewItem> {
    let mut items = Vec::new();
    let mut after = None;
    loop {
        let page = r
            .as_(ADMIN)
            .campaign_items(
                campaign,
                &ReviewItemQuery {
                    after,
                    limit: Some(2),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        items.extend(page.items);
        match page.next {
            Some(n) => after = Some(n),
            None => return items,
        }
    }
}

fn item<'a>(items: &'a [ReviewItem], agent: &str, scope: &str) -> &'a ReviewItem {
    items
        .iter()
        .find(|i| i.agent_id == agent && i.scope == scope)
        .unwrap_or_else(|| panic!("no item for {agent} {scope}"))
}

fn status_of(e: ClientError) -> (u16, String) {
    match e {
        ClientError::Api { status, code, .. } => (status, code),
        other => panic!("expected an API refusal, got {other}"),
    }
}

async fn scopes_of(r: &Registry, agent: &str) -> BTreeSet<String> {
    r.as_(ADMIN)
        .agent(agent)
        .await
        .unwrap()
        .agent
        .grants
        .into_iter()
        .map(|g| g.scope)
        .collect()
}

async fn audit_actions(
    r: &Registry,
    target: &str,
) -> Vec<(String, serde_json::Value, Option<String>)> {
    r.as_(ADMIN)
        .audit(&AuditQuery {
            target: Some(target.into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .events
        .into_iter()
        .map(|e| (e.action, e.details, e.reason))
        .collect()
}

/// The standard estate: Alice's agent with used, unused and freshly added scopes; Bob's;
/// a grantless agent; a suspended one; an unowned one; one whose owner (Carol) has left; and
/// one in another team.
async fn standard() -> Registry {
    let r = start().await;
    seed(
        &r.store,
        vec![
            spec(
                "ag_alice",
                Some(ALICE),
                vec![
                    // used yesterday, certified 90 days ago: used and unchanged.
                    grant("crm.orders:read", 300, Some(1), Some(90)),
                    // unused for 60 days, certified 90 days ago.
                    grant("crm.orders:write", 300, Some(60), Some(90)),
                    // added 10 days ago (after the last certification), used 2 days ago.
                    grant("mail:send", 10, Some(2), None),
                ],
            ),
            spec(
                "ag_bob",
                Some(BOB),
                vec![
                    grant("s3.reports:read", 200, Some(3), Some(100)),
                    grant("s3.reports:write", 200, None, Some(100)),
                ],
            ),
            spec("ag_empty", Some(ALICE), vec![]),
            AgentSpec {
                status: AgentStatus::Suspended,
                ..spec(
                    "ag_suspended",
                    Some(ALICE),
                    vec![grant("x:read", 50, None, None)],
                )
            },
            spec(
                "ag_unowned",
                None,
                vec![grant("wiki:read", 100, Some(5), None)],
            ),
            spec(
                "ag_carol",
                Some(CAROL),
                vec![grant("hr:read", 100, Some(40), Some(95))],
            ),
            AgentSpec {
                team: "search",
                flags: &["rate-spike", "night-activity"],
                ..spec(
                    "ag_search",
                    Some(ALICE),
                    vec![grant("index:write", 100, Some(1), Some(95))],
                )
            },
        ],
    );
    r.store
        .update_person(
            &system(),
            CAROL,
            &UpdatePerson {
                active: Some(false),
                ..Default::default()
            },
        )
        .unwrap();
    r
}

#[tokio::test]
async fn a_campaign_snapshots_one_item_per_agent_and_grant() {
    let r = standard().await;
    // Only admins create campaigns.
    let refused = r
        .as_(ALICE)
        .create_campaign(&campaign_request("mine", NoResponse::Keep))
        .await
        .unwrap_err();
    assert_eq!(status_of(refused).0, 403);

    let c = r
        .as_(ADMIN)
        .create_campaign(&campaign_request(
            "2026-Q4 agent certification",
            NoResponse::Keep,
        ))
        .await
        .unwrap();
    assert_eq!(c.status, CampaignStatus::Open);
    assert_eq!(c.lookback_days, 30);
    let items = all_items(&r, &c.id).await;
    let per_agent: BTreeMap<&str, usize> = items.iter().fold(BTreeMap::new(), |mut m, i| {
        *m.entry(i.agent_id.as_str()).or_default() += 1;
        m
    });
    assert_eq!(
        per_agent,
        BTreeMap::from([
            ("ag_alice", 3),
            ("ag_bob", 2),
            ("ag_carol", 1),
            ("ag_search", 1),
            ("ag_unowned", 1)
        ]),
        "no items for the grantless or the suspended agent"
    );
    assert_eq!(c.progress.total, 8);
    assert_eq!(c.progress.pending, 8);

    // Reviewers: the owner, or the fallback for unowned agents and owners who left.
    assert_eq!(item(&items, "ag_alice", "mail:send").reviewer, ALICE);
    assert_eq!(item(&items, "ag_unowned", "wiki:read").reviewer, FALLBACK);
    assert_eq!(item(&items, "ag_carol", "hr:read").reviewer, FALLBACK);
    assert_eq!(
        item(&items, "ag_carol", "hr:read").owner.as_deref(),
        Some(CAROL)
    );

    // Diff markers and recommendations.
    let used = item(&items, "ag_alice", "crm.orders:read");
    assert_eq!(used.diff.usage, Usage::Used);
    assert_eq!(used.diff.change, Change::Unchanged);
    assert_eq!(used.diff.markers, vec![ScopeMarker::Used]);
    assert_eq!(used.diff.recommendation.action, Verdict::Certify);
    assert!(used.bulk_certifiable);
    let unused = item(&items, "ag_alice", "crm.orders:write");
    assert_eq!(unused.diff.usage, Usage::Unused);
    assert_eq!(unused.diff.idle_days, 60);
    assert_eq!(unused.diff.recommendation.action, Verdict::Revoke);
    assert!(
        unused
            .diff
            .recommendation
            .reason
            .contains("unused for 60 days"),
        "{}",
        unused.diff.recommendation.reason
    );
    assert!(unused.justification_required.certify);
    assert!(!unused.justification_required.revoke);
    let added = item(&items, "ag_alice", "mail:send");
    assert_eq!(added.diff.change, Change::Added);
    assert_eq!(added.diff.granted_by, "granter@example.com");
    assert_eq!(
        added.diff.markers,
        vec![ScopeMarker::Used, ScopeMarker::Added]
    );
    assert!(!added.bulk_certifiable);
    let never = item(&items, "ag_unowned", "wiki:read");
    assert_eq!(never.diff.change, Change::NeverCertified);

    // The snapshot (computed in SQL) agrees with the live diff (computed in Rust).
    for agent in ["ag_alice", "ag_bob", "ag_carol", "ag_search", "ag_unowned"] {
        let live = r.as_(ADMIN).scope_diff(agent, None).await.unwrap();
        for entry in live.scopes {
            let snap = item(&items, agent, &entry.scope);
            assert_eq!(
                snap.diff.usage, entry.state.usage,
                "{agent} {}",
                entry.scope
            );
            assert_eq!(
                snap.diff.idle_days, entry.state.idle_days,
                "{agent} {}",
                entry.scope
            );
            assert_eq!(
                snap.diff.change, entry.state.change,
                "{agent} {}",
                entry.scope
            );
            assert_eq!(snap.diff.recommendation, entry.state.recommendation);
        }
    }

    // A team filter narrows the agents; a filter matching nothing is refused.
    let mut search = campaign_request("search only", NoResponse::Keep);
    search.filter.team = Some("search".into());
    let c2 = r.as_(ADMIN).create_campaign(&search).await.unwrap();
    assert_eq!(c2.progress.total, 1);
    let mut nothing = campaign_request("nobody", NoResponse::Keep);
    nothing.filter.team = Some("no-such-team".into());
    let refused = r.as_(ADMIN).create_campaign(&nothing).await.unwrap_err();
    assert_eq!(status_of(refused), (422, "empty_campaign".into()));
    // A due date in the past is refused.
    let mut past = campaign_request("past", NoResponse::Keep);
    past.due_at = Utc::now() - Duration::days(1);
    assert_eq!(
        status_of(r.as_(ADMIN).create_campaign(&past).await.unwrap_err()).0,
        422
    );

    // Listing and progress per reviewer and team.
    let list = r
        .as_(BOB)
        .campaigns(&CampaignQuery::default())
        .await
        .unwrap();
    assert_eq!(list.len(), 2);
    let detail = r.as_(ADMIN).campaign(&c.id).await.unwrap();
    let reviewers: BTreeMap<String, u64> = detail
        .by_reviewer
        .iter()
        .map(|p| (p.reviewer.clone(), p.progress.total))
        .collect();
    assert_eq!(
        reviewers,
        BTreeMap::from([(ALICE.into(), 4), (BOB.into(), 2), (FALLBACK.into(), 2)])
    );
    let teams: BTreeMap<String, u64> = detail
        .by_team
        .iter()
        .map(|p| (p.team.clone(), p.progress.total))
        .collect();
    assert_eq!(
        teams,
        BTreeMap::from([("payments".into(), 7), ("search".into(), 1)])
    );
    assert_eq!(detail.pending_recommended_revoke, 3);
    // An owner sees their own line only.
    let bobs = r.as_(BOB).campaign(&c.id).await.unwrap();
    assert_eq!(bobs.by_reviewer.len(), 1);
    assert_eq!(bobs.by_reviewer[0].reviewer, BOB);
    assert!(bobs.by_team.is_empty());

    // Creation is audited.
    let events = audit_actions(&r, &c.id).await;
    assert_eq!(events[0].0, "campaign.create");
    assert_eq!(events[1].0, "campaign.start");
    assert_eq!(events[1].1["items"], 8);
}

#[tokio::test]
async fn decision_rights_follow_the_reviewer() {
    let r = standard().await;
    let c = r
        .as_(ADMIN)
        .create_campaign(&campaign_request("rights", NoResponse::Keep))
        .await
        .unwrap();
    let items = all_items(&r, &c.id).await;
    let alices = item(&items, "ag_alice", "crm.orders:read").id;
    let certify = DecideItem {
        decision: Verdict::Certify,
        justification: None,
    };
    // Another owner may not decide Alice's item, nor may an auditor.
    for who in [BOB, AUDITOR] {
        let refused = r.as_(who).decide(alices, &certify).await.unwrap_err();
        assert_eq!(status_of(refused).0, 403, "{who}");
    }
    // Only admins and auditors read every item.
    assert_eq!(
        status_of(
            r.as_(ALICE)
                .campaign_items(&c.id, &ReviewItemQuery::default())
                .await
                .unwrap_err()
        )
        .0,
        403
    );
    assert!(
        !r.as_(AUDITOR)
            .campaign_items(&c.id, &ReviewItemQuery::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    // Reading one item: its reviewer yes, another owner no.
    r.as_(ALICE).review_item(alices).await.unwrap();
    assert_eq!(
        status_of(r.as_(BOB).review_item(alices).await.unwrap_err()).0,
        403
    );

    // The reviewer decides; certify stamps the grant.
    let before = Utc::now();
    let out = r.as_(ALICE).decide(alices, &certify).await.unwrap();
    assert!(out.changed);
    assert_eq!(out.item.decision, Decision::Certify);
    assert_eq!(out.item.decided_by.as_deref(), Some(ALICE));
    assert!(out.item.applied);
    let agent = r.as_(ALICE).agent("ag_alice").await.unwrap().agent;
    let stamped = agent
        .grants
        .iter()
        .find(|g| g.scope == "crm.orders:read")
        .unwrap()
        .last_certified_at
        .unwrap();
    assert!(stamped >= before - Duration::seconds(1));

    // An admin may decide any item.
    let bobs = item(&items, "ag_bob", "s3.reports:read").id;
    let out = r.as_(ADMIN).decide(bobs, &certify).await.unwrap();
    assert_eq!(out.item.decided_by.as_deref(), Some(ADMIN));

    // The fallback reviewer decides the unowned agent's item.
    let unowned = item(&items, "ag_unowned", "wiki:read").id;
    r.as_(FALLBACK).decide(unowned, &certify).await.unwrap();
    assert_eq!(
        status_of(r.as_(ALICE).decide(unowned, &certify).await.unwrap_err()).0,
        403
    );
    // An unknown item is a 404.
    assert_eq!(
        status_of(r.as_(ADMIN).decide(999_999, &certify).await.unwrap_err()).0,
        404
    );
}

#[tokio::test]
async fn admins_reassign_items() {
    let r = standard().await;
    let c = r
        .as_(ADMIN)
        .create_campaign(&campaign_request("reassign", NoResponse::Keep))
        .await
        .unwrap();
    let items = all_items(&r, &c.id).await;
    let reassign = ReassignItems {
        reviewer: BOB.into(),
        reason: Some("Alice is on leave".into()),
    };
    // Not for owners.
    assert_eq!(
        status_of(
            r.as_(ALICE)
                .reassign_agent(&c.id, "ag_alice", &reassign)
                .await
                .unwrap_err()
        )
        .0,
        403
    );
    let out = r
        .as_(ADMIN)
        .reassign_agent(&c.id, "ag_alice", &reassign)
        .await
        .unwrap();
    assert_eq!(out.reassigned.len(), 3);
    let id = item(&items, "ag_alice", "crm.orders:read").id;
    let certify = DecideItem {
        decision: Verdict::Certify,
        justification: None,
    };
    assert_eq!(
        status_of(r.as_(ALICE).decide(id, &certify).await.unwrap_err()).0,
        403
    );
    let decided = r.as_(BOB).decide(id, &certify).await.unwrap();
    let history = &decided.item.history;
    assert_eq!(history[0].action, "reassign");
    assert_eq!(history[0].from_reviewer.as_deref(), Some(ALICE));
    assert_eq!(history[0].to_reviewer.as_deref(), Some(BOB));
    assert_eq!(history[1].action, "certify");
    // One item back to Alice.
    let back = r
        .as_(ADMIN)
        .reassign_item(
            item(&items, "ag_alice", "mail:send").id,
            &ReassignItems {
                reviewer: ALICE.into(),
                reason: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(back.reassigned.len(), 1);
    // Unknown and departed reviewers are refused.
    for (who, code) in [
        ("nobody@example.com", "unknown_reviewer"),
        (CAROL, "reviewer_inactive"),
    ] {
        let refused = r
            .as_(ADMIN)
            .reassign_agent(
                &c.id,
                "ag_bob",
                &ReassignItems {
                    reviewer: who.into(),
                    reason: None,
                },
            )
            .await
            .unwrap_err();
        assert_eq!(status_of(refused), (422, code.into()));
    }
    let events = audit_actions(&r, "ag_alice").await;
    assert!(
        events
            .iter()
            .any(|e| e.0 == "review.reassign" && e.2.as_deref() == Some("Alice is on leave"))
    );
}

#[tokio::test]
async fn a_changed_mind_is_recorded_and_repeats_change_nothing() {
    let r = standard().await;
    let c = r
        .as_(ADMIN)
        .create_campaign(&campaign_request("minds", NoResponse::Keep))
        .await
        .unwrap();
    let items = all_items(&r, &c.id).await;
    let id = item(&items, "ag_alice", "crm.orders:write").id; // unused: recommended revoke
    let revoke = DecideItem {
        decision: Verdict::Revoke,
        justification: None,
    };
    let out = r.as_(ALICE).decide(id, &revoke).await.unwrap();
    assert!(out.changed && out.grant_removed);
    assert!(!scopes_of(&r, "ag_alice").await.contains("crm.orders:write"));
    // The same decision again changes nothing.
    let again = r.as_(ALICE).decide(id, &revoke).await.unwrap();
    assert!(!again.changed && !again.grant_removed);
    assert_eq!(again.item.history.len(), 1);
    // Changing her mind: certify needs a justification (unused), and puts the grant back.
    let refused = r
        .as_(ALICE)
        .decide(
            id,
            &DecideItem {
                decision: Verdict::Certify,
                justification: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(status_of(refused), (422, "justification_required".into()));
    let back = r
        .as_(ALICE)
        .decide(
            id,
            &DecideItem {
                decision: Verdict::Certify,
                justification: Some("month-end batch job needs it".into()),
            },
        )
        .await
        .unwrap();
    assert!(back.changed && back.grant_restored);
    assert_eq!(back.previous, Decision::Revoke);
    assert_eq!(back.item.decision, Decision::Certify);
    let restored = r.as_(ADMIN).agent("ag_alice").await.unwrap().agent;
    let g = restored
        .grants
        .iter()
        .find(|g| g.scope == "crm.orders:write")
        .expect("grant restored");
    assert_eq!(g.granted_by, "granter@example.com");
    assert!(g.last_certified_at.is_some());
    let actions: Vec<&str> = back
        .item
        .history
        .iter()
        .map(|h| h.action.as_str())
        .collect();
    assert_eq!(actions, ["revoke", "certify"]);
    // Audit: the revoke's grant removal, the restore, and both decisions with the previous one.
    let events = audit_actions(&r, "ag_alice").await;
    let decide: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e.0 == "review.decide")
        .map(|e| &e.1)
        .collect();
    assert_eq!(decide.len(), 2);
    assert_eq!(decide[1]["previous"], "revoke");
    assert_eq!(decide[1]["decision"], "certify");
    let removal = events
        .iter()
        .find(|e| e.0 == "grant.remove")
        .expect("grant.remove audited");
    assert!(removal.2.as_deref().unwrap().contains(&c.id));
    assert!(
        events
            .iter()
            .any(|e| e.0 == "grant.add" && e.1["restored"] == true)
    );
    // The export counts the changed mind.
    let rows = export_json(&r, ADMIN, &c.id).await;
    let row = rows.iter().find(|row| row.item_id == id).unwrap();
    assert_eq!(row.changed_minds, 1);
    assert_eq!(
        row.justification.as_deref(),
        Some("month-end batch job needs it")
    );
}

#[tokio::test]
async fn justification_rules_follow_the_campaign_policy() {
    let r = standard().await;
    let c = r
        .as_(ADMIN)
        .create_campaign(&campaign_request("strict", NoResponse::Keep))
        .await
        .unwrap();
    let items = all_items(&r, &c.id).await;
    // Revoking a used scope (recommended certify) needs a justification.
    let used = item(&items, "ag_bob", "s3.reports:read").id;
    let refused = r
        .as_(BOB)
        .decide(
            used,
            &DecideItem {
                decision: Verdict::Revoke,
                justification: Some("   ".into()),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(status_of(refused), (422, "justification_required".into()));
    r.as_(BOB)
        .decide(
            used,
            &DecideItem {
                decision: Verdict::Revoke,
                justification: Some("moving to the new reports API".into()),
            },
        )
        .await
        .unwrap();
    // Repeating the decision without the justification changes nothing (and is no error).
    let repeat = r
        .as_(BOB)
        .decide(
            used,
            &DecideItem {
                decision: Verdict::Revoke,
                justification: None,
            },
        )
        .await
        .unwrap();
    assert!(!repeat.changed);
    assert_eq!(
        repeat.item.justification.as_deref(),
        Some("moving to the new reports API")
    );
    // A new justification for the same decision is recorded, not silently replaced.
    let reworded = r
        .as_(BOB)
        .decide(
            used,
            &DecideItem {
                decision: Verdict::Revoke,
                justification: Some("replaced by the reports API v2".into()),
            },
        )
        .await
        .unwrap();
    assert!(reworded.changed && !reworded.grant_removed);
    let texts: Vec<Option<&str>> = reworded
        .item
        .history
        .iter()
        .map(|h| h.justification.as_deref())
        .collect();
    assert_eq!(
        texts,
        [
            Some("moving to the new reports API"),
            Some("replaced by the reports API v2")
        ]
    );
    // Revoking an unused one (as recommended) needs none.
    let unused = item(&items, "ag_bob", "s3.reports:write").id;
    r.as_(BOB)
        .decide(
            unused,
            &DecideItem {
                decision: Verdict::Revoke,
                justification: None,
            },
        )
        .await
        .unwrap();
    // Control characters in a justification are refused.
    let bad = r
        .as_(ALICE)
        .decide(
            item(&items, "ag_alice", "crm.orders:read").id,
            &DecideItem {
                decision: Verdict::Certify,
                justification: Some("ok\u{1b}[2J".into()),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(status_of(bad), (422, "invalid_text".into()));

    // A campaign whose policy asks for nothing.
    let mut lenient = campaign_request("lenient", NoResponse::Keep);
    lenient.filter.owner = Some(ALICE.into());
    lenient.justification = JustificationPolicy {
        certify_unused: false,
        revoke_against_recommendation: false,
    };
    let c2 = r.as_(ADMIN).create_campaign(&lenient).await.unwrap();
    let items2 = all_items(&r, &c2.id).await;
    let unused2 = item(&items2, "ag_alice", "crm.orders:write");
    assert!(!unused2.justification_required.certify);
    r.as_(ALICE)
        .decide(
            unused2.id,
            &DecideItem {
                decision: Verdict::Certify,
                justification: None,
            },
        )
        .await
        .unwrap();
    r.as_(ALICE)
        .decide(
            item(&items2, "ag_alice", "mail:send").id,
            &DecideItem {
                decision: Verdict::Revoke,
                justification: None,
            },
        )
        .await
        .unwrap();
}

/// Closes a fresh standard campaign with `outcome` after Alice decided one item.
async fn close_with(
    outcome: NoResponse,
) -> (Registry, String, steward::model::review::CloseOutcome) {
    let r = standard().await;
    let c = r
        .as_(ADMIN)
        .create_campaign(&campaign_request("closing", outcome))
        .await
        .unwrap();
    let items = all_items(&r, &c.id).await;
    r.as_(ALICE)
        .decide(
            item(&items, "ag_alice", "crm.orders:read").id,
            &DecideItem {
                decision: Verdict::Certify,
                justification: None,
            },
        )
        .await
        .unwrap();
    // Only admins close.
    assert_eq!(
        status_of(r.as_(ALICE).close_campaign(&c.id).await.unwrap_err()).0,
        403
    );
    let out = r.as_(ADMIN).close_campaign(&c.id).await.unwrap();
    assert_eq!(out.no_response, outcome);
    assert_eq!(out.touched, 7);
    assert_eq!(out.campaign.status, CampaignStatus::Closed);
    assert_eq!(out.campaign.progress.pending, 0);
    // After close: decisions and a second close are refused.
    let late = r
        .as_(ALICE)
        .decide(
            item(&items, "ag_alice", "mail:send").id,
            &DecideItem {
                decision: Verdict::Certify,
                justification: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(status_of(late).0, 409);
    assert_eq!(
        status_of(r.as_(ADMIN).close_campaign(&c.id).await.unwrap_err()).0,
        409
    );
    // The decided item stayed as the reviewer left it.
    let after = all_items(&r, &c.id).await;
    let decided = item(&after, "ag_alice", "crm.orders:read");
    assert_eq!(decided.decision, Decision::Certify);
    assert_eq!(decided.decided_by.as_deref(), Some(ALICE));
    for i in after.iter().filter(|i| i.id != decided.id) {
        assert_eq!(i.decided_by.as_deref(), Some("system"), "{}", i.scope);
        assert!(i.applied);
    }
    let close_event = audit_actions(&r, &c.id).await.pop().unwrap();
    assert_eq!(close_event.0, "campaign.close");
    assert_eq!(close_event.1["touched"], 7);
    (r, c.id, out)
}

#[tokio::test]
async fn close_with_keep_leaves_grants_unstamped() {
    let (r, id, out) = close_with(NoResponse::Keep).await;
    assert_eq!((out.kept, out.revoked), (7, 0));
    assert_eq!(
        scopes_of(&r, "ag_alice").await,
        BTreeSet::from([
            "crm.orders:read".into(),
            "crm.orders:write".into(),
            "mail:send".into()
        ])
    );
    let agent = r.as_(ADMIN).agent("ag_alice").await.unwrap().agent;
    let mail = agent
        .grants
        .iter()
        .find(|g| g.scope == "mail:send")
        .unwrap();
    assert_eq!(mail.last_certified_at, None, "keep is not a certification");
    let items = all_items(&r, &id).await;
    assert_eq!(
        item(&items, "ag_alice", "mail:send").decision,
        Decision::Keep
    );
    assert!(
        !audit_actions(&r, "ag_alice")
            .await
            .iter()
            .any(|e| e.0 == "grant.remove")
    );
}

#[tokio::test]
async fn close_with_revoke_removes_every_undecided_grant() {
    let (r, _, out) = close_with(NoResponse::Revoke).await;
    assert_eq!((out.kept, out.revoked, out.already_gone), (0, 7, 0));
    assert_eq!(
        scopes_of(&r, "ag_alice").await,
        BTreeSet::from(["crm.orders:read".into()])
    );
    assert!(scopes_of(&r, "ag_bob").await.is_empty());
    assert!(scopes_of(&r, "ag_unowned").await.is_empty());
    // Untouched: the suspended agent was not in the campaign.
    assert_eq!(scopes_of(&r, "ag_suspended").await.len(), 1);
    let removals: Vec<_> = audit_actions(&r, "ag_bob")
        .await
        .into_iter()
        .filter(|e| e.0 == "grant.remove")
        .collect();
    assert_eq!(removals.len(), 2);
    assert_eq!(removals[0].1["decided_by"], "system");
    assert!(
        removals[0]
            .2
            .as_deref()
            .unwrap()
            .contains("no-response outcome is revoke")
    );
    // The removal shows in the agent's scope diff.
    let diff = r.as_(BOB).scope_diff("ag_bob", None).await.unwrap();
    let removed: BTreeSet<&str> = diff.removed.iter().map(|s| s.scope.as_str()).collect();
    assert_eq!(
        removed,
        BTreeSet::from(["s3.reports:read", "s3.reports:write"])
    );
    assert_eq!(diff.removed[0].removed_by, "steward-reviews");
}

#[tokio::test]
async fn close_with_recommendation_follows_each_item() {
    let (r, id, out) = close_with(NoResponse::Recommendation).await;
    // Recommended revoke (unused): crm.orders:write, s3.reports:write, hr:read.
    assert_eq!((out.kept, out.revoked), (4, 3));
    assert_eq!(
        scopes_of(&r, "ag_alice").await,
        BTreeSet::from(["crm.orders:read".into(), "mail:send".into()])
    );
    assert_eq!(
        scopes_of(&r, "ag_bob").await,
        BTreeSet::from(["s3.reports:read".into()])
    );
    assert!(scopes_of(&r, "ag_carol").await.is_empty());
    let items = all_items(&r, &id).await;
    assert_eq!(
        item(&items, "ag_bob", "s3.reports:read").decision,
        Decision::Keep
    );
    assert_eq!(
        item(&items, "ag_bob", "s3.reports:write").decision,
        Decision::Revoke
    );
}

#[tokio::test]
async fn closing_a_quarterly_campaign_schedules_the_next_quarter() {
    let r = standard().await;
    let mut req = campaign_request("2026-Q4 agent certification", NoResponse::Keep);
    req.recurrence = Recurrence::Quarterly;
    let c = r.as_(ADMIN).create_campaign(&req).await.unwrap();
    let out = r.as_(ADMIN).close_campaign(&c.id).await.unwrap();
    let next = out.next.expect("a next instance");
    assert_eq!(next.name, "2027-Q1 agent certification");
    assert_eq!(next.status, CampaignStatus::Scheduled);
    assert_eq!(next.series_id, c.id);
    assert_eq!(next.instance, 2);
    assert_eq!(next.previous_id.as_deref(), Some(c.id.as_str()));
    assert_eq!(
        next.due_at,
        c.due_at.checked_add_months(chrono::Months::new(3)).unwrap()
    );
    assert_eq!(out.campaign.next_id.as_deref(), Some(next.id.as_str()));
    // When its start comes, the scheduler opens it and snapshots the items.
    let scheduler = ReviewScheduler::new(r.store(), None).unwrap();
    assert!(
        scheduler
            .start_due_once(Utc::now())
            .await
            .unwrap()
            .is_empty()
    );
    let started = scheduler
        .start_due_once(next.starts_at + Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(started.len(), 1);
    assert_eq!(started[0].status, CampaignStatus::Open);
    assert_eq!(started[0].progress.total, 8);
}

#[tokio::test]
async fn the_scheduler_closes_campaigns_at_their_close_time() {
    let r = standard().await;
    let mut req = campaign_request("auto", NoResponse::Revoke);
    req.grace_days = Some(2);
    let c = r.as_(ADMIN).create_campaign(&req).await.unwrap();
    assert_eq!(c.closes_at, c.due_at + Duration::days(2));
    let scheduler = ReviewScheduler::new(r.store(), None).unwrap();
    // Overdue but within the grace days: still open.
    let report = scheduler.run_once(c.due_at + Duration::days(1)).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(report.closed.is_empty());
    let report = scheduler.run_once(c.closes_at + Duration::minutes(1)).await;
    assert_eq!(report.closed.len(), 1);
    assert_eq!(report.closed[0].touched, 8);
    assert_eq!(
        report.closed[0].campaign.closed_by.as_deref(),
        Some("steward-reviews")
    );
    assert!(scopes_of(&r, "ag_alice").await.is_empty());
}

#[tokio::test]
async fn bulk_certify_takes_only_used_and_unchanged_scopes() {
    let r = standard().await;
    let c = r
        .as_(ADMIN)
        .create_campaign(&campaign_request("bulk", NoResponse::Keep))
        .await
        .unwrap();
    // Not Bob's to certify.
    assert_eq!(
        status_of(
            r.as_(BOB)
                .certify_unchanged(&c.id, "ag_alice")
                .await
                .unwrap_err()
        )
        .0,
        403
    );
    let out = r
        .as_(ALICE)
        .certify_unchanged(&c.id, "ag_alice")
        .await
        .unwrap();
    let items = all_items(&r, &c.id).await;
    assert_eq!(
        out.certified,
        vec![item(&items, "ag_alice", "crm.orders:read").id]
    );
    assert_eq!(
        out.remaining, 2,
        "the unused and the added scope wait for a decision"
    );
    // Idempotent: nothing left to certify in bulk.
    let again = r
        .as_(ALICE)
        .certify_unchanged(&c.id, "ag_alice")
        .await
        .unwrap();
    assert!(again.certified.is_empty());
    assert_eq!(again.remaining, 2);
}

#[tokio::test]
async fn my_queue_groups_items_by_agent_in_due_and_risk_order() {
    let r = standard().await;
    let c = r
        .as_(ADMIN)
        .create_campaign(&campaign_request("queue", NoResponse::Recommendation))
        .await
        .unwrap();
    // Bob removes a grant of his agent outside the review: it shows as removed.
    r.as_(BOB)
        .remove_grant("ag_bob", "s3.reports:write")
        .await
        .unwrap();
    let q = r
        .as_(ALICE)
        .my_reviews(&QueueQuery::default())
        .await
        .unwrap();
    assert_eq!(q.reviewer, ALICE);
    assert_eq!(q.campaigns.len(), 1);
    assert_eq!(q.campaigns[0].id, c.id);
    assert_eq!(q.campaigns[0].progress.total, 4);
    assert_eq!(q.campaigns[0].days_until_due, 29);
    assert!(!q.campaigns[0].overdue);
    let agents: Vec<(&str, u32)> = q
        .agents
        .iter()
        .map(|a| (a.agent_id.as_str(), a.risk))
        .collect();
    // ag_search: two risk flags (6); ag_alice: one revoke recommendation + one added scope (2).
    assert_eq!(agents, [("ag_search", 6), ("ag_alice", 2)]);
    assert_eq!(q.agents[1].items.len(), 3);
    assert_eq!(q.total_agents, 2);
    assert_eq!(q.next_offset, None);
    // Paging.
    let page = r
        .as_(ALICE)
        .my_reviews(&QueueQuery {
            limit: Some(1),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.agents.len(), 1);
    assert_eq!(page.next_offset, Some(1));
    // Bob's queue shows the scope removed since the last certification.
    let bobs = r.as_(BOB).my_reviews(&QueueQuery::default()).await.unwrap();
    assert_eq!(bobs.agents.len(), 1);
    assert!(
        bobs.agents[0].removed.is_empty(),
        "an item of the review is not 'removed'"
    );
    let diff = r.as_(BOB).scope_diff("ag_bob", None).await.unwrap();
    assert_eq!(diff.removed.len(), 1);
    assert_eq!(diff.removed[0].removed_by, BOB);
    // Finished agents drop out with pending_only.
    r.as_(ALICE)
        .certify_unchanged(&c.id, "ag_search")
        .await
        .unwrap();
    let pending = r
        .as_(ALICE)
        .my_reviews(&QueueQuery {
            pending_only: Some(true),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(pending.agents.len(), 1);
    assert_eq!(pending.agents[0].agent_id, "ag_alice");
}

#[tokio::test]
async fn scope_diff_marks_drift_and_respects_read_rights() {
    let r = standard().await;
    let diff = r.as_(ALICE).scope_diff("ag_alice", Some(30)).await.unwrap();
    assert_eq!(diff.lookback_days, 30);
    assert!(diff.last_certified_at.is_some());
    let by_scope: BTreeMap<&str, &steward::model::review::ScopeState> = diff
        .scopes
        .iter()
        .map(|s| (s.scope.as_str(), &s.state))
        .collect();
    assert_eq!(by_scope["mail:send"].change, Change::Added);
    assert_eq!(by_scope["mail:send"].granted_by, "granter@example.com");
    assert_eq!(
        by_scope["crm.orders:write"].markers,
        vec![ScopeMarker::Unused]
    );
    assert_eq!(
        by_scope["crm.orders:write"].recommendation.action,
        Verdict::Revoke
    );
    // A longer lookback turns the 60-day-old use into "used".
    let wide = r.as_(ALICE).scope_diff("ag_alice", Some(90)).await.unwrap();
    let write = wide
        .scopes
        .iter()
        .find(|s| s.scope == "crm.orders:write")
        .unwrap();
    assert_eq!(write.state.usage, Usage::Used);
    // Never certified.
    let unowned = r.as_(ADMIN).scope_diff("ag_unowned", None).await.unwrap();
    assert_eq!(unowned.last_certified_at, None);
    assert_eq!(
        unowned.scopes[0].state.markers,
        vec![ScopeMarker::Used, ScopeMarker::NeverCertified]
    );
    // Read rights: another owner may not (for them the agent does not exist); a bad lookback
    // is refused.
    assert_eq!(
        status_of(r.as_(BOB).scope_diff("ag_alice", None).await.unwrap_err()).0,
        404
    );
    assert_eq!(
        status_of(
            r.as_(ALICE)
                .scope_diff("ag_alice", Some(0))
                .await
                .unwrap_err()
        )
        .0,
        422
    );
    assert_eq!(
        status_of(r.as_(ADMIN).scope_diff("ag_nope", None).await.unwrap_err()).0,
        404
    );
}

async fn export_bytes(r: &Registry, who: &str, id: &str, format: ExportFormat) -> Vec<u8> {
    let mut download = r.as_(who).export_campaign(id, format).await.unwrap();
    let mut out = Vec::new();
    while let Some(chunk) = download.chunk().await.unwrap() {
        out.extend_from_slice(&chunk);
    }
    out
}

async fn export_json(r: &Registry, who: &str, id: &str) -> Vec<ExportRow> {
    serde_json::from_slice(&export_bytes(r, who, id, ExportFormat::Json).await).unwrap()
}

#[tokio::test]
async fn the_export_holds_every_item_with_its_decision() {
    let r = standard().await;
    let c = r
        .as_(ADMIN)
        .create_campaign(&campaign_request("evidence, \"Q4\"", NoResponse::Keep))
        .await
        .unwrap();
    let items = all_items(&r, &c.id).await;
    let revoked = item(&items, "ag_bob", "s3.reports:read").id;
    r.as_(BOB)
        .decide(
            revoked,
            &DecideItem {
                decision: Verdict::Revoke,
                justification: Some("=HYPERLINK(\"x\"), replaced by v2".into()),
            },
        )
        .await
        .unwrap();
    // Owners may not export; auditors may.
    let refused = r
        .as_(ALICE)
        .export_campaign(&c.id, ExportFormat::Csv)
        .await
        .unwrap_err();
    assert_eq!(status_of(refused).0, 403);
    let missing = r
        .as_(ADMIN)
        .export_campaign("cmp_nope", ExportFormat::Csv)
        .await
        .unwrap_err();
    assert_eq!(status_of(missing).0, 404);

    let csv = String::from_utf8(export_bytes(&r, AUDITOR, &c.id, ExportFormat::Csv).await).unwrap();
    let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines[0], ExportRow::CSV_HEADER.join(","));
    assert_eq!(lines.len(), 1 + items.len());
    let line = lines
        .iter()
        .find(|l| l.starts_with(&format!("{revoked},")))
        .unwrap();
    assert!(line.contains("\"evidence, \"\"Q4\"\"\""), "{line}");
    assert!(line.contains(",revoke,bob@example.com,"), "{line}");
    // A formula-looking justification is defused for spreadsheets.
    assert!(
        line.contains("\"'=HYPERLINK(\"\"x\"\"), replaced by v2\""),
        "{line}"
    );
    assert!(line.contains(",true,"), "{line}");

    let rows = export_json(&r, AUDITOR, &c.id).await;
    assert_eq!(rows.len(), items.len());
    let ids: Vec<i64> = rows.iter().map(|r| r.item_id).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted);
    let row = rows.iter().find(|r| r.item_id == revoked).unwrap();
    assert_eq!(row.decision, Decision::Revoke);
    assert_eq!(row.reviewer, BOB);
    assert_eq!(row.decided_by.as_deref(), Some(BOB));
    assert!(row.decided_at.is_some() && row.applied && row.applied_at.is_some());
    assert_eq!(row.recommendation, Verdict::Certify);
    assert!(row.recommendation_reason.contains("used"));
    let pending = rows.iter().find(|r| r.decision == Decision::None).unwrap();
    assert!(!pending.applied && pending.decided_at.is_none());
}

/// A webhook receiver on 127.0.0.1:0 that records every POST and fails while `failing`.
/// What the receiver got: the `Idempotency-Key` header and the message.
type Inbox = Arc<Mutex<Vec<(Option<String>, ReminderMessage)>>>;

struct Receiver {
    url: String,
    received: Inbox,
    failing: Arc<AtomicU16>,
}

async fn receiver() -> Receiver {
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    type Shared = (Inbox, Arc<AtomicU16>);
    async fn hook(
        State((received, failing)): State<Shared>,
        headers: HeaderMap,
        axum::Json(msg): axum::Json<ReminderMessage>,
    ) -> StatusCode {
        let status = failing.load(Ordering::SeqCst);
        if status != 0 {
            return StatusCode::from_u16(status).unwrap();
        }
        let key = headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        received.lock().unwrap().push((key, msg));
        StatusCode::NO_CONTENT
    }
    let received = Arc::new(Mutex::new(Vec::new()));
    let failing = Arc::new(AtomicU16::new(0));
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state((received.clone(), failing.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver {
        url,
        received,
        failing,
    }
}

#[tokio::test]
async fn reminders_reach_a_failing_receiver_once_it_recovers_and_never_twice() {
    let r = standard().await;
    let c = r
        .as_(ADMIN)
        .create_campaign(&campaign_request("remind", NoResponse::Keep))
        .await
        .unwrap();
    let hook = receiver().await;
    let scheduler = ReviewScheduler::new(r.store(), Some(hook.url.parse().unwrap()))
        .unwrap()
        .with_retry(RetryPolicy {
            first_delay: Duration::seconds(30),
            max_delay: Duration::minutes(10),
            max_attempts: 5,
        });
    // Before the first weekly slot nothing is due.
    let run = scheduler
        .run_reminders_once(c.starts_at + Duration::days(1))
        .await
        .unwrap();
    assert_eq!((run.planned, run.attempted), (0, 0));

    // The first weekly reminder, while the receiver answers 500.
    hook.failing.store(500, Ordering::SeqCst);
    let t0 = c.starts_at + Duration::days(7) + Duration::minutes(1);
    let run = scheduler.run_reminders_once(t0).await.unwrap();
    assert_eq!(run.planned, 3, "Alice, Bob and the fallback reviewer");
    assert_eq!((run.attempted, run.delivered, run.failed), (3, 0, 3));
    let mine = r
        .as_(ALICE)
        .reminders(&ReminderQuery::default())
        .await
        .unwrap();
    assert_eq!(
        mine.reminders.len(),
        1,
        "an owner sees only their own reminders"
    );
    let pending = &mine.reminders[0];
    assert_eq!(pending.status, ReminderStatus::Pending);
    assert_eq!(pending.slot, "week-1");
    assert_eq!(pending.attempts, 1);
    assert_eq!(pending.pending_items, 4);
    assert_eq!(
        pending.last_error.as_deref(),
        Some("the receiver answered HTTP 500")
    );
    assert_eq!(pending.next_attempt_at, Some(t0 + Duration::seconds(30)));

    // Recovered, but the backoff has not elapsed: nothing is sent.
    hook.failing.store(0, Ordering::SeqCst);
    let run = scheduler
        .run_reminders_once(t0 + Duration::seconds(10))
        .await
        .unwrap();
    assert_eq!(run.attempted, 0);
    // After the backoff: delivered, once per reviewer.
    let run = scheduler
        .run_reminders_once(t0 + Duration::seconds(31))
        .await
        .unwrap();
    assert_eq!((run.attempted, run.delivered), (3, 3));
    // Later runs within the same slot send nothing again.
    for minutes in [2, 60, 600] {
        let run = scheduler
            .run_reminders_once(t0 + Duration::minutes(minutes))
            .await
            .unwrap();
        assert_eq!((run.planned, run.attempted), (0, 0));
    }
    {
        let received = hook.received.lock().unwrap();
        assert_eq!(received.len(), 3);
        let reviewers: BTreeSet<&str> = received.iter().map(|(_, m)| m.reviewer.as_str()).collect();
        assert_eq!(reviewers, BTreeSet::from([ALICE, BOB, FALLBACK]));
        for (key, m) in received.iter() {
            assert_eq!(key.as_deref(), Some(m.id.as_str()));
            assert_eq!(m.kind, "access-review.reminder");
            assert_eq!(m.campaign_id, c.id);
            assert_eq!(m.slot, "week-1");
            assert!(!m.overdue);
        }
    }
    let admin_view = r
        .as_(ADMIN)
        .reminders(&ReminderQuery::default())
        .await
        .unwrap();
    assert_eq!(admin_view.reminders.len(), 3);
    assert!(
        admin_view
            .reminders
            .iter()
            .all(|m| m.status == ReminderStatus::Delivered && m.attempts == 2)
    );
    // Owners may not read someone else's reminders.
    let refused = r
        .as_(ALICE)
        .reminders(&ReminderQuery {
            reviewer: Some(BOB.into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status_of(refused).0, 403);

    // A receiver that keeps failing is given up after the last attempt.
    hook.failing.store(503, Ordering::SeqCst);
    let t1 = c.starts_at + Duration::days(14) + Duration::minutes(1);
    let mut now = t1;
    let mut gave_up = 0;
    for _ in 0..5 {
        let run = scheduler.run_reminders_once(now).await.unwrap();
        gave_up += run.gave_up;
        now += Duration::minutes(20);
    }
    assert_eq!(gave_up, 3);
    let failed = r
        .as_(ADMIN)
        .reminders(&ReminderQuery::default())
        .await
        .unwrap();
    let week2: Vec<_> = failed
        .reminders
        .iter()
        .filter(|m| m.slot == "week-2")
        .collect();
    assert_eq!(week2.len(), 3);
    assert!(
        week2
            .iter()
            .all(|m| m.status == ReminderStatus::Failed && m.attempts == 5)
    );
    assert_eq!(hook.received.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn reminders_stop_once_a_reviewer_has_finished() {
    let r = standard().await;
    let c = r
        .as_(ADMIN)
        .create_campaign(&campaign_request("finish", NoResponse::Keep))
        .await
        .unwrap();
    let hook = receiver().await;
    let scheduler = ReviewScheduler::new(r.store(), Some(hook.url.parse().unwrap())).unwrap();
    let week1 = c.starts_at + Duration::days(7) + Duration::minutes(1);
    hook.failing.store(500, Ordering::SeqCst);
    scheduler.run_reminders_once(week1).await.unwrap();
    // Bob finishes while his reminder waits for a retry: it is cancelled, never sent.
    let items = all_items(&r, &c.id).await;
    for scope in ["s3.reports:read", "s3.reports:write"] {
        r.as_(BOB)
            .decide(
                item(&items, "ag_bob", scope).id,
                &DecideItem {
                    decision: Verdict::Certify,
                    justification: Some("still needed".into()),
                },
            )
            .await
            .unwrap();
    }
    hook.failing.store(0, Ordering::SeqCst);
    let run = scheduler
        .run_reminders_once(week1 + Duration::minutes(5))
        .await
        .unwrap();
    assert_eq!((run.cancelled, run.delivered), (1, 2));
    // Later slots remind only those with undecided items, overdue ones say so.
    let overdue = c.due_at + Duration::days(2) + Duration::minutes(1);
    let run = scheduler.run_reminders_once(overdue).await.unwrap();
    assert_eq!((run.planned, run.delivered), (2, 2));
    {
        let received = hook.received.lock().unwrap();
        assert!(received.iter().all(|(_, m)| m.reviewer != BOB));
        let last = &received[received.len() - 1].1;
        assert_eq!(last.slot, "overdue-2d");
        assert!(last.overdue);
        assert_eq!(last.days_until_due, -2);
    }
    let bobs = r
        .as_(BOB)
        .reminders(&ReminderQuery::default())
        .await
        .unwrap();
    assert_eq!(bobs.reminders.len(), 1);
    assert_eq!(bobs.reminders[0].status, ReminderStatus::Cancelled);
    assert_eq!(
        bobs.reminders[0].last_error.as_deref(),
        Some("the reviewer has finished")
    );
    // Without a webhook, reminders are recorded (visible) but not sent.
    let quiet = ReviewScheduler::new(r.store(), None).unwrap();
    let run = quiet
        .run_reminders_once(overdue + Duration::days(1))
        .await
        .unwrap();
    assert_eq!((run.planned, run.attempted), (2, 0));
    let alice = r
        .as_(ALICE)
        .reminders(&ReminderQuery::default())
        .await
        .unwrap();
    assert_eq!(alice.reminders[0].status, ReminderStatus::Unsent);
    let _ = &r.url;
}

#[tokio::test]
async fn the_demo_campaign_is_half_decided_with_overdue_reviewers() {
    let r = start().await;
    let owners: Vec<String> = (0..30)
        .map(|i| format!("owner{i:02}@example.com"))
        .collect();
    for o in &owners {
        r.store
            .create_person(
                &system(),
                &CreatePerson {
                    email: o.clone(),
                    display_name: o.clone(),
                    roles: vec![],
                    manager: None,
                    team: None,
                },
            )
            .unwrap();
    }
    let ids: Vec<String> = (0..300).map(|i| format!("ag_demo{i:03}")).collect();
    let mut x: u64 = 7;
    let mut next = || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        x >> 33
    };
    let specs: Vec<AgentSpec<'_>> = ids
        .iter()
        .map(|id| {
            let owner =
                (!next().is_multiple_of(12)).then(|| owners[(next() % 30) as usize].as_str());
            let grants = (0..(next() % 5))
                .map(|g| {
                    grant(
                        &format!("svc{g}:read"),
                        200,
                        (!next().is_multiple_of(3)).then(|| (next() % 90) as i64),
                        Some(100),
                    )
                })
                .collect();
            spec(id, owner, grants)
        })
        .collect();
    seed(&r.store, specs);
    let now = Utc::now();
    let demo = registry::demo_reviews::seed_demo_campaign(r.store.as_ref(), now).unwrap();
    let c = r.as_(ADMIN).campaign(&demo.campaign_id).await.unwrap();
    assert_eq!(c.campaign.name, "2026-Q4 agent certification");
    assert_eq!(c.campaign.status, CampaignStatus::Open);
    assert_eq!(c.campaign.recurrence, Recurrence::Quarterly);
    assert!(c.campaign.due_at < now && c.campaign.closes_at > now);
    let p = c.campaign.progress;
    assert_eq!(p.total, demo.items);
    assert_eq!(p.decided, demo.decided);
    let share = p.decided as f64 / p.total as f64;
    assert!((0.4..0.6).contains(&share), "decided share {share}");
    assert!(p.revoked > 0 && p.certified > 0, "{p:?}");
    assert!(demo.overdue_reviewers >= 1 && demo.finished_reviewers >= 1);
    // The most overdue reviewer sees an overdue campaign in their queue.
    let who = demo.most_overdue.unwrap();
    let token = registry::service::api_tokens::issue_token_for(
        r.store.as_ref(),
        &system(),
        &who,
        &IssueToken::default(),
    )
    .unwrap();
    let client = Client::new(&r.url, Some(Secret::new(token.token))).unwrap();
    let q = client.my_reviews(&QueueQuery::default()).await.unwrap();
    assert!(q.campaigns[0].overdue);
    assert_eq!(q.campaigns[0].days_until_due, -2);
    assert!(q.campaigns[0].progress.pending > 0);
    // The server's scheduler does not close it yet (12 days of grace left).
    let scheduler = ReviewScheduler::new(r.store(), None).unwrap();
    let report = scheduler.run_once(now + Duration::minutes(1)).await;
    assert!(report.closed.is_empty() && report.errors.is_empty());
    assert!(report.reminders.planned >= 1);
}

/// Runs the real `steward` binary as `who` against the registry.
async fn steward(r: &Registry, who: &str, args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_steward"))
        .args(args)
        .env("STEWARD_SERVER", &r.url)
        .env("STEWARD_TOKEN", &r.tokens[who])
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test]
async fn the_command_line_creates_decides_exports_and_closes() {
    let r = standard().await;
    let due = (Utc::now() + Duration::days(30))
        .format("%Y-%m-%d")
        .to_string();
    let (ok, out, err) = steward(
        &r,
        ADMIN,
        &[
            "campaigns",
            "create",
            "cli review",
            "--due",
            &due,
            "--fallback",
            FALLBACK,
            "--no-response",
            "revoke",
            "--json",
        ],
    )
    .await;
    assert!(ok, "{err}");
    let c: steward::model::review::Campaign = serde_json::from_str(&out).unwrap();
    assert_eq!(c.no_response, NoResponse::Revoke);
    assert_eq!(c.due_at.format("%H:%M:%S").to_string(), "23:59:59");
    assert_eq!(c.progress.total, 8);
    // An owner's queue as JSON: her items only.
    let (ok, out, err) = steward(&r, ALICE, &["reviews", "list", "--json"]).await;
    assert!(ok, "{err}");
    let mine: Vec<ReviewItem> = serde_json::from_str(&out).unwrap();
    assert_eq!(mine.len(), 4);
    assert!(mine.iter().all(|i| i.reviewer == ALICE));
    // The human listing names the campaign and the agents.
    let (ok, out, _) = steward(&r, ALICE, &["reviews", "list"]).await;
    assert!(
        ok && out.contains("cli review") && out.contains("ag_alice-bot"),
        "{out}"
    );
    // Decisions, with the justification rule enforced by the registry.
    let used = mine
        .iter()
        .find(|i| i.scope == "crm.orders:read")
        .unwrap()
        .id
        .to_string();
    let unused = mine
        .iter()
        .find(|i| i.scope == "crm.orders:write")
        .unwrap()
        .id
        .to_string();
    let (ok, out, err) = steward(&r, ALICE, &["reviews", "decide", &used, "certify"]).await;
    assert!(ok, "{err}");
    assert!(
        out.contains("certify") && out.contains("grant certified"),
        "{out}"
    );
    let (ok, _, err) = steward(&r, ALICE, &["reviews", "decide", &unused, "certify"]).await;
    assert!(!ok && err.contains("justification"), "{err}");
    let (ok, _, err) = steward(
        &r,
        ALICE,
        &[
            "reviews",
            "decide",
            &unused,
            "certify",
            "--justification",
            "quarter-end job",
        ],
    )
    .await;
    assert!(ok, "{err}");
    // --all is for admins and auditors.
    let (ok, _, err) = steward(&r, ALICE, &["reviews", "list", "--all"]).await;
    assert!(!ok && err.contains("HTTP 403"), "{err}");
    let (ok, out, err) = steward(&r, AUDITOR, &["reviews", "list", "--all", "--json"]).await;
    assert!(ok, "{err}");
    assert_eq!(
        serde_json::from_str::<Vec<ReviewItem>>(&out).unwrap().len(),
        8
    );
    // The export to a file, complete and with no partial file left behind.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("evidence.csv");
    let (ok, _, err) = steward(
        &r,
        AUDITOR,
        &[
            "reviews",
            "export",
            &c.id,
            "--format",
            "csv",
            "--out",
            file.to_str().unwrap(),
        ],
    )
    .await;
    assert!(ok, "{err}");
    let csv = std::fs::read_to_string(&file).unwrap();
    assert_eq!(csv.lines().count(), 9);
    assert!(csv.contains("quarter-end job"));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    // Listing and closing.
    let (ok, out, _) = steward(&r, BOB, &["campaigns", "list"]).await;
    assert!(ok && out.contains(&c.id) && out.contains("2/8"), "{out}");
    let (ok, out, err) = steward(&r, ADMIN, &["campaigns", "close", &c.id]).await;
    assert!(ok, "{err}");
    assert!(out.contains("applied to 6 item(s): 6 revoked"), "{out}");
    // Bad input is refused before anything is sent.
    let (ok, _, err) = steward(&r, ADMIN, &["campaigns", "create", "x", "--due", "soon"]).await;
    assert!(!ok && err.contains("YYYY-MM-DD"), "{err}");
}

#[tokio::test]
async fn the_openapi_document_describes_the_review_routes() {
    let r = start().await;
    let doc: serde_json::Value = reqwest::get(format!("{}/openapi.json", r.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/v1/campaigns",
        "/v1/campaigns/{id}",
        "/v1/campaigns/{id}/items",
        "/v1/campaigns/{id}/close",
        "/v1/campaigns/{id}/export",
        "/v1/campaigns/{id}/agents/{agent_id}/certify-unchanged",
        "/v1/campaigns/{id}/agents/{agent_id}/reassign",
        "/v1/reviews/mine",
        "/v1/reviews/reminders",
        "/v1/review-items/{id}",
        "/v1/review-items/{id}/decision",
        "/v1/review-items/{id}/reassign",
        "/v1/agents/{id}/scope-diff",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }
    for schema in [
        "ReviewQueue",
        "CreateCampaign",
        "DecisionOutcome",
        "ScopeDiff",
        "Reminder",
    ] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "{schema} missing"
        );
    }
    // A request body with an unknown field is refused, not ignored.
    let response = reqwest::Client::new()
        .post(format!("{}/v1/review-items/1/decision", r.url))
        .bearer_auth(&r.tokens[ADMIN])
        .json(&serde_json::json!({"decision": "certify", "justfication": "typo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 422);
}

/// Seeds `n` agents of team `payments`, owned by Alice, each with one grant unused for 60 days
/// (so the recommendation outcome revokes every one of them at close).
fn seed_many(store: &SqliteStore, n: usize) {
    for start in (0..n).step_by(5_000) {
        let ids: Vec<String> = (start..n.min(start + 5_000))
            .map(|i| format!("ag_many_{i:06}"))
            .collect();
        seed(
            store,
            ids.iter()
                .map(|id| {
                    spec(
                        id,
                        Some(ALICE),
                        vec![grant("wiki:read", 300, Some(60), Some(90))],
                    )
                })
                .collect(),
        );
    }
}

/// Waits until the campaign named `name` shows `status` with some work done; fails if `job`
/// finishes first (the work would have been too quick to observe).
async fn wait_for_work<T>(
    r: &Registry,
    name: &str,
    status: CampaignStatus,
    job: &tokio::task::JoinHandle<T>,
) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let listed = r
            .as_(ADMIN)
            .campaigns(&CampaignQuery {
                status: Some(status),
            })
            .await
            .unwrap();
        if let Some(c) = listed.iter().find(|c| c.name == name) {
            let work = c.work.expect("a campaign at work shows its progress");
            assert!(work.done <= work.total, "{work:?}");
            if work.done > 0 {
                return c.id.clone();
            }
        }
        assert!(
            !job.is_finished(),
            "the campaign finished before it was seen {}",
            status.as_str()
        );
        assert!(std::time::Instant::now() < deadline, "no progress seen");
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}

async fn audit_seq(r: &Registry, target: &str, action: &str) -> i64 {
    r.as_(ADMIN)
        .audit(&AuditQuery {
            target: Some(target.into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .events
        .into_iter()
        .find(|e| e.action == action)
        .unwrap_or_else(|| panic!("no {action} event for {target}"))
        .seq
}

/// Issue 10 item 3: creating and closing a large campaign is done in short transactions, so a
/// revoke issued meanwhile goes through while the campaign is still at work (not after it).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revoke_goes_through_while_a_large_campaign_is_created_and_closed() {
    const AGENTS: usize = 20_000;
    let r = start().await;
    seed_many(&r.store, AGENTS);
    let mut brake_targets = vec![];
    for id in ["ag_brake_1", "ag_brake_2"] {
        let mut s = spec(id, Some(BOB), vec![grant("mail:send", 10, Some(1), None)]);
        s.team = "incident";
        brake_targets.push(s);
    }
    seed(&r.store, brake_targets);
    let mut req = campaign_request("large", NoResponse::Recommendation);
    req.filter.team = Some("payments".into());

    let admin = r.as_(ADMIN).clone();
    let create = tokio::spawn(async move { admin.create_campaign(&req).await });
    let id = wait_for_work(&r, "large", CampaignStatus::Snapshotting, &create).await;
    r.as_(ADMIN)
        .revoke("ag_brake_1", Some("incident during a snapshot".into()))
        .await
        .unwrap();
    let during = r.as_(ADMIN).campaign(&id).await.unwrap().campaign;
    assert_eq!(during.status, CampaignStatus::Snapshotting);
    let work = during.work.unwrap();
    assert!(work.done < work.total, "{work:?}");
    let created = create.await.unwrap().unwrap();
    assert_eq!(created.status, CampaignStatus::Open);
    assert_eq!(created.progress.total, AGENTS as u64);
    assert_eq!(created.work, None);
    assert!(
        audit_seq(&r, "ag_brake_1", "agent.revoke").await
            < audit_seq(&r, &id, "campaign.start").await
    );

    let admin = r.as_(ADMIN).clone();
    let close_id = id.clone();
    let close = tokio::spawn(async move { admin.close_campaign(&close_id).await });
    wait_for_work(&r, "large", CampaignStatus::Closing, &close).await;
    // The brake does not wait for the close.
    r.as_(ADMIN)
        .revoke("ag_brake_2", Some("incident during a close".into()))
        .await
        .unwrap();
    let during = r.as_(ADMIN).campaign(&id).await.unwrap().campaign;
    assert_eq!(during.status, CampaignStatus::Closing);
    let work = during.work.unwrap();
    assert!(work.done < work.total, "{work:?}");
    let closed = close.await.unwrap().unwrap();
    assert_eq!(closed.campaign.status, CampaignStatus::Closed);
    assert_eq!((closed.revoked, closed.kept), (AGENTS as u64, 0));
    assert!(
        audit_seq(&r, "ag_brake_2", "agent.revoke").await
            < audit_seq(&r, &id, "campaign.close").await
    );
    assert!(scopes_of(&r, "ag_many_019999").await.is_empty());
}

/// Alice's undecided items in the campaign.
async fn undecided_of(r: &Registry, campaign: &str, reviewer: &str) -> Vec<ReviewItem> {
    all_items(r, campaign)
        .await
        .into_iter()
        .filter(|i| i.reviewer == reviewer && i.decision == Decision::None)
        .collect()
}

#[tokio::test]
async fn accepting_recommendations_decides_only_what_the_caller_may() {
    use steward::model::review::AcceptRecommendations;
    let r = standard().await;
    let c = r
        .as_(ADMIN)
        .create_campaign(&campaign_request("accept", NoResponse::Keep))
        .await
        .unwrap();
    let items = all_items(&r, &c.id).await;
    let alices = undecided_of(&r, &c.id, ALICE).await;
    assert_eq!(alices.len(), 4);
    let bobs_item = item(&items, "ag_bob", "s3.reports:read").id;

    // A dry run over the queue's filter counts and changes nothing.
    let dry = r
        .as_(ALICE)
        .accept_recommendations(
            &c.id,
            &AcceptRecommendations {
                q: Some("SEARCH".into()),
                dry_run: true,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(dry.dry_run);
    assert_eq!((dry.certify + dry.revoke, dry.agents), (1, 1));
    assert_eq!(dry.decided[0].agent_id, "ag_search");
    assert_eq!(
        undecided_of(&r, &c.id, ALICE).await.len(),
        4,
        "a dry run decides nothing"
    );

    // A confirmation of another count is refused: the set is not what was confirmed.
    let stale = r
        .as_(ALICE)
        .accept_recommendations(
            &c.id,
            &AcceptRecommendations {
                expect: Some(3),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(status_of(stale).0, 409);
    assert_eq!(undecided_of(&r, &c.id, ALICE).await.len(), 4);

    // Someone else's item, named by id, is refused and stays undecided; so does an item
    // decided already, and an id of no item.
    let decided = item(&items, "ag_alice", "crm.orders:read").id;
    r.as_(ALICE)
        .decide(
            decided,
            &DecideItem {
                decision: Verdict::Certify,
                justification: None,
            },
        )
        .await
        .unwrap();
    let out = r
        .as_(ALICE)
        .accept_recommendations(
            &c.id,
            &AcceptRecommendations {
                item_ids: vec![bobs_item, decided, 999_999],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(out.decided.is_empty());
    let refused: BTreeSet<i64> = out.refused.iter().map(|s| s.item_id).collect();
    assert_eq!(refused, BTreeSet::from([bobs_item, decided, 999_999]));
    assert!(
        out.refused
            .iter()
            .any(|s| s.reason.contains("its reviewer is bob"))
    );
    assert!(
        out.refused
            .iter()
            .any(|s| s.reason.contains("decided already"))
    );
    let bob_now = all_items(&r, &c.id).await;
    assert_eq!(
        item(&bob_now, "ag_bob", "s3.reports:read").decision,
        Decision::None
    );

    // Every reviewer's items takes the admin role; an auditor decides nothing of Alice's.
    let not_admin = r
        .as_(ALICE)
        .accept_recommendations(
            &c.id,
            &AcceptRecommendations {
                mine: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(status_of(not_admin).0, 403);
    let auditor = r
        .as_(AUDITOR)
        .accept_recommendations(
            &c.id,
            &AcceptRecommendations {
                agent_ids: vec!["ag_alice".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(auditor.decided.is_empty());
    assert_eq!(auditor.refused.len(), 2, "ag_alice's two undecided items");

    // Alice accepts the rest of her queue: each item gets its recommendation, one audit
    // event per item.
    let before = audit_actions(&r, "ag_alice").await.len();
    let out = r
        .as_(ALICE)
        .accept_recommendations(
            &c.id,
            &AcceptRecommendations {
                expect: Some(3),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(out.decided.len(), 3);
    assert_eq!(out.agents, 2);
    let after = all_items(&r, &c.id).await;
    for d in &out.decided {
        let i = after.iter().find(|i| i.id == d.item_id).unwrap();
        assert_eq!(i.decision, Decision::from(i.diff.recommendation.action));
        assert_eq!(i.decided_by.as_deref(), Some(ALICE));
        assert_eq!(d.decision, i.diff.recommendation.action);
    }
    assert!(out.revoke >= 1, "crm.orders:write is unused: revoke");
    assert!(!scopes_of(&r, "ag_alice").await.contains("crm.orders:write"));
    let events = audit_actions(&r, "ag_alice").await;
    let decides = events[..events.len() - before]
        .iter()
        .filter(|(a, _, _)| a == "review.decide")
        .count();
    assert_eq!(decides, 2, "one review.decide per item of ag_alice");
    assert!(undecided_of(&r, &c.id, ALICE).await.is_empty());

    // An admin accepts for another reviewer's agent.
    let out = r
        .as_(ADMIN)
        .accept_recommendations(
            &c.id,
            &AcceptRecommendations {
                agent_ids: vec!["ag_bob".into()],
                mine: Some(false),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(out.decided.len(), 2);

    // A closed campaign refuses; an unknown one is a 404.
    r.as_(ADMIN).close_campaign(&c.id).await.unwrap();
    let closed = r
        .as_(FALLBACK)
        .accept_recommendations(&c.id, &AcceptRecommendations::default())
        .await
        .unwrap_err();
    assert_eq!(status_of(closed).0, 409);
    let unknown = r
        .as_(ADMIN)
        .accept_recommendations("cmp_nope", &AcceptRecommendations::default())
        .await
        .unwrap_err();
    assert_eq!(status_of(unknown).0, 404);
}

#[tokio::test]
async fn a_bulk_accept_skips_what_cannot_be_decided_and_the_rest_go_on() {
    use steward::model::review::AcceptRecommendations;
    let r = standard().await;
    let c = r
        .as_(ADMIN)
        .create_campaign(&campaign_request("skip", NoResponse::Keep))
        .await
        .unwrap();
    // A scope recommended for certification is removed outside the review: certifying it is
    // refused, so the bulk accept skips it with the reason and decides the rest.
    r.as_(ALICE)
        .remove_grant("ag_alice", "crm.orders:read")
        .await
        .unwrap();
    // Decommissioning closes the agent's items: none of them is decided by the bulk accept.
    r.as_(ADMIN)
        .decommission("ag_search", Some("retired".into()))
        .await
        .unwrap();
    let out = r
        .as_(ALICE)
        .accept_recommendations(&c.id, &AcceptRecommendations::default())
        .await
        .unwrap();
    assert!(out.decided.iter().all(|d| d.agent_id == "ag_alice"));
    assert_eq!(out.decided.len(), 2);
    assert_eq!(out.skipped.len(), 1);
    assert_eq!(out.skipped[0].scope, "crm.orders:read");
    assert!(out.skipped[0].reason.contains("no longer holds"));
    let after = all_items(&r, &c.id).await;
    assert_eq!(
        item(&after, "ag_alice", "crm.orders:read").decision,
        Decision::None
    );
    assert!(
        !scopes_of(&r, "ag_alice").await.contains("crm.orders:read"),
        "the skipped item's savepoint rolled back nothing else"
    );
}

#[tokio::test]
async fn the_queue_filters_sorts_and_shows_auditors_everything_read_only() {
    use steward::model::review::QueueSort;
    let r = standard().await;
    r.as_(ADMIN)
        .create_campaign(&campaign_request("queue", NoResponse::Keep))
        .await
        .unwrap();
    let q = r
        .as_(ALICE)
        .my_reviews(&QueueQuery {
            q: Some("search".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(q.total_agents, 1);
    assert_eq!(q.agents[0].agent_id, "ag_search");
    assert!(q.may_decide && !q.may_reassign);
    // By team: payments before search, whatever the risk.
    let by_team = r
        .as_(ALICE)
        .my_reviews(&QueueQuery {
            sort: Some(QueueSort::Team),
            ..Default::default()
        })
        .await
        .unwrap();
    let order: Vec<&str> = by_team.agents.iter().map(|a| a.agent_id.as_str()).collect();
    assert_eq!(order, ["ag_alice", "ag_search"]);
    // The auditor sees every reviewer's agents and may decide none of them.
    let all = r
        .as_(AUDITOR)
        .my_reviews(&QueueQuery {
            all: Some(true),
            limit: Some(2),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(!all.may_decide);
    assert_eq!(all.total_agents, 5, "alice 2, bob, unowned, carol's");
    assert_eq!(all.agents.len(), 2);
    assert_eq!(all.next_offset, Some(2));
    assert_eq!(all.campaigns[0].progress.total, 8);
    // Owners may not read everyone's queue; admins may, and decide it.
    let refused = r
        .as_(ALICE)
        .my_reviews(&QueueQuery {
            all: Some(true),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status_of(refused).0, 403);
    let admin = r
        .as_(ADMIN)
        .my_reviews(&QueueQuery {
            all: Some(true),
            sort: Some(QueueSort::Owner),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(admin.may_decide && admin.may_reassign);
    assert_eq!(
        admin.agents[0].owner, None,
        "unowned first when sorted by owner"
    );
}

#[tokio::test]
async fn a_leavers_review_work_goes_to_their_successor_or_the_fallback_reviewer() {
    let r = standard().await;
    let c = r
        .as_(ADMIN)
        .create_campaign(&campaign_request("succession", NoResponse::Keep))
        .await
        .unwrap();
    // Bob has a manager (Alice); one of his items is decided already and stays his.
    r.as_(ADMIN)
        .update_person(
            BOB,
            &UpdatePerson {
                manager: Some(ALICE.into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let items = all_items(&r, &c.id).await;
    let decided = item(&items, "ag_bob", "s3.reports:read").id;
    r.as_(BOB)
        .decide(
            decided,
            &DecideItem {
                decision: Verdict::Certify,
                justification: None,
            },
        )
        .await
        .unwrap();
    let out = r.as_(ADMIN).leave(BOB).await.unwrap();
    assert_eq!(out.succession.successor.as_deref(), Some(ALICE));
    assert_eq!(out.succession.review_items_moved, 1);
    let after = all_items(&r, &c.id).await;
    let pending = item(&after, "ag_bob", "s3.reports:write");
    assert_eq!(pending.reviewer, ALICE);
    assert!(
        pending
            .history
            .iter()
            .any(|e| e.action == "reassign" && e.justification.as_deref() == Some("reviewer left"))
    );
    assert_eq!(item(&after, "ag_bob", "s3.reports:read").reviewer, BOB);
    let events = audit_actions(&r, "ag_bob").await;
    let (_, details, reason) = events
        .iter()
        .find(|(a, _, _)| a == "review.reassign")
        .expect("the move is audited");
    assert_eq!(reason.as_deref(), Some("reviewer left"));
    assert_eq!(details["to"], ALICE);
    assert_eq!(details["succession"], true);
    // Alice now finds it in her queue.
    let q = r
        .as_(ALICE)
        .my_reviews(&QueueQuery::default())
        .await
        .unwrap();
    assert!(q.agents.iter().any(|a| a.agent_id == "ag_bob"));

    // Alice has no manager: her undecided items go to the campaign's fallback reviewer.
    let out = r.as_(ADMIN).leave(ALICE).await.unwrap();
    assert_eq!(out.succession.successor, None);
    assert_eq!(out.succession.review_items_moved, 5);
    let after = all_items(&r, &c.id).await;
    assert!(
        after
            .iter()
            .filter(|i| i.decision == Decision::None)
            .all(|i| i.reviewer != ALICE && i.reviewer != BOB)
    );
    assert_eq!(item(&after, "ag_alice", "mail:send").reviewer, FALLBACK);
}
